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
    SigningKey,
    Trigger,
)
from hookpost.domain.queries import FinishOutcome
from hookpost.domain.retry import Outcome
from hookpost.store.memory import MemoryQueue

DEADLINE_S = 5.0


async def _settle() -> None:
    """Let every task run until it waits on something (loop turns, no time passes)."""
    for _ in range(100):
        await asyncio.sleep(0)


def _claimed(row: int, endpoint: str) -> ClaimedDelivery:
    return ClaimedDelivery(
        delivery_id=row,
        lease=f"lease-{row}",
        app_id="app_1",
        message_id=f"msg_{row}",
        endpoint_id=endpoint,
        event_type="a.b",
        payload=b"{}",
        msg_created_at=0,
        attempts=0,
        trigger=Trigger.SCHEDULED,
        url=f"http://{endpoint}.test/",
        headers={},
        keys=[SigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
        signature_scheme="standard-v1",
        retry_schedule=None,
        due_at=row,
    )


class QueueStore(MemoryQueue):
    """Due rows in due order, each named by its endpoint, in the in-memory queue; it records
    what the worker asks of it. A row's number is its delivery id and its due time."""

    def __init__(self, endpoints_in_due_order: Sequence[str]) -> None:
        super().__init__()
        for row, endpoint in enumerate(endpoints_in_due_order, 1):
            self.add(_claimed(row, endpoint))
        self.limits: list[int] = []  # what each claim asked for
        self.claims: list[int] = []  # and the rows it returned
        self.finished: list[int] = []  # delivery ids whose results were written
        self.released: list[int] = []  # and those handed back unfinished
        self.due_froms: list[int | None] = []  # where each claim started
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
        due_from: int | None = None,
    ) -> list[ClaimedDelivery]:
        self.limits.append(limit)
        self.due_froms.append(due_from)
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
            due_from=due_from,
        )
        self.claims.append(len(got))
        return got

    async def finish_attempts(
        self, results: Sequence[AttemptResult], now_ms: int, disable_after_ms: int
    ) -> FinishOutcome:
        self.finished += [r.delivery_id for r in results]
        return await super().finish_attempts(results, now_ms, disable_after_ms)

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


async def test_a_short_claim_that_fills_an_endpoint_wakes_a_claim_loop_out_of_slots(
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
        # may take 2, scans msg_4 b and msg_5 b, and gets msg_4 only (b is full again): short,
        # with a slot left. Only the claim loop can fill it, with a's rows behind b's.
        sender.gate.set()
        await sender.until(
            lambda: {"msg_6", "msg_7", "msg_8"} <= sender.answered, "a's later rows delivered"
        )
        # msg_1 and msg_2 were written in one batch (2 slots handed back, so the claim
        # alongside asked for 2 and got 1), and the claim loop took the slot left (msg_6).
        assert (store.limits[:3], store.claims[:3]) == ([3, 2, 1], [3, 1, 1]), vars(store)
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


async def test_claims_start_after_a_saturated_endpoints_backlog_until_it_frees_a_slot(
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
        # Claim 1 fills n (rows 1, 2); claim 2 excludes n, walks past rows 3 and 4 and takes
        # rows 5 and 6. Every later claim while n is full starts at row 5 or after.
        assert store.due_froms[:2] == [None, None], vars(store)
        later = store.due_froms[2:]
        assert later and all(f is not None and f >= 5 for f in later), vars(store)
        assert store.pending() == [3, 4]
        # n answers: it is no longer excluded, so the next claim walks from the start again.
        sender.hang.set()
        await sender.until(lambda: {"msg_3", "msg_4"} <= sender.answered, "n's backlog sent")
        assert None in store.due_froms[len(later) + 2 :], vars(store)
    finally:
        sender.hang.set()
        await worker.stop()


def _watermark_worker() -> DeliveryWorker:
    return _worker(QueueStore([]), HeldSender(set(), set()), poll_interval_s=1.0)


def test_the_claim_watermark_is_dropped_when_an_owner_frees_up_or_after_a_poll() -> None:
    worker = _watermark_worker()
    worker._watermark = (frozenset({"n", "m"}), 500, 10.0)
    assert worker._due_from(["n", "m", "x"], 10.999) == 500
    assert worker._due_from(["n"], 10.999) is None  # m is not excluded any more
    assert worker._watermark is None
    worker._watermark = (frozenset({"n"}), 500, 10.0)
    assert worker._due_from(["n"], 11.0) is None  # walk from the start once per poll (loop time)


def test_the_claim_watermark_moves_only_behind_leased_rows_and_a_poll_behind_now() -> None:
    worker = _watermark_worker()
    now = 100_000
    # a claim that leased nothing sets nothing: canceled rows may have used up its limit
    worker._move_watermark(["n"], [], now, 5.0)
    assert worker._watermark is None
    # not past the first leased row, and never within a poll interval of now: a writer that
    # took its "now" just before our claim may commit a row due then, after it
    worker._move_watermark(["n"], [_claimed(99_500, "h"), _claimed(99_700, "h")], now, 5.0)
    assert worker._watermark == (frozenset({"n"}), now - 1_000, 5.0)
    worker._watermark = None  # the next claim walks from the start
    worker._move_watermark(["n"], [_claimed(2_000, "h")], now, 6.0)
    assert worker._watermark == (frozenset({"n"}), 2_000, 6.0)
    # a claim that started at the watermark moves it on, keeping the time of the last walk
    worker._move_watermark(["n", "m"], [_claimed(3_000, "h")], now, 6.5)
    assert worker._watermark == (frozenset({"n", "m"}), 3_000, 6.0)
    worker._move_watermark(["n", "m"], [], now, 6.6)
    assert worker._watermark == (frozenset({"n", "m"}), 3_000, 6.0)
    # no endpoint excluded: nothing to skip, the watermark is left for _due_from to judge
    worker._move_watermark([], [_claimed(4_000, "h")], now, 7.0)
    assert worker._watermark == (frozenset({"n", "m"}), 3_000, 6.0)
