"""The batched result writer: attempt results go to the store in batches (one
``finish_attempts`` call each), alongside a claim into the slots they free; then their metrics,
the failed attempts' log lines and the operational events.

The slots themselves belong to the claim loop (worker.py): it is told through ``Slots`` when
a batch is taken and when each result is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from hookpost.delivery.config import WorkerConfig
from hookpost.domain import operational as op
from hookpost.domain.errors import StoreUnavailable
from hookpost.domain.models import AttemptResult, AttemptStatus, ClaimedDelivery, DeliveryStatus
from hookpost.domain.queries import FinishOutcome
from hookpost.domain.retry import error_class
from hookpost.services.events import (
    DELIVERY_EXHAUSTED,
    ENDPOINT_DISABLED,
    EventBus,
    OperationalEvent,
)
from hookpost.services.metrics import Metrics
from hookpost.store.base import DeliveryQueue

log = logging.getLogger("hookpost.worker")

Batch = list[tuple[AttemptResult, ClaimedDelivery]]


class Slots(Protocol):
    """The claim loop's side of a write."""

    def hand_back_slots(self, batch: Batch) -> None:
        """The batch is about to be written: its slots are free for claims."""

    def written(self, delivery: ClaimedDelivery) -> None:
        """Its result is written (or given up: then it keeps its lease)."""

    async def claim_alongside(self) -> None:
        """Claim into the freed slots, at the same time as the write."""


class ResultWriter:
    def __init__(
        self,
        store: DeliveryQueue,
        config: WorkerConfig,
        slots: Slots,
        *,
        metrics: Metrics,
        events: EventBus,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._config = config
        self._slots = slots
        self._metrics = metrics
        self._events = events
        self._clock = clock
        self._results: Batch = []
        self._results_ready = asyncio.Event()
        self._draining = False

    def put(self, result: AttemptResult, delivery: ClaimedDelivery) -> None:
        self._results.append((result, delivery))
        self._results_ready.set()

    def drain(self) -> None:
        """Write what is left, then end ``run`` (shutdown: nothing is sent any more)."""
        self._draining = True
        self._results_ready.set()

    async def run(self) -> None:
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            while self._results:
                batch, self._results = self._results, []
                self._slots.hand_back_slots(batch)
                await asyncio.gather(self._write(batch), self._slots.claim_alongside())
            if self._draining:
                return

    async def _write(self, batch: Batch) -> None:
        outcome = await self._record([r for r, _ in batch], _attempt_events(batch))
        if outcome is None and len(batch) > 1 and not self._draining:
            # One result the store will not take must not hold back the others.
            for item in batch:
                await self._write([item])
            return
        for result, delivery in batch:
            # Unrecorded (outcome None), it keeps its lease: it is sent again when that expires.
            self._slots.written(delivery)
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
