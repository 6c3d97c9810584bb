"""The ASGI application: ``create_app(hp)`` builds the Svix-compatible REST API over a running
``Hookpost``.

* The caller owns the runtime's lifecycle (the CLI starts and stops it); ``create_app`` only
  holds it on ``app.state``. ``create_app_from_settings`` is the self-contained variant whose
  lifespan builds (with the given factory: ``hookpost.wiring.asgi_app`` passes ``Hookpost``),
  starts and stops one.
* The OpenAPI document is at ``/api/v1/openapi.json``, interactive docs at ``/docs``.
* ``/metrics`` serves Prometheus text: the runtime's registry plus queue gauges computed at
  scrape time. Like the health checks it is unauthenticated: bind it to a private network.
* ``Settings.api_rate_limit`` > 0 installs the per-token rate limit (``api.ratelimit``):
  429 ``rate_limited`` with ``Retry-After``; health checks and metrics are never limited.
* Everything that is per app instance (token cache, rate-limit buckets, the queue collector)
  lives on the instance, never in module globals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookpost.api.asgi import scope_header
from hookpost.api.errors import error_response, install_error_handlers
from hookpost.api.idempotency import IdempotencyMiddleware
from hookpost.api.ratelimit import RateLimitMiddleware, TokenBuckets
from hookpost.api.routes import (
    applications,
    attempts,
    authentication,
    endpoints,
    event_types,
    health,
    messages,
)
from hookpost.api.routes.common import ApiState, Runtime
from hookpost.domain.queries import QueueDepth
from hookpost.settings import Settings
from hookpost.store.base import Store

log = logging.getLogger("hookpost.api")

ENVELOPE_ALLOWANCE = 64 * 1024  # request bytes allowed beyond the payload limit (the envelope)


def create_app(hp: Runtime) -> FastAPI:
    """The API over ``hp`` (a started ``hookpost.wiring.Hookpost``)."""
    app = _build(hp.settings)
    _attach(app, hp)
    return app


def create_app_from_settings(
    settings: Settings,
    factory: Callable[[Settings], Any],
    worker: bool = False,
) -> FastAPI:
    """A self-contained API: its lifespan builds the runtime from ``settings``, starts it (and
    a delivery worker if ``worker``), makes sure the admin token exists, and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hp = factory(settings)
        await hp.start(worker=worker)
        try:
            # Tokens never go to logs. Without HOOKPOST_ADMIN_TOKEN and with no admin token
            # yet, say how to make one instead of generating one nobody sees.
            if settings.admin_token:
                await hp.services.tokens.ensure_admin(settings.admin_token)
            elif await hp.store.count_admin_tokens() == 0:
                log.warning(
                    "no admin token exists: set HOOKPOST_ADMIN_TOKEN or run `hookpost token create`"
                )
            _attach(app, hp)
            yield
        finally:
            await hp.stop()

    return _build(settings, lifespan)


class HookpostApi(FastAPI):
    """FastAPI with :class:`~hookpost.api.routes.messages.CreateMessageFrontDoor` in front of
    its middleware stack: a request the front door takes never enters the stack."""

    front_door: Callable[[Scope, Receive, Send], Awaitable[bool]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = self.front_door
        if door is not None and await door(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def _build(settings: Settings, lifespan: Any = None) -> FastAPI:
    app = HookpostApi(
        title="hookpost",
        version=_version(),
        description=(
            "Self-hosted webhook delivery with a Svix-compatible REST API: the official "
            "`svix` SDKs work as clients. Authenticate with `Authorization: Bearer <token>`."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry checks the global providers on every request; hookpost
        # exports Prometheus metrics instead, so it is off (it cost ~5% of POST /msg).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    # Messages first: route matching walks the routers in order (POST /msg mostly takes the
    # front door below, but the message reads are hot too).
    for module in (
        messages,
        applications,
        endpoints,
        attempts,
        event_types,
        authentication,
        health,
    ):
        app.include_router(module.router)
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    _with_security(app)
    app.state.metrics_collector = QueueCollector()
    app.state.metrics_registry = CollectorRegistry(auto_describe=False)
    app.state.metrics_registry.register(app.state.metrics_collector)
    # add_middleware wraps what is there: the last added runs first. Order on a request:
    # rate limit -> body cap -> idempotency -> FastAPI's routing. The rate limit comes first
    # so that refused requests cost nothing (not even reading the body) and a 429 is never
    # stored as an idempotent response.
    body_limit = settings.max_payload_bytes + ENVELOPE_ALLOWANCE
    app.add_middleware(
        IdempotencyMiddleware, app_state=app.state, render_sent=messages.render_sent_for
    )
    app.add_middleware(BodyLimitMiddleware, limit=body_limit)
    if settings.api_rate_limit > 0:
        app.state.rate_limiter = TokenBuckets(settings.api_rate_limit)
        app.add_middleware(RateLimitMiddleware, app_state=app.state)
    # Ahead of all of the above, for the POST /msg requests none of them would act on.
    app.front_door = messages.CreateMessageFrontDoor(app.state, body_limit)
    return app


def _with_security(app: FastAPI) -> None:
    """Declare bearer authentication in the OpenAPI document (the routes read the header
    themselves, see ``routes.common.context``); health checks need none."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["HTTPBearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Bearer <token>` (admin or app-scoped).",
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/api/v1/health"):
                continue
            for operation in operations.values():
                operation["security"] = [{"HTTPBearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    try:
        return version("hookpost")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


def _attach(app: FastAPI, hp: Runtime) -> None:
    app.state.hp = hp
    app.state.api = ApiState.build(hp)


# --------------------------------------------------------------------------- metrics


class QueueCollector:
    """Queue gauges from the snapshot taken at the start of each scrape."""

    def __init__(self) -> None:
        self.depth: QueueDepth | None = None
        self.now_ms = 0

    def collect(self) -> Iterator[Metric]:
        depth = self.depth
        if depth is None:
            return
        due = GaugeMetricFamily("hookpost_queue_due", "Deliveries due now (incl. lost leases)")
        due.add_metric([], depth.due)
        yield due
        scheduled = GaugeMetricFamily(
            "hookpost_queue_scheduled", "Pending deliveries scheduled for later (retries)"
        )
        scheduled.add_metric([], depth.scheduled)
        yield scheduled
        age = GaugeMetricFamily(
            "hookpost_oldest_due_age_seconds",
            "How long the oldest due delivery has been waiting (0 when none is due)",
        )
        oldest = depth.oldest_due_at
        age.add_metric([], 0.0 if oldest is None else max(0, self.now_ms - oldest) / 1000)
        yield age


async def metrics(request: Request) -> Response:
    """Prometheus text: the runtime's registry plus the queue gauges."""
    state = request.app.state
    hp: Runtime = state.hp
    store: Store = hp.store
    now = int(time.time() * 1000)
    depth = await store.queue_depth(now)
    runtime = await hp.services.metrics.exposition()
    collector: QueueCollector = state.metrics_collector
    # No await between taking the snapshot and rendering it: concurrent scrapes cannot mix.
    collector.depth, collector.now_ms = depth, now
    body = runtime + generate_latest(state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# --------------------------------------------------------------------------- middleware


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit}-byte limit")


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413 ``payload_too_large`` before they
    are parsed: by ``Content-Length`` up front, and by counting the bytes as they stream in
    (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = scope_header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False  # the server refuses a malformed Content-Length itself
            if too_big:
                response = error_response(
                    413,
                    "payload_too_large",
                    f"the request body is over the {limit}-byte limit",
                    {"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)
