"""The delivery loop: claim due deliveries and keep their slots and leases; each is sent by
``sending.Sending`` and its outcome recorded in batches by ``recording.ResultWriter``.

Backpressure: a delivery holds one in-flight slot from its claim until its result is handed to
the store, so a slow database slows claiming instead of piling up unwritten results in memory
(at most one pool's worth is being written while the next pool is out).
Isolation: an endpoint at its in-flight limit is excluded from claims, and a claim that still
returns more of its deliveries than it may run hands the extra ones straight back, so one slow
endpoint cannot take every slot. And a request still unanswered after ``SLOW_AFTER_S`` stops
counting against ``max_in_flight``: it moves to a second pool of the same size, so endpoints that
hang until the timeout (or answer after seconds) do not starve the healthy ones of slots.
Leases: a heartbeat renews the leases of every delivery in flight, in one store call every
third of a lease, so a slow receiver never loses its delivery to another claim; and should a
heartbeat be late, claims name the deliveries in flight, so the worker never takes one of its
own back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from hookpost.delivery.config import WorkerConfig
from hookpost.delivery.http import HttpSender
from hookpost.delivery.recording import Batch, ResultWriter
from hookpost.delivery.sending import Sending
from hookpost.domain.errors import StoreUnavailable
from hookpost.domain.models import ClaimedDelivery
from hookpost.services.common import now_ms
from hookpost.services.events import EventBus
from hookpost.services.metrics import Metrics
from hookpost.store.base import DeliveryQueue
from hookpost.store.operator_ports import Traces

if TYPE_CHECKING:
    from hookpost.domain.tracecontext import TraceContext
    from hookpost.services.tracing import Tracing

__all__ = ["SLOW_AFTER_S", "DeliveryWorker", "WorkerConfig"]

log = logging.getLogger("hookpost.worker")

SLOW_AFTER_S = 0.5  # healthy receivers answer well within this; a held slot is then idle


class DeliveryWorker:
    def __init__(
        self,
        store: DeliveryQueue,
        sender: HttpSender,
        config: WorkerConfig,
        *,
        metrics: Metrics | None = None,
        events: EventBus | None = None,
        clock: Callable[[], int] = now_ms,
        tracing: Tracing | None = None,
        traces: Traces | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        metrics = metrics or Metrics()
        self._sending = Sending(sender, config, metrics, clock, tracing=tracing, traces=traces)
        self._writer = ResultWriter(
            store, config, self, metrics=metrics, events=events or EventBus(), clock=clock
        )
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: dict[int, ClaimedDelivery] = {}
        # First-pool requests: delivery id -> loop time of its claim, in claim order.
        self._claimed_at: dict[int, float] = {}
        self._slow: set[int] = set()  # in flight for over SLOW_AFTER_S: in the second pool
        self._per_endpoint: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writing = 0  # results being written: in _in_flight, but their slots are free
        self._claiming = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        self._slow_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._options_task: asyncio.Task[None] | None = None
        self._options_loaded = asyncio.Event()
        # Loop time until which every in-flight lease surely holds (claims and renewals move
        # it); and when the claim under way, if any, began (its leases begin no earlier).
        self._leases_hold_until = math.inf
        self._claim_started: float | None = None
        # For _idle_timeout: the last claim (when, whether it excluded anything), and the
        # queue's next due time as last read from the store (and when it was read).
        self._last_claim: tuple[int, bool] = (0, False)
        self._next_due: int | None = None
        self._next_due_read_at: int | None = None
        store.on_new_work(self.wake)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._claim_loop(), name="hookpost-claim")
        self._slow_task = asyncio.create_task(self._slow_loop(), name="hookpost-slow")
        self._flush_task = asyncio.create_task(self._writer.run(), name="hookpost-flush")
        self._renew_task = asyncio.create_task(self._renew_loop(), name="hookpost-renew")
        self._options_task = asyncio.create_task(self._options_loop(), name="hookpost-options")

    async def stop(self) -> None:
        """Stop claiming, let in-flight requests finish until the grace deadline, write their
        results, and hand any unfinished deliveries back to the queue."""
        self._stopping.set()
        self._wake.set()
        self._slot_freed.set()  # a saturated claim loop waits for a free slot, not a wake-up
        if self._loop_task is not None:
            await self._loop_task
        async with self._claiming:
            pass  # a claim alongside a write, begun before stop(), has started its deliveries
        if self._slow_task is not None:
            self._slow_task.cancel()
            await asyncio.gather(self._slow_task, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._config.shutdown_grace_s)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writer.drain()
        if self._flush_task is not None:
            await self._flush_task
        for background in (self._renew_task, self._options_task):
            if background is not None:
                background.cancel()
                await asyncio.gather(background, return_exceptions=True)
        unfinished = [(d.delivery_id, d.lease) for d in self._in_flight.values()]
        if unfinished:
            with contextlib.suppress(Exception):
                await self._store.release(unfinished, self._clock())

    def wake(self) -> None:
        """New work may be due: claim now instead of at the next poll (called by the store's
        own notifications, and by ``hookpost serve``'s wake pipe from the API process)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- claiming ----------------------------------------------------------------------------
    def _claimable(self) -> int:
        busy = len(self._in_flight) - len(self._slow) - self._writing
        return min(self._config.max_in_flight - busy, self._config.claim_batch)

    async def _claim_loop(self) -> None:
        backoff = 0.1
        # The first deliveries' retry decisions see the options (unless the store is slow).
        await self._wait(self._options_loaded, self._config.poll_interval_s)
        while not self._stopping.is_set():
            failed: Exception | None = None
            more = False
            async with self._claiming:  # not at the same time as a claim alongside a write
                if self._stopping.is_set():
                    return  # stop() was called while we waited for the lock
                want = self._claimable()
                if want > 0:
                    self._wake.clear()
                    try:
                        more = await self._claim(want)
                    except Exception as exc:  # the loop must outlive any one failure
                        failed = exc
            if want <= 0:
                self._slot_freed.clear()
                await self._wait(self._slot_freed, None)
                continue
            if failed is not None:
                log.warning(
                    "claim failed, retrying in %.1fs: %s",
                    backoff,
                    failed,
                    exc_info=not isinstance(failed, StoreUnavailable),
                )
                await self._wait(self._stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            if more:
                continue  # more may be due right now
            await self._wait(self._wake, await self._idle_timeout())

    async def claim_alongside(self) -> None:
        """Claim into the slots a write is handing back, at the same time as that write: with
        SQLite both join one transaction (one commit instead of two, and one turn of the write
        lock that the API process waits for). Left to the claim loop while that is claiming:
        woken, it looks again as soon as its claim returns."""
        if self._stopping.is_set():
            return
        if self._claiming.locked():
            self._wake.set()
            self._slot_freed.set()
            return
        async with self._claiming:
            want = self._claimable()
            if want <= 0:
                return
            try:
                more = await self._claim(want)
            except Exception:
                more = True  # the claim loop retries, with its backoff and logging
        if more:
            self._wake.set()
        if self._claimable() > 0:
            # A claim loop that ran out of slots waits for this, not for the wake: without it,
            # a short claim that filled an endpoint (more, with slots left) left the rows
            # behind that endpoint's surplus to the next write or the slow loop's next tick.
            self._slot_freed.set()

    async def _claim(self, want: int) -> bool:
        """Claim and start up to ``want`` deliveries; True if more may be due right now."""
        limit = self._config.max_in_flight_per_endpoint
        saturated = [ep for ep, n in self._per_endpoint.items() if n >= limit]
        now = self._clock()
        walked = asyncio.get_running_loop().time()
        lease_s = self._config.lease_s
        was_idle = not self._in_flight
        # A lease of ours may run out before the next heartbeat: never take it back ourselves.
        held = list(self._in_flight) if walked + lease_s / 3 >= self._leases_hold_until else ()
        # The store leaves each endpoint's surplus due (the cap), so a claim whose oldest rows
        # belong to an endpoint that was saturated until now does not lease them all only for
        # us to release most of them again at once.
        self._claim_started = walked
        try:
            batch = await self._store.claim_due(
                want,
                int(lease_s * 1000),
                now,
                saturated,
                max_per_endpoint=limit,
                in_flight=self._per_endpoint,
                exclude_deliveries=held,
            )
        finally:
            self._claim_started = None
        if batch:
            until = walked + lease_s
            self._leases_hold_until = until if was_idle else min(self._leases_hold_until, until)
        self._last_claim = (now, bool(saturated or held))
        loop_now = asyncio.get_running_loop().time()
        extra = []
        filled = False  # an endpoint reached its limit: the cap may have left rows behind
        links = await self._sending.trace_links(batch)
        for delivery in batch:
            if self._per_endpoint[delivery.endpoint_id] >= limit:
                extra.append((delivery.delivery_id, delivery.lease))  # only if the store
                continue  # did not apply the cap
            self._in_flight[delivery.delivery_id] = delivery
            self._claimed_at[delivery.delivery_id] = loop_now
            self._per_endpoint[delivery.endpoint_id] += 1
            filled = filled or self._per_endpoint[delivery.endpoint_id] >= limit
            task = asyncio.create_task(self._deliver(delivery, links))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if extra:
            await self._store.release(extra, now)
        # Claim again at once if the batch was full, or if an endpoint just filled up: the
        # next claim excludes it and reaches the rows behind its surplus.
        return len(batch) >= want or filled

    async def _slow_loop(self) -> None:
        """Move requests unanswered for SLOW_AFTER_S to the second pool (at most
        ``max_in_flight`` of them), freeing their slots for claims."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SLOW_AFTER_S / 2)
            cutoff = loop.time() - SLOW_AFTER_S
            room = self._config.max_in_flight - len(self._slow)
            moved: list[int] = []
            for delivery_id, claimed_at in self._claimed_at.items():
                if len(moved) >= room or claimed_at > cutoff:
                    break  # insertion order is claim order: the rest are younger
                moved.append(delivery_id)
            for delivery_id in moved:  # out of the first pool, so never looked at again
                del self._claimed_at[delivery_id]
                self._slow.add(delivery_id)
            if moved:
                self._slot_freed.set()

    async def _options_loop(self) -> None:
        """Re-read the event types' schedules and the endpoints' timeouts every
        ``options_refresh_s``: one store call, off the delivery path (docs/decisions/0027).
        And sweep the ordered endpoints (DeliveryQueue.settle_ordered): one more, as cheap."""
        while True:
            try:
                options = await self._store.delivery_options()
            except Exception as exc:  # keep the last ones; the next round tries again
                log.warning("reading the delivery options failed: %s", exc)
            else:
                self._sending.use_options(options)
            self._options_loaded.set()
            try:
                await self._store.settle_ordered(self._clock())
            except Exception as exc:  # the next round tries again
                log.warning("sweeping the ordered endpoints failed: %s", exc)
            await asyncio.sleep(self._config.options_refresh_s)

    async def _renew_loop(self) -> None:
        """The heartbeat: every third of a lease, renew the leases of every delivery in
        flight, in one store call (one statement) for all of them."""
        loop = asyncio.get_running_loop()
        lease_s = self._config.lease_s
        while True:
            await asyncio.sleep(lease_s / 3)
            if not self._in_flight:
                continue
            started = loop.time()
            if self._claim_started is not None:  # its deliveries are not in this renewal
                started = min(started, self._claim_started)
            leases = [(d.delivery_id, d.lease) for d in self._in_flight.values()]
            try:
                await self._store.renew(leases, int(lease_s * 1000), self._clock())
            except Exception as exc:  # the next heartbeat tries again; claims keep clear
                log.warning(
                    "renewing %d leases failed: %s",
                    len(leases),
                    exc,
                    exc_info=not isinstance(exc, StoreUnavailable),
                )
                continue
            self._leases_hold_until = started + lease_s

    async def _idle_timeout(self) -> float:
        """Sleep until the next scheduled delivery is due, but never longer than the poll
        interval (other processes may create work we are not told about).

        The next due time is read from the store at most once per poll interval, or again once
        it has passed, not after every short claim: new work wakes the loop anyway, and the
        retries this worker schedules lower it (``_deliver``).
        """
        now = self._clock()
        read_at, due = self._next_due_read_at, self._next_due
        poll_ms = self._config.poll_interval_s * 1000
        if read_at is None or now - read_at >= poll_ms or (due is not None and due <= now):
            try:
                due = self._next_due = await self._store.next_due_at(now)
            except StoreUnavailable:
                return self._config.poll_interval_s
            self._next_due_read_at = now
        claimed_at, excluded = self._last_claim
        if due is None or (excluded and due <= claimed_at):
            # Nothing scheduled, or what was already due waits for endpoints at their limit or
            # is ours, in flight: a freed slot wakes the loop (claim_alongside). Claiming again
            # at once would spin.
            return self._config.poll_interval_s
        return max(0.0, min(self._config.poll_interval_s, (due - self._clock()) / 1000))

    async def _wait(self, event: asyncio.Event, at_most_s: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), at_most_s)

    # -- sending and recording (sending.py, recording.py) -------------------------------------
    async def _deliver(
        self, d: ClaimedDelivery, links: dict[str, TraceContext] | None = None
    ) -> None:
        result = await self._sending.attempt(d, links)
        retry_at = result.next_attempt_at
        if retry_at is not None and (self._next_due is None or retry_at < self._next_due):
            self._next_due = retry_at  # keeps _idle_timeout's cached due time honest
            self._wake.set()  # so that an idle claim loop shortens its sleep
        self._writer.put(result, d)

    # The writer's Slots: its batches hand their slots back here, and are claimed into.
    def hand_back_slots(self, batch: Batch) -> None:
        """Free the slots of results about to be written, for claim_alongside. Memory stays
        bounded: what is being written is at most one pool's worth."""
        for _, delivery in batch:
            self._claimed_at.pop(delivery.delivery_id, None)
            self._slow.discard(delivery.delivery_id)
            self._per_endpoint[delivery.endpoint_id] -= 1
            if self._per_endpoint[delivery.endpoint_id] <= 0:
                del self._per_endpoint[delivery.endpoint_id]
        self._writing += len(batch)

    def written(self, delivery: ClaimedDelivery) -> None:
        self._in_flight.pop(delivery.delivery_id, None)
        self._writing -= 1
