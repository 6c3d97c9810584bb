"""Prometheus metrics, one set per running hookpost (no module-level globals).

Two registries: what the API process counts, and what the delivery worker counts. When the
worker runs in another process (``hookpost serve`` on two cores), that process renders its
registry and the API's ``/metrics`` appends it through ``worker_source``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import (
    GC_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from hookpost.domain.retry import OUTCOME_CLASSES

# The worker child's process and GC metrics, under names of their own: one scrape of the API
# (which appends the child's text) must not hold two families of one name.
CHILD_PREFIX = "hookpost_worker_"


class Metrics:
    def __init__(self) -> None:
        self.api_registry = CollectorRegistry(auto_describe=True)
        self.worker_registry = CollectorRegistry(auto_describe=True)
        # Set when the worker runs in another process: returns that process's exposition.
        self.worker_source: Callable[[], Awaitable[bytes]] | None = None
        self._child_process: CollectorRegistry | None = None
        # The process's CPU, memory, file descriptors and garbage collections: the shared
        # default collectors (they read this process, whichever registry holds them).
        self.api_registry.register(PROCESS_COLLECTOR)
        self.api_registry.register(GC_COLLECTOR)
        self.http_requests = Counter(
            "hookpost_http_requests",
            "API requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.api_registry,
        )
        self.http_seconds = Histogram(
            "hookpost_http_request_duration_seconds",
            "API request duration, by route template, method and status",
            ["route", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.api_registry,
        )
        self.rate_limited = Counter(
            "hookpost_rate_limited",
            "API requests refused by the per-token rate limit (429)",
            registry=self.api_registry,
        )
        self.messages = Counter(
            "hookpost_messages_accepted",
            "Messages accepted (stored with their deliveries)",
            registry=self.api_registry,
        )
        self.deliveries = Counter(
            "hookpost_deliveries",
            "Deliveries that reached a final or retry state, by outcome",
            ["outcome"],  # succeeded | retried | failed
            registry=self.worker_registry,
        )
        self.attempts = Counter(
            "hookpost_attempts",
            "Delivery attempts made, by outcome: the status code's class or error (no response)",
            ["status_class"],
            registry=self.worker_registry,
        )
        # Every class from the start (a rate over a series that appears late misses its
        # first increments), and no labels() lookup per attempt.
        self.attempts_by_class = {c: self.attempts.labels(c) for c in OUTCOME_CLASSES}
        self.attempt_seconds = Histogram(
            "hookpost_attempt_duration_seconds",
            "Duration of outbound webhook requests",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
            registry=self.worker_registry,
        )
        self.endpoints_disabled = Counter(
            "hookpost_endpoints_disabled",
            "Endpoints disabled automatically",
            registry=self.worker_registry,
        )

    def worker_exposition(self) -> bytes:
        return generate_latest(self.worker_registry)

    def child_exposition(self) -> bytes:
        """What ``serve``'s worker child answers: its counters, and its own process and GC
        metrics renamed (``hookpost_worker_process_...``)."""
        if self._child_process is None:
            self._child_process = CollectorRegistry(auto_describe=False)
            self._child_process.register(Renamed(PROCESS_COLLECTOR, CHILD_PREFIX))
            self._child_process.register(Renamed(GC_COLLECTOR, CHILD_PREFIX))
        return self.worker_exposition() + generate_latest(self._child_process)

    async def exposition(self) -> bytes:
        """Prometheus text of this runtime: the API's counters and the worker's, wherever
        the worker runs."""
        worker = await self.worker_source() if self.worker_source else self.worker_exposition()
        return generate_latest(self.api_registry) + worker


class Renamed(Collector):
    """Another collector's metrics, each name prefixed."""

    def __init__(self, inner: Collector, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix

    def collect(self) -> Iterable[Metric]:
        for metric in self._inner.collect():
            metric.name = self._prefix + metric.name
            metric.samples = [s._replace(name=self._prefix + s.name) for s in metric.samples]
            yield metric
