"""Operational events (an endpoint was disabled, a delivery exhausted its retries, ...).

They are logged now; the alert triggers of a later issue subscribe here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("hookpost.events")

ENDPOINT_DISABLED = "endpoint.disabled"
DELIVERY_EXHAUSTED = "delivery.exhausted"


@dataclass(slots=True)
class OperationalEvent:
    kind: str
    app_id: str
    data: dict[str, Any] = field(default_factory=dict)


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[OperationalEvent], None]] = []

    def subscribe(self, callback: Callable[[OperationalEvent], None]) -> None:
        self._subscribers.append(callback)

    def emit(self, event: OperationalEvent) -> None:
        log.info("%s app=%s %s", event.kind, event.app_id, event.data)
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not break delivery
                log.exception("operational event subscriber failed")
