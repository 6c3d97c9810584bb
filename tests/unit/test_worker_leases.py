"""The worker keeps the leases of its in-flight deliveries: one batched renewal per third of a
lease, and, should renewals fail, claims that never take its own in-flight deliveries back.

Driven with the in-memory queue (``store.memory``) on the worker's own clock, and a sender
that holds every request until the test lets it through."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from hookpost.delivery.http import Response
from hookpost.delivery.worker import DeliveryWorker, WorkerConfig
from hookpost.domain.errors import StoreUnavailable
from hookpost.domain.models import ClaimedDelivery, DeliveryStatus
from hookpost.domain.retry import Outcome
from hookpost.services.common import now_ms
from hookpost.store.memory import MemoryQueue
from tests.support.deliveries import claimed
from tests.support.polling import eventually

LEASE_S = 0.3


class Queue(MemoryQueue):
    """Records the claims (when, what they skipped, how many they took) and renewals."""

    def __init__(self, endpoints: Sequence[str], *, renewals_fail: bool = False) -> None:
        super().__init__()
        start = now_ms()
        for row, endpoint in enumerate(endpoints, 1):
            self.add(claimed(row, endpoint, due_at=start))
        self.renewals_fail = renewals_fail
        self.renewals: list[list[int]] = []
        self.claims: list[tuple[int, list[int], int]] = []

    async def claim_due(self, *args: Any, **kwargs: Any) -> list[ClaimedDelivery]:
        got = await super().claim_due(*args, **kwargs)
        now, skipped = args[2], kwargs.get("exclude_deliveries", ())
        self.claims.append((now, sorted(skipped), len(got)))
        return got

    async def renew(self, leases: Sequence[tuple[int, str]], lease_ms: int, now_ms: int) -> int:
        self.renewals.append(sorted(delivery_id for delivery_id, _ in leases))
        if self.renewals_fail:
            raise StoreUnavailable("the database is away")
        return await super().renew(leases, lease_ms, now_ms)


class HeldSender:
    """Counts requests per message id; holds each until ``gate`` opens."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.gate = asyncio.Event()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        msg_id = headers["webhook-id"]
        self.sent[msg_id] = self.sent.get(msg_id, 0) + 1
        await self.gate.wait()
        return Response(Outcome(200), "", 1)


def _worker(queue: Queue, sender: HeldSender, **config: Any) -> DeliveryWorker:
    settings: dict[str, Any] = {"retry_schedule": (5,), "lease_s": LEASE_S, **config}
    return DeliveryWorker(queue, sender, WorkerConfig(**settings))  # type: ignore[arg-type]


async def test_the_leases_in_flight_are_renewed_in_one_call_per_interval() -> None:
    queue, sender = Queue(["ep_a", "ep_a", "ep_b"]), HeldSender()
    worker = _worker(queue, sender)
    worker.start()
    try:
        # Held for several leases: only the renewals keep the deliveries ours.
        await eventually(lambda: _value(len(queue.renewals)), lambda n: n >= 6, timeout=5)
        assert all(renewed == [1, 2, 3] for renewed in queue.renewals), queue.renewals
        sender.gate.set()
        await eventually(
            lambda: _value([queue.status(row) for row in (1, 2, 3)]),
            lambda s: s == [DeliveryStatus.SUCCEEDED] * 3,
            timeout=5,
        )
    finally:
        sender.gate.set()
        await worker.stop()
    assert sender.sent == {"msg_1": 1, "msg_2": 1, "msg_3": 1}


async def test_a_claim_never_takes_back_a_delivery_still_in_flight() -> None:
    """The renewals fail (the database is away): the lease runs out while the request is
    still in flight, and the worker's own claims skip it instead of sending it again."""
    queue, sender = Queue(["ep_a"], renewals_fail=True), HeldSender()
    worker = _worker(queue, sender, poll_interval_s=0.05)
    worker.start()
    try:
        await eventually(lambda: _value(sender.sent), lambda s: s == {"msg_1": 1}, timeout=5)
        first_claim_at = queue.claims[0][0]
        expired = first_claim_at + int(LEASE_S * 1000)
        await eventually(
            lambda: _value([c for c in queue.claims if c[0] > expired]),
            lambda late: len(late) >= 3,
            timeout=5,
        )
        late = [c for c in queue.claims if c[0] > expired]
        assert all(skipped == [1] and got == 0 for _, skipped, got in late), late
        # and it does not spin on the expired lease it skips: one claim per poll interval
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(late)]
        assert min(gaps) >= 40, gaps
        assert sender.sent == {"msg_1": 1}
        sender.gate.set()
        await eventually(
            lambda: _value(queue.status(1)), lambda s: s == DeliveryStatus.SUCCEEDED, timeout=5
        )
    finally:
        sender.gate.set()
        await worker.stop()
    assert sender.sent == {"msg_1": 1}


async def _value(value: Any) -> Any:
    return value
