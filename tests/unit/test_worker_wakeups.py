"""The claim loop is woken whenever slots it could fill are free and work may be due.

Driven with the in-memory queue (``store.memory``: oldest first, excluded endpoints skipped,
the per-endpoint cap applied, as the stores do) and a sender whose requests the test holds or
lets through, so the order of claims, answers and writes is fixed. The slow pool and the poll
are pushed out of reach: only the wake-ups under test can make the worker go on. Also: stop()
waits for a claim alongside a write that began before it, and for the deliveries that claim
started."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from hookpost.delivery import worker as worker_module
from hookpost.delivery.http import Response
from hookpost.delivery.worker import DeliveryWorker, WorkerConfig
from hookpost.domain.models import (
    AttemptResult,
    ClaimedDelivery,
    DeliveryStatus,
)
from hookpost.domain.operational import OperationalEvent
from hookpost.domain.queries import FinishOutcome
from hookpost.domain.retry import Outcome
from hookpost.store.memory import MemoryQueue
from tests.support.deliveries import claimed

DEADLINE_S = 5.0


async def _settle() -> None:
    """Let every task run until it waits on something (loop turns, no time passes)."""
    for _ in range(100):
        await asyncio.sleep(0)


class QueueStore(MemoryQueue):
    """Due rows in due order, each named by its endpoint, in the in-memory queue; it records
    what the worker asks of it. A row's number is its delivery id and its due time."""

    def __init__(self, endpoints_in_due_order: Sequence[str]) -> None:
        super().__init__()
        for row, endpoint in enumerate(endpoints_in_due_order, 1):
            self.add(claimed(row, endpoint))
        self.limits: list[int] = []  # what each claim asked for
        self.claims: list[int] = []  # and the rows it returned
        self.finished: list[int] = []  # delivery ids whose results were written
        self.released: list[int] = []  # and those handed back unfinished
        self.hold_claim: int | None = None  # this claim (1-based) waits for `go`
        self.held, self.go = asyncio.Event(), asyncio.Event()

    def pending(self) -> list[int]:
        """The rows never claimed (or handed back), in due order."""
        return [row for row in sorted(self._rows) if self.status(row) == DeliveryStatus.PENDING]

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
        self.limits.append(limit)
        if len(self.limits) == self.hold_claim:
            self.held.set()
            await self.go.wait()
        got = await super().claim_due(
            limit,
            lease_ms,
            now_ms,
            exclude_endpoints,
            max_per_endpoint=max_per_endpoint,
            in_flight=in_flight,
            exclude_deliveries=exclude_deliveries,
        )
        self.claims.append(len(got))
        return got

    async def finish_attempts(
        self,
        results: Sequence[AttemptResult],
        now_ms: int,
        disable_after_ms: int,
        disable_after_failures: int = 0,
        notify: Sequence[OperationalEvent] = (),
    ) -> FinishOutcome:
        self.finished += [r.delivery_id for r in results]
        return await super().finish_attempts(
            results, now_ms, disable_after_ms, disable_after_failures, notify
        )

    async def release(self, leases: Sequence[tuple[int, str]], now_ms: int) -> int:
        self.released += [delivery_id for delivery_id, _ in leases]
        return await super().release(leases, now_ms)


class HeldSender:
    """Answers 200 at once, except messages in ``gated`` (when ``gate`` opens) and in ``hung``
    (at the end of the test)."""

    def __init__(self, gated: set[str], hung: set[str]) -> None:
        self.gated, self.hung = gated, hung
        self.gate, self.hang = asyncio.Event(), asyncio.Event()
        self.started: set[str] = set()
        self.answered: set[str] = set()
        self.changed = asyncio.Event()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        msg_id = headers["webhook-id"]
        self.started.add(msg_id)
        self.changed.set()
        if msg_id in self.gated:
            await self.gate.wait()
        elif msg_id in self.hung:
            await self.hang.wait()
        self.answered.add(msg_id)
        self.changed.set()
        return Response(Outcome(200), "", 1)

    async def until(self, done: object, what: str) -> None:
        async def poll() -> None:
            while not done():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(poll(), DEADLINE_S)
        except TimeoutError:
            pytest.fail(f"{what} within {DEADLINE_S}s: started {sorted(self.started)}")


