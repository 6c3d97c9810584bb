"""An in-memory :class:`~hookpost.store.base.DeliveryQueue`, for tests of its consumers (the
worker) that need no database.

It claims, leases, finishes and releases as the database backends do (``tests/contract`` runs
the queue's part of the contract on it too), but it holds deliveries only: it has no messages
or endpoints of its own. Deliveries are seeded with :meth:`MemoryQueue.add`; a finished attempt
records no endpoint health and disables nothing, no endpoint's rows are ever canceled, and
no endpoint is ordered (domain.ordering).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from hookpost.domain.models import (
    AttemptResult,
    ClaimedDelivery,
    DeliveryOptions,
    DeliveryStatus,
    Trigger,
)
from hookpost.domain.operational import OperationalEvent
from hookpost.domain.queries import FinishOutcome, QueueDepth
from hookpost.domain.scheduling import ClaimRounds, Head

if TYPE_CHECKING:
    from hookpost.store.base import DeliveryQueue


@dataclass(slots=True)
class _Row:
    delivery: ClaimedDelivery  # what a claim hands out, its lease and due time aside
    status: DeliveryStatus = DeliveryStatus.PENDING
    due_at: int | None = None  # pending: when it is due; leased: when the lease expires
    lease: str | None = None


def _endpoint_of(delivery: ClaimedDelivery) -> str:
    return delivery.endpoint_id


class MemoryQueue:
    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._callbacks: list[Callable[[], None]] = []
        self.notified: list[OperationalEvent] = []
        self.options = DeliveryOptions()  # what delivery_options() answers

    def add(self, delivery: ClaimedDelivery) -> None:
        """A pending delivery, due at ``delivery.due_at``, as a created message's would be."""
        self._rows[delivery.delivery_id] = _Row(delivery, due_at=delivery.due_at)
        self._new_work()

    def status(self, delivery_id: int) -> DeliveryStatus:
        return self._rows[delivery_id].status

    def on_new_work(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def _new_work(self) -> None:
        for callback in self._callbacks:
            callback()

    async def claim_due(
        self,
        limit: int,
        lease_ms: int,
        now_ms: int,
        exclude_endpoints: Sequence[str] = (),
        *,
        max_per_endpoint: int | None = None,
        in_flight: Mapping[str, int] | None = None,
        exclude_deliveries: Sequence[int] = (),
    ) -> list[ClaimedDelivery]:
        held = set(exclude_deliveries)
        queues: dict[str, list[tuple[int, int]]] = {}  # endpoint -> its due (due_at, id)
        for delivery_id, row in self._rows.items():
            if row.due_at is not None and row.due_at <= now_ms and delivery_id not in held:
                queues.setdefault(row.delivery.endpoint_id, []).append((row.due_at, delivery_id))
        for queue in queues.values():
            queue.sort()
        heads = [Head(endpoint_id, queue[0][0]) for endpoint_id, queue in queues.items()]
        rounds = ClaimRounds(heads, limit, max_per_endpoint, in_flight, exclude_endpoints)
        lease = secrets.token_hex(8)
        claimed: list[ClaimedDelivery] = []
        shares = rounds.first
        while shares:
            taken = []
            for share in shares:
                queue = queues[share.endpoint_id]
                for due_at, delivery_id in queue[: share.take]:
                    row = self._rows[delivery_id]
                    row.status, row.due_at, row.lease = (
                        DeliveryStatus.SENDING,
                        now_ms + lease_ms,
                        lease,
                    )
                    taken.append(replace(row.delivery, lease=lease, due_at=due_at))
                del queue[: share.take]
            claimed += taken
            shares = rounds.next(d.endpoint_id for d in taken)
        return rounds.order(claimed, _endpoint_of)

    async def finish_attempts(
        self,
        results: Sequence[AttemptResult],
        now_ms: int,
        disable_after_ms: int,
        disable_after_failures: int = 0,
        notify: Sequence[OperationalEvent] = (),
    ) -> FinishOutcome:
        # No messages here: the events are kept for the worker's unit tests to read.
        self.notified += notify
        stale = 0
        for r in results:
            row = self._rows.get(r.delivery_id)
            if row is None or row.lease is None or row.lease != r.lease:
                stale += 1  # it lost its lease: another claimer owns the delivery now
                continue
            pending = r.next_status == DeliveryStatus.PENDING
            row.status, row.lease = r.next_status, None
            row.due_at = r.next_attempt_at if pending else None
            row.delivery = replace(row.delivery, attempts=r.attempts, trigger=Trigger.SCHEDULED)
        return FinishOutcome(disabled_endpoints=[], stale=stale)

    async def release(self, leases: Sequence[tuple[int, str]], now_ms: int) -> int:
        released = 0
        for delivery_id, lease in leases:
            row = self._rows.get(delivery_id)
            if row is not None and row.lease is not None and row.lease == lease:
                row.status, row.due_at, row.lease = DeliveryStatus.PENDING, now_ms, None
                released += 1
        if released:
            self._new_work()
        return released

    async def renew(self, leases: Sequence[tuple[int, str]], lease_ms: int, now_ms: int) -> int:
        renewed = 0
        for delivery_id, lease in leases:
            row = self._rows.get(delivery_id)
            if row is not None and row.lease is not None and row.lease == lease:
                row.due_at = now_ms + lease_ms
                renewed += 1
        return renewed

    async def queue_depth(self, now_ms: int) -> QueueDepth:
        due = [r.due_at for r in self._rows.values() if r.due_at is not None and r.due_at <= now_ms]
        scheduled = sum(
            1
            for r in self._rows.values()
            if r.due_at is not None and r.due_at > now_ms and r.status == DeliveryStatus.PENDING
        )
        return QueueDepth(due=len(due), oldest_due_at=min(due, default=None), scheduled=scheduled)

    async def settle_ordered(self, now_ms: int) -> int:
        return 0  # no endpoints, so none is ordered

    async def delivery_options(self) -> DeliveryOptions:
        return self.options

    async def next_due_at(self, now_ms: int | None = None) -> int | None:
        return min((r.due_at for r in self._rows.values() if r.due_at is not None), default=None)


if TYPE_CHECKING:  # mypy holds it to the port
    _port: type[DeliveryQueue] = MemoryQueue
