"""Prometheus metrics, one set per running hookpost (no module-level globals).

Two registries: what the API process counts, and what the delivery worker counts. When the
worker runs in another process (``hookpost serve`` on two cores), that process renders its
registry and the API's ``/metrics`` appends it through ``worker_source``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.api_registry = CollectorRegistry(auto_describe=True)
        self.worker_registry = CollectorRegistry(auto_describe=True)
        # Set when the worker runs in another process: returns that process's exposition.
        self.worker_source: Callable[[], Awaitable[bytes]] | None = None
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

    async def exposition(self) -> bytes:
        """Prometheus text of this runtime: the API's counters and the worker's, wherever
        the worker runs."""
        worker = await self.worker_source() if self.worker_source else self.worker_exposition()
        return generate_latest(self.api_registry) + worker
