"""Prometheus metrics, one registry per running hookpost (no module-level globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "hookpost_deliveries",
            "Deliveries that reached a final or retry state, by outcome",
            ["outcome"],  # succeeded | retried | failed
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "hookpost_attempt_duration_seconds",
            "Duration of outbound webhook requests",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
            registry=self.registry,
        )
        self.messages = Counter(
            "hookpost_messages_accepted",
            "Messages accepted (stored with their deliveries)",
            registry=self.registry,
        )
        self.endpoints_disabled = Counter(
            "hookpost_endpoints_disabled",
            "Endpoints disabled automatically",
            registry=self.registry,
        )
