"""OpenTelemetry tracing, when the ``OTEL_*`` environment asks for it
(docs/decisions/0035-tracing.md).

This module imports the OpenTelemetry SDK: only ``tracing_env.load`` (tracing on) and tests
import it, so a process without ``OTEL_*`` variables never does.

* A SERVER span per API request, named ``METHOD /route/{template}`` once routed, child of the
  request's own ``traceparent`` if it sent one.
* The W3C context current when a message is created (``current_context``) is stored with it.
* A CLIENT span per delivery attempt (``hookpost.attempt``): a new trace, linked to the stored
  context, with the ids of the app, endpoint, message and attempt and the status code; its own
  context may go out as the webhook's ``traceparent`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hookpost.domain.models import Attempt, ClaimedDelivery
from hookpost.domain.tracecontext import TraceContext, traceparent

ATTEMPT_SPAN = "hookpost.attempt"
_W3C = TraceContextTextMapPropagator()


def _version() -> str:
    try:
        return version("hookpost")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


class RequestSpan:
    """An API request's span, current (attached) until ``end``."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def end(self, method: str, route: str | None, status: int) -> None:
        span = self._span
        otel_context.detach(self._token)
        if route is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class AttemptSpan:
    """A delivery attempt's span, from before the request is signed until its outcome."""

    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def inject(self, headers: dict[str, str]) -> None:
        """The span's own W3C context as the webhook's ``traceparent`` (and ``tracestate``)."""
        _W3C.inject(headers, context=trace.set_span_in_context(self._span))

    def end(self, attempt: Attempt, error_class: str | None) -> None:
        span = self._span
        span.set_attribute("hookpost.attempt_id", attempt.id)
        if attempt.response_status_code:
            span.set_attribute("http.response.status_code", attempt.response_status_code)
        if error_class is not None:
            span.set_attribute("error.type", error_class)
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class Tracing:
    """The tracer hookpost's spans come from, over ``provider`` (built from the environment by
    ``tracing_env.load``; tests give one with an in-memory exporter)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("hookpost", _version())

    # -- API requests ------------------------------------------------------------------------
    def start_request(self, scope: Mapping[str, Any]) -> RequestSpan:
        method = scope["method"]
        carrier: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in (b"traceparent", b"tracestate"):
                carrier[name.decode()] = value.decode("latin-1")
        parent = _W3C.extract(carrier) if carrier else None
        span = self._tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        return RequestSpan(span)

    def current_context(self) -> TraceContext | None:
        """The W3C context of the current span, if it is sampled (a link to a trace that was
        not recorded leads nowhere): what a message created now stores."""
        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid or not ctx.trace_flags.sampled:
            return None
        state = ctx.trace_state.to_header() if ctx.trace_state else ""
        return TraceContext(traceparent(ctx.trace_id, ctx.span_id, True), state or None)

    # -- delivery attempts -------------------------------------------------------------------
    def start_attempt(
        self, d: ClaimedDelivery, attempt: int, created_in: TraceContext | None
    ) -> AttemptSpan:
        links = None
        if created_in is not None:
            carrier = {"traceparent": created_in.traceparent}
            if created_in.tracestate:
                carrier["tracestate"] = created_in.tracestate
            linked = trace.get_current_span(_W3C.extract(carrier)).get_span_context()
            if linked.is_valid:
                links = [Link(linked)]
        span = self._tracer.start_span(
            ATTEMPT_SPAN,
            context=otel_context.Context(),  # a trace of its own, whatever is current
            kind=SpanKind.CLIENT,
            links=links,
            attributes={
                "hookpost.app_id": d.app_id,
                "hookpost.endpoint_id": d.endpoint_id,
                "hookpost.message_id": d.message_id,
                "hookpost.event_type": d.event_type,
                "hookpost.attempt_number": attempt,
                "http.request.method": "POST",
            },
        )
        return AttemptSpan(span)

    def shutdown(self) -> None:
        """Export what is buffered, then stop (the processes' exit)."""
        self.provider.shutdown()
