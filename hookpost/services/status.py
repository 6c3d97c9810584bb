"""The runtime as operators watch it: is the database up, how deep is the delivery queue."""

from __future__ import annotations

from dataclasses import dataclass

from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Store


@dataclass(frozen=True, slots=True)
class QueueStatus:
    due: int  # deliveries due now (incl. expired leases)
    scheduled: int  # pending deliveries due later (retries)
    oldest_due_age_s: float  # how long the oldest due delivery has waited; 0 when none is due


class StatusService:
    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock

    async def ping(self) -> None:
        """Returns when the database answers; StoreUnavailable when it does not."""
        await self._store.ping()

    async def queue(self) -> QueueStatus:
        now = self._clock()
        depth = await self._store.queue_depth(now)
        oldest = depth.oldest_due_at
        age = 0.0 if oldest is None else max(0, now - oldest) / 1000
        return QueueStatus(depth.due, depth.scheduled, age)
