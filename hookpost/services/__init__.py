"""The operations, shared by the API, the CLI, the worker, the dashboard and the library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hookpost.domain.limits import Limits
from hookpost.domain.retention import RetentionPolicy
from hookpost.services.alert_evaluator import AlertEvaluator
from hookpost.services.alert_rules import AlertRuleService
from hookpost.services.apps import AppService
from hookpost.services.catalog import CatalogCache
from hookpost.services.common import Clock, now_ms
from hookpost.services.endpoints import EndpointService, UrlCheck
from hookpost.services.event_types import EventTypeService
from hookpost.services.events import EventBus
from hookpost.services.idempotency import IdempotencyService
from hookpost.services.messages import DEFAULT_MAX_PAYLOAD, MessageService
from hookpost.services.metrics import Metrics
from hookpost.services.operational import OperationalWebhookService
from hookpost.services.retention import RetentionService
from hookpost.services.stats import StatsService
from hookpost.services.status import StatusService
from hookpost.services.tasks import TaskService
from hookpost.services.tokens import TokenService
from hookpost.store.base import Store

if TYPE_CHECKING:
    from hookpost.services.tracing import Tracing


@dataclass
class Services:
    store: Store
    apps: AppService
    event_types: EventTypeService
    endpoints: EndpointService
    messages: MessageService
    tokens: TokenService
    metrics: Metrics
    events: EventBus
    status: StatusService
    idempotency: IdempotencyService
    operational: OperationalWebhookService
    retention: RetentionService
    tasks: TaskService
    alert_rules: AlertRuleService
    alerts: AlertEvaluator
    stats: StatsService
    tracing: Tracing | None = None  # OTEL_* tracing (services.tracing_env); None: off

    @classmethod
    def build(
        cls,
        store: Store,
        *,
        clock: Clock = now_ms,
        url_check: UrlCheck | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        limits: Limits = Limits(),
        strict_event_types: bool = False,
        reveal_secrets: bool = True,
        retention: RetentionPolicy = RetentionPolicy(),
        tracing: Tracing | None = None,
    ) -> Services:
        catalog = CatalogCache(store)
        options: dict[str, Any] = {} if url_check is None else {"url_check": url_check}
        endpoints = EndpointService(
            store,
            clock,
            limits=limits,
            catalog=catalog,
            strict_event_types=strict_event_types,
            reveal_secrets=reveal_secrets,
            **options,
        )
        metrics = Metrics()
        messages = MessageService(
            store,
            clock,
            max_payload_bytes,
            metrics,
            limits.max_page_content_bytes,
            strict_catalog=catalog if strict_event_types else None,
            retention=retention,
            tracing=tracing,
        )
        return cls(
            store=store,
            apps=AppService(store, clock),
            event_types=EventTypeService(store, clock, limits, catalog),
            endpoints=endpoints,
            messages=messages,
            tokens=TokenService(store, clock),
            metrics=metrics,
            events=EventBus(),
            status=StatusService(store, clock),
            idempotency=IdempotencyService(store, clock),
            operational=OperationalWebhookService(store, endpoints, clock),
            retention=RetentionService(store, retention, clock),
            tasks=TaskService(store, clock),
            alert_rules=AlertRuleService(store, clock),
            alerts=AlertEvaluator(store, messages, clock),
            stats=StatsService(store, clock),
            tracing=tracing,
        )
