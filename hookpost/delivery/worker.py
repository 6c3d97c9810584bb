"""The delivery loop: claim due deliveries, sign and POST them, record the outcomes in batches.

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
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hookpost.delivery.http import STORED_BYTES, HttpSender
from hookpost.domain import ids
from hookpost.domain import operational as op
from hookpost.domain.errors import StoreUnavailable
from hookpost.domain.models import (
    Attempt,
    AttemptResult,
    AttemptStatus,
    ClaimedDelivery,
    DeliveryStatus,
)
from hookpost.domain.queries import FinishOutcome
from hookpost.domain.retry import decide, error_class, outcome_class, schedule_for
from hookpost.domain.signing import DEFAULT_SCHEME, StandardWebhooksV1, scheme_for
from hookpost.services.common import now_ms
from hookpost.services.events import (
    DELIVERY_EXHAUSTED,
    ENDPOINT_DISABLED,
    EventBus,
    OperationalEvent,
)
from hookpost.services.metrics import Metrics
from hookpost.store.base import DeliveryQueue
from hookpost.store.operator_ports import Traces

if TYPE_CHECKING:
    from hookpost.domain.tracecontext import TraceContext
    from hookpost.services.tracing import Tracing

log = logging.getLogger("hookpost.worker")

SLOW_AFTER_S = 0.5  # healthy receivers answer well within this; a held slot is then idle


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    retry_schedule: tuple[int, ...]
    max_in_flight: int = 256
    max_in_flight_per_endpoint: int = 32
    lease_s: float = 60.0
    poll_interval_s: float = 1.0
    claim_batch: int = 128
    disable_after_s: float = 5 * 24 * 3600.0
    disable_after_failures: int = 0  # domain.health; 0: off
    shutdown_grace_s: float = 10.0
    signature_header_prefix: str = "webhook"
    # How stale the cached event-type schedules and endpoint timeouts may be (seconds), and
    # the longest request timeout the lease allows (wiring.longest_request_s).
    options_refresh_s: float = 5.0
    max_request_timeout_s: float = 40.0
    # HOOKPOST_SEND_TRACEPARENT: the attempt span's context goes out as `traceparent`
    send_traceparent: bool = False


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
        # OTEL_* tracing (docs/decisions/0035-tracing.md); None: no span, no lookup
        self._tracing = tracing
        self._traces = traces
        self._sender = sender
        self._config = config
        self._metrics = metrics or Metrics()
        self._events = events or EventBus()
        self._clock = clock
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: dict[int, ClaimedDelivery] = {}
        # First-pool requests: delivery id -> loop time of its claim, in claim order.
        self._claimed_at: dict[int, float] = {}
        self._slow: set[int] = set()  # in flight for over SLOW_AFTER_S: in the second pool
        self._per_endpoint: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: list[tuple[AttemptResult, ClaimedDelivery]] = []
        self._writing = 0  # results being written: in _in_flight, but their slots are free
        self._claiming = asyncio.Lock()
        self._results_ready = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._slow_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._options_task: asyncio.Task[None] | None = None
        self._options_loaded = asyncio.Event()
        # The options the claim does not read (event name -> schedule, endpoint id ->
        # timeout), refreshed by _options_loop; empty when none is set anywhere.
        self._type_schedules: dict[str, tuple[int, ...]] = {}
        self._timeouts: dict[str, float] = {}
        self._traceparent: dict[str, bool] = {}  # endpoint id -> its sendTraceparent, where set
        self._draining = False
        # Loop time until which every in-flight lease surely holds (claims and renewals move
        # it); and when the claim under way, if any, began (its leases begin no earlier).
        self._leases_hold_until = math.inf
        self._claim_started: float | None = None
        self._scheme_default = StandardWebhooksV1(header_prefix=config.signature_header_prefix)
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
        self._flush_task = asyncio.create_task(self._flush_loop(), name="hookpost-flush")
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
        self._draining = True
        self._results_ready.set()
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

    async def _claim_alongside(self) -> None:
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
        links = await self._created_in(batch) if self._tracing is not None and batch else None
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

    async def _created_in(self, batch: list[ClaimedDelivery]) -> dict[str, TraceContext]:
        """The trace contexts the batch's messages were created in (tracing on only)."""
        if self._traces is None:
            return {}
        try:
            return await self._traces.trace_contexts([d.message_id for d in batch])
        except Exception as exc:  # the attempts go out unlinked rather than not at all
            log.warning("reading %d trace contexts failed: %s", len(batch), exc)
            return {}

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
        longest = self._config.max_request_timeout_s
        while True:
            try:
                options = await self._store.delivery_options()
            except Exception as exc:  # keep the last ones; the next round tries again
                log.warning("reading the delivery options failed: %s", exc)
            else:
                self._type_schedules = options.type_schedules
                self._traceparent = options.endpoint_traceparent
                # Clamped so that a request never outlives its lease (wiring.check_lease).
                self._timeouts = {
                    ep: min(float(t), longest) for ep, t in options.endpoint_timeouts.items()
                }
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
            # is ours, in flight: a freed slot wakes the loop (_claim_alongside). Claiming again
            # at once would spin.
            return self._config.poll_interval_s
        return max(0.0, min(self._config.poll_interval_s, (due - self._clock()) / 1000))

    async def _wait(self, event: asyncio.Event, at_most_s: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), at_most_s)

    # -- sending -----------------------------------------------------------------------------
    async def _deliver(
        self, d: ClaimedDelivery, links: dict[str, TraceContext] | None = None
    ) -> None:
        tracing = self._tracing
        span = None
        if tracing is not None:
            created_in = links.get(d.message_id) if links else None
            span = tracing.start_attempt(d, d.attempts + 1, created_in)
        now = self._clock()
        timestamp = now // 1000
        scheme = (
            self._scheme_default
            if d.signature_scheme == DEFAULT_SCHEME
            else scheme_for(
                d.signature_scheme, d.signature_header, self._config.signature_header_prefix
            )
        )
        active = [k.secret for k in d.keys if k.active(now)]
        attempts = d.attempts + 1
        headers = {
            **d.headers,
            "content-type": "application/json",
            "user-agent": "hookpost/0.1",
            **scheme.sign_headers(
                d.message_id, timestamp, d.payload, active, d.event_type, attempts
            ),
        }
        if span is not None and self._traceparent.get(d.endpoint_id, self._config.send_traceparent):
            span.inject(headers)
        timeout = self._timeouts.get(d.endpoint_id) if self._timeouts else None
        if timeout is None:
            response = await self._sender.post(d.url, d.payload, headers)
        else:
            response = await self._sender.post(d.url, d.payload, headers, timeout)
        finished = self._clock()
        if self._type_schedules:  # some event type has a schedule: the whole precedence
            schedule = schedule_for(
                d.retry_schedule, self._type_schedules, d.event_type, self._config.retry_schedule
            )
        else:  # the usual case: the endpoint's policy or the global schedule, as before
            schedule = (
                d.retry_schedule if d.retry_schedule is not None else self._config.retry_schedule
            )
        decision = decide(response.outcome, attempts, schedule, finished, self._rng)
        retry_at = decision.next_attempt_at
        if retry_at is not None and (self._next_due is None or retry_at < self._next_due):
            self._next_due = retry_at  # keeps _idle_timeout's cached due time honest
            self._wake.set()  # so that an idle claim loop shortens its sleep
        ok = response.outcome.succeeded
        attempt = Attempt(
            id=ids.new_id(ids.ATTEMPT, finished),
            app_id=d.app_id,
            message_id=d.message_id,
            endpoint_id=d.endpoint_id,
            url=d.url,
            status=AttemptStatus.SUCCESS if ok else AttemptStatus.FAIL,
            trigger=d.trigger,
            response_status_code=response.outcome.status_code,
            response=response.body[:STORED_BYTES],
            duration_ms=response.duration_ms,
            error=response.outcome.error,
            created_at=finished,
        )
        self._metrics.attempt_seconds.observe(response.duration_ms / 1000)
        outcome = response.outcome
        if span is not None:
            failed_as = None if ok else error_class(outcome.error or str(outcome.status_code))
            span.end(attempt, failed_as)
        self._metrics.attempts_by_class[outcome_class(outcome.status_code, outcome.error)].inc()
        result = AttemptResult(
            attempt=attempt,
            delivery_id=d.delivery_id,
            lease=d.lease,
            next_status=decision.status,
            next_attempt_at=decision.next_attempt_at,
            disable_endpoint_reason=decision.disable_endpoint_reason,
            attempts=attempts,
            ordered=d.ordered,
        )
        self._results.append((result, d))
        self._results_ready.set()

    # -- recording ---------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            while self._results:
                batch, self._results = self._results, []
                self._hand_back_slots(batch)
                await asyncio.gather(self._write(batch), self._claim_alongside())
            if self._draining:
                return

    def _hand_back_slots(self, batch: list[tuple[AttemptResult, ClaimedDelivery]]) -> None:
        """Free the slots of results about to be written, for _claim_alongside. Memory stays
        bounded: what is being written is at most one pool's worth."""
        for _, delivery in batch:
            self._claimed_at.pop(delivery.delivery_id, None)
            self._slow.discard(delivery.delivery_id)
            self._per_endpoint[delivery.endpoint_id] -= 1
            if self._per_endpoint[delivery.endpoint_id] <= 0:
                del self._per_endpoint[delivery.endpoint_id]
        self._writing += len(batch)

    async def _write(self, batch: list[tuple[AttemptResult, ClaimedDelivery]]) -> None:
        outcome = await self._record([r for r, _ in batch], _attempt_events(batch))
        if outcome is None and len(batch) > 1 and not self._draining:
            # One result the store will not take must not hold back the others.
            for item in batch:
                await self._write([item])
            return
        for result, delivery in batch:
            # Unrecorded (outcome None), it keeps its lease: it is sent again when that expires.
            self._in_flight.pop(delivery.delivery_id, None)
            self._writing -= 1
            if outcome is not None:
                self._count(result, delivery)
        for app_id, endpoint_id, reason in outcome.disabled_endpoints if outcome else ():
            self._metrics.endpoints_disabled.inc()
            self._events.emit(
                OperationalEvent(
                    ENDPOINT_DISABLED, app_id, {"endpointId": endpoint_id, "reason": reason}
                )
            )

    async def _record(
        self, results: list[AttemptResult], notify: list[op.OperationalEvent]
    ) -> FinishOutcome | None:
        """Write the results; None if they could not be written.

        A result that is not written is not lost: its delivery keeps its lease, the lease
        expires, and the delivery is sent again (at-least-once).
        """
        backoff = 0.1
        while True:
            try:
                return await self._store.finish_attempts(
                    results,
                    self._clock(),
                    int(self._config.disable_after_s * 1000),
                    self._config.disable_after_failures,
                    notify=notify,
                )
            except StoreUnavailable as exc:
                # The database is away: keep the results (and their slots) until it is back,
                # except when shutting down.
                if self._draining:
                    log.error("%d attempt results unrecorded at shutdown: %s", len(results), exc)
                    return None
                log.warning("recording %d attempts failed, retrying: %s", len(results), exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                log.exception("the store refused %d attempt results", len(results))
                return None

    def _count(self, result: AttemptResult, delivery: ClaimedDelivery) -> None:
        if result.attempt.status != AttemptStatus.SUCCESS:
            _log_failed(result)
        if result.next_status == DeliveryStatus.SUCCEEDED:
            self._metrics.deliveries.labels("succeeded").inc()
        elif result.next_status == DeliveryStatus.PENDING:
            self._metrics.deliveries.labels("retried").inc()
        else:
            self._metrics.deliveries.labels("failed").inc()
            self._events.emit(
                OperationalEvent(
                    DELIVERY_EXHAUSTED,
                    delivery.app_id,
                    {"msgId": delivery.message_id, "endpointId": delivery.endpoint_id},
                )
            )


def _log_failed(result: AttemptResult) -> None:
    """One WARNING line per failed attempt, once it is recorded: what failed (the status code
    or the error's class: never the URL nor the response), and what happens next."""
    a = result.attempt
    cause = f"HTTP {a.response_status_code}" if a.error is None else error_class(a.error)
    retry_at = result.next_attempt_at if result.next_status == DeliveryStatus.PENDING else None
    if retry_at is not None:
        iso = datetime.fromtimestamp(retry_at / 1000, UTC).isoformat(timespec="seconds")
        then = "next retry at " + iso.replace("+00:00", "Z")
    else:
        then = "exhausted" if result.next_status == DeliveryStatus.FAILED else "no retry"
    log.warning(
        "attempt %d of message %s to endpoint %s failed (%s); %s",
        result.attempts,
        a.message_id,
        a.endpoint_id,
        cause,
        then,
        extra={
            "app_id": a.app_id,
            "endpoint_id": a.endpoint_id,
            "message_id": a.message_id,
            "attempt_id": a.id,
            "attempt": result.attempts,
            "status_code": a.response_status_code or None,
            "error_class": None if a.error is None else cause,
            "next_attempt_at": retry_at,
        },
    )


def _attempt_events(
    batch: list[tuple[AttemptResult, ClaimedDelivery]],
) -> list[op.OperationalEvent]:
    """message.attempt.exhausted, .failing and .recovered of a batch of results: written with
    them (the store drops those no operational endpoint wants)."""
    events = []
    for result, delivery in batch:
        succeeded = result.next_status == DeliveryStatus.SUCCEEDED
        if succeeded and result.attempts <= op.FAILING_AFTER_ATTEMPTS:
            continue  # the hot path: a success with nothing to report
        failed = result.next_status == DeliveryStatus.FAILED
        kind = op.attempt_event_type(succeeded, failed, result.attempts)
        if kind is not None:
            a = result.attempt
            events.append(
                op.attempt_event(
                    kind,
                    app_id=delivery.app_id,
                    msg_id=delivery.message_id,
                    endpoint_id=delivery.endpoint_id,
                    attempt_id=a.id,
                    status_code=a.response_status_code,
                    at_ms=a.created_at,
                )
            )
    return events
