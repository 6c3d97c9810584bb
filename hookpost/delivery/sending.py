"""One attempt of one delivery: sign the request, POST it, decide what comes next, and build
the Attempt row (with its tracing span and metrics). No queue state: the claim loop
(worker.py) hands each claimed delivery here and gives the result to the writer
(recording.py)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from hookpost.delivery.config import WorkerConfig
from hookpost.delivery.http import STORED_BYTES, HttpSender
from hookpost.domain import attempt_headers, ids
from hookpost.domain.models import (
    Attempt,
    AttemptResult,
    AttemptStatus,
    ClaimedDelivery,
    DeliveryOptions,
)
from hookpost.domain.retry import decide, error_class, outcome_class, schedule_for
from hookpost.domain.signing import DEFAULT_SCHEME, StandardWebhooksV1, scheme_for
from hookpost.services.metrics import Metrics
from hookpost.store.operator_ports import Traces

if TYPE_CHECKING:
    from hookpost.domain.tracecontext import TraceContext
    from hookpost.services.tracing import Tracing

log = logging.getLogger("hookpost.worker")


class Sending:
    def __init__(
        self,
        sender: HttpSender,
        config: WorkerConfig,
        metrics: Metrics,
        clock: Callable[[], int],
        *,
        tracing: Tracing | None = None,
        traces: Traces | None = None,
    ) -> None:
        self._sender = sender
        self._config = config
        self._metrics = metrics
        self._clock = clock
        # OTEL_* tracing (docs/decisions/0035-tracing.md); None: no span, no lookup. The
        # message's trace contexts are looked up only with it, so one test says both.
        self.tracing = tracing
        self._traces = traces if tracing is not None else None
        self._rng = random.Random()
        self._scheme_default = StandardWebhooksV1(header_prefix=config.signature_header_prefix)
        # The options the claim does not read (event name -> schedule, endpoint id ->
        # timeout), refreshed by the worker's options loop; empty when none is set anywhere.
        self.type_schedules: dict[str, tuple[int, ...]] = {}
        self.timeouts: dict[str, float] = {}
        self.traceparent: dict[str, bool] = {}  # endpoint id -> its sendTraceparent, where set

    def use_options(self, options: DeliveryOptions) -> None:
        longest = self._config.max_request_timeout_s
        self.type_schedules = options.type_schedules
        self.traceparent = options.endpoint_traceparent
        # Clamped so that a request never outlives its lease (wiring.check_lease).
        self.timeouts = {ep: min(float(t), longest) for ep, t in options.endpoint_timeouts.items()}

    async def trace_links(self, batch: list[ClaimedDelivery]) -> dict[str, TraceContext] | None:
        """The trace contexts the batch's messages were created in; None without tracing."""
        if self._traces is None or not batch:
            return None
        try:
            return await self._traces.trace_contexts([d.message_id for d in batch])
        except Exception as exc:  # the attempts go out unlinked rather than not at all
            log.warning("reading %d trace contexts failed: %s", len(batch), exc)
            return {}

    async def attempt(
        self, d: ClaimedDelivery, links: dict[str, TraceContext] | None = None
    ) -> AttemptResult:
        """Send ``d`` once; the attempt and the delivery's next state, to be recorded."""
        tracing = self.tracing
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
            **(
                attempt_headers.with_custom(d.headers)
                if d.headers
                else attempt_headers.DEFAULT_HEADERS
            ),
            **scheme.sign_headers(
                d.message_id, timestamp, d.payload, active, d.event_type, attempts
            ),
        }
        if span is not None and self.traceparent.get(d.endpoint_id, self._config.send_traceparent):
            span.inject(headers)
        timeout = self.timeouts.get(d.endpoint_id) if self.timeouts else None
        if timeout is None:
            response = await self._sender.post(d.url, d.payload, headers)
        else:
            response = await self._sender.post(d.url, d.payload, headers, timeout)
        finished = self._clock()
        if self.type_schedules:  # some event type has a schedule: the whole precedence
            schedule = schedule_for(
                d.retry_schedule, self.type_schedules, d.event_type, self._config.retry_schedule
            )
        else:  # the usual case: the endpoint's policy or the global schedule, as before
            schedule = (
                d.retry_schedule if d.retry_schedule is not None else self._config.retry_schedule
            )
        decision = decide(response.outcome, attempts, schedule, finished, self._rng)
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
            # What was sent, sensitive endpoint headers redacted (docs/decisions/0046)
            headers=attempt_headers.encode_headers(
                headers, d.message_id, d.headers, response.headers
            ),
        )
        self._metrics.attempt_seconds.observe(response.duration_ms / 1000)
        outcome = response.outcome
        if span is not None:
            failed_as = None if ok else error_class(outcome.error or str(outcome.status_code))
            span.end(attempt, failed_as)
        self._metrics.attempts_by_class[outcome_class(outcome.status_code, outcome.error)].inc()
        return AttemptResult(
            attempt=attempt,
            delivery_id=d.delivery_id,
            lease=d.lease,
            next_status=decision.status,
            next_attempt_at=decision.next_attempt_at,
            disable_endpoint_reason=decision.disable_endpoint_reason,
            attempts=attempts,
            ordered=d.ordered,
        )