def _worker(store: QueueStore, sender: HeldSender, **config: Any) -> DeliveryWorker:
    """A worker over the fakes; it polls the store only if a test asks it to."""
    settings: dict[str, Any] = {"retry_schedule": (5,), "poll_interval_s": 3600.0, **config}
    return DeliveryWorker(store, sender, WorkerConfig(**settings))  # type: ignore[arg-type]


async def test_a_claim_alongside_a_write_takes_the_freed_slots_past_a_full_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "SLOW_AFTER_S", 3600.0)
    # Endpoint b (at most 2 in flight) is ahead of a in the queue, as a slow endpoint's
    # backlog is ahead of healthy endpoints' newer rows.
    store = QueueStore(["b", "a", "b", "b", "b", "a", "a", "a"])
    sender = HeldSender(gated={"msg_1", "msg_2"}, hung={"msg_3", "msg_4", "msg_5"})
    worker = _worker(
        store,
        sender,
        max_in_flight=3,
        max_in_flight_per_endpoint=2,
        claim_batch=3,
        shutdown_grace_s=0.1,
    )
    worker.start()
    try:
        # The first claim fills the pool (msg_1 b, msg_2 a, msg_3 b): the claim loop now
        # waits for a slot.
        await sender.until(lambda: sender.started == {"msg_1", "msg_2", "msg_3"}, "first claim")
        # msg_1 and msg_2 answer and are written in one batch. The claim alongside that write
        # takes 2: b's next row (b is full again) and a's, not b's whole backlog.
        sender.gate.set()
        await sender.until(
            lambda: {"msg_6", "msg_7", "msg_8"} <= sender.answered, "a's later rows delivered"
        )
        assert (store.limits[:2], store.claims[:2]) == ([3, 2], [3, 2]), vars(store)
        assert "msg_5" not in sender.started  # b's surplus waits for a slot of b's
    finally:
        sender.hang.set()
        await worker.stop()


async def test_stop_waits_for_a_claim_alongside_a_write_and_its_deliveries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "SLOW_AFTER_S", 3600.0)
    store = QueueStore(["a", "a"])
    store.hold_claim = 2  # the claim alongside the write of msg_1's result
    sender = HeldSender(gated={"msg_2"}, hung=set())
    worker = _worker(store, sender, max_in_flight=1, claim_batch=1, shutdown_grace_s=5.0)
    worker.start()
    await asyncio.wait_for(store.held.wait(), DEADLINE_S)
    stopping = asyncio.create_task(worker.stop())
    # Before the fix, stop() went past its grace period and the cancellation of deliveries
    # here, and waited for the flush loop only.
    await _settle()
    store.go.set()  # the held claim returns msg_2, after stop() was called
    await _settle()
    sender.gate.set()  # msg_2 is answered: within the grace period, if stop() waited for it
    await asyncio.wait_for(stopping, DEADLINE_S)
    # msg_2 was claimed before stop() gave up on claims: it is sent and its result written
    # within the grace period, not handed back while its request was still to be sent.
    assert (store.finished, store.released) == ([1, 2], []), vars(store)
    assert sender.answered == {"msg_1", "msg_2"}


async def test_a_saturated_endpoints_backlog_waits_while_the_rows_behind_it_are_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "SLOW_AFTER_S", 3600.0)
    # n never answers (until the end) and its backlog is at the head of the queue.
    store = QueueStore(["n"] * 4 + ["h"] * 6)
    sender = HeldSender(gated=set(), hung={"msg_1", "msg_2", "msg_3", "msg_4"})
    worker = _worker(
        store,
        sender,
        max_in_flight=4,
        max_in_flight_per_endpoint=2,
        claim_batch=2,
        shutdown_grace_s=0.1,
    )
    worker.start()
    try:
        healthy = {f"msg_{row}" for row in range(5, 11)}
        await sender.until(lambda: healthy <= sender.answered, "h's rows delivered")
        assert store.pending() == [3, 4]  # n's surplus stays due, untouched
        # n answers: it frees its slots, and its backlog is sent.
        sender.hang.set()
        await sender.until(lambda: {"msg_3", "msg_4"} <= sender.answered, "n's backlog sent")
    finally:
        sender.hang.set()
        await worker.stop()
