"""OpenTelemetry tracing (docs/decisions/0035-tracing.md), seen through the SDK's in-memory
exporter: a real API over uvicorn, a real worker and a loopback receiver, on both backends.

* The API request that creates a message and the attempts that deliver it are linked: each
  attempt span is a trace of its own whose link names the request's span, which continues
  the caller's ``traceparent``.
* The attempt span holds the ids of the app, endpoint, message and attempt (as the API lists
  them) and the status code; a failed attempt's span is an error.
* ``HOOKPOST_SEND_TRACEPARENT`` sends the attempt span's context to the receiver; by
  default no ``traceparent`` goes out. An endpoint's ``sendTraceparent`` overrides the
  setting either way (null: the setting), and a PUT without it keeps it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from hookpost.domain.tracecontext import parse_traceparent
from hookpost.services.tracing import ATTEMPT_SPAN, Tracing
from hookpost.store.secretbox import generate_main_key
from tests.integration.test_api_harness import running_api
from tests.support.polling import eventually
from tests.support.receiver import Receiver, fail_then_ok

CALLER_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN = 0xB7AD6B7169203331
CALLER = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()


async def _app_and_endpoint(http: httpx.AsyncClient, url: str) -> tuple[str, str]:
    app = await http.post("/api/v1/app", json={"name": "Acme"})
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    return app_id, await _endpoint(http, app_id, url)


async def _endpoint(http: httpx.AsyncClient, app_id: str, url: str, **fields: Any) -> str:
    ep = await http.post(f"/api/v1/app/{app_id}/endpoint", json={"url": url, **fields})
    assert ep.status_code == 201, ep.text
    assert ep.json()["sendTraceparent"] == fields.get("sendTraceparent")
    return str(ep.json()["id"])


async def _worker_sees(api: Any, wanted: dict[str, bool]) -> None:
    """Until the worker's cached endpoint options (refreshed every 0.05 s here) are these."""

    async def probe() -> dict[str, bool]:
        return dict(api.hp.worker._sending.traceparent)

    await eventually(probe, lambda seen: seen == wanted)


def _headers(request: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


async def _send(http: httpx.AsyncClient, app_id: str, **headers: str) -> str:
    sent = await http.post(
        f"/api/v1/app/{app_id}/msg",
        json={"eventType": "invoice.paid", "payload": {"n": 1}},
        headers=headers,
    )
    assert sent.status_code == 202, sent.text
    return str(sent.json()["id"])


def _api(url: str, tracing: Tracing, **settings: Any) -> Any:
    """``running_api`` with this tracing (and a main key, which PostgreSQL needs)."""
    return running_api(url, tracing=tracing, main_key=generate_main_key(), **settings)


def _attempt_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == ATTEMPT_SPAN]


async def _attempts_traced(exporter: InMemorySpanExporter, n: int) -> list[ReadableSpan]:
    async def probe() -> list[ReadableSpan]:
        return _attempt_spans(exporter)

    return await eventually(probe, lambda spans: len(spans) >= n)


def _message_request_span(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.kind == SpanKind.SERVER
        and s.attributes is not None
        and s.attributes.get("http.request.method") == "POST"
        and str(s.attributes.get("http.route", "")).rstrip("/").endswith("/msg")
    ]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


async def test_the_request_that_created_a_message_and_its_attempt_are_linked(
    any_database_url: str,
    tracing: Tracing,
    exporter: InMemorySpanExporter,
    receiver: Receiver,
) -> None:
    async with (
        _api(any_database_url, tracing, options_refresh_s=0.05) as api,
        api.http() as http,
    ):
        app_id, ep_id = await _app_and_endpoint(http, receiver.url("/hook"))
        traced = await _endpoint(http, app_id, receiver.url("/traced"), sendTraceparent=True)
        await _worker_sees(api, {traced: True})
        msg_id = await _send(http, app_id, traceparent=CALLER)
        await receiver.wait_for(2)
        spans = await _attempts_traced(exporter, 2)

        async def listed() -> dict[str, Any]:  # recorded after their spans end
            got = await http.get(f"/api/v1/app/{app_id}/attempt/msg/{msg_id}")
            assert got.status_code == 200, got.text
            return {a["endpointId"]: a for a in got.json()["data"]}

        attempts = await eventually(listed, lambda found: len(found) == 2)

    request_span = _message_request_span(exporter.get_finished_spans())
    route = request_span.attributes["http.route"]  # type: ignore[index]
    assert request_span.name == f"POST {route}"
    assert "{app_id}" in str(route)  # the template, never the app's id
    assert request_span.attributes["http.response.status_code"] == 202  # type: ignore[index]
    # The request continues the caller's trace.
    assert request_span.context is not None and request_span.parent is not None
    assert request_span.context.trace_id == CALLER_TRACE
    assert request_span.parent.span_id == CALLER_SPAN

    by_endpoint = {s.attributes["hookpost.endpoint_id"]: s for s in spans}  # type: ignore[index]
    assert set(by_endpoint) == {ep_id, traced}
    attempt_span = by_endpoint[ep_id]
    # The attempt is a trace of its own, linked to the request that created the message.
    assert attempt_span.kind == SpanKind.CLIENT
    assert attempt_span.parent is None and attempt_span.context is not None
    assert attempt_span.context.trace_id != CALLER_TRACE
    (link,) = attempt_span.links
    assert link.context.trace_id == CALLER_TRACE
    assert link.context.span_id == request_span.context.span_id
    attrs: Any = attempt_span.attributes
    assert attrs["hookpost.app_id"] == app_id
    assert attrs["hookpost.endpoint_id"] == ep_id
    assert attrs["hookpost.message_id"] == msg_id
    assert attrs["hookpost.attempt_id"] == attempts[ep_id]["id"]
    assert attrs["hookpost.attempt_number"] == 1
    assert attrs["http.response.status_code"] == 200
    assert attempt_span.status.status_code != StatusCode.ERROR

    (link,) = by_endpoint[traced].links
    assert link.context.span_id == request_span.context.span_id

    # Off by default: that endpoint sees no trace context; the one that asks for it does.
    assert "traceparent" not in _headers(receiver.on("/hook")[0])
    sent = parse_traceparent(_headers(receiver.on("/traced")[0])["traceparent"])
    context = by_endpoint[traced].context
    assert context is not None and sent == (context.trace_id, context.span_id, True)


async def test_an_endpoint_can_refuse_the_traceparent_the_setting_sends(
    any_database_url: str, tracing: Tracing, receiver: Receiver
) -> None:
    settings = {"send_traceparent": True, "options_refresh_s": 0.05}
    async with (
        _api(any_database_url, tracing, **settings) as api,
        api.http() as http,
    ):
        app_id, default = await _app_and_endpoint(http, receiver.url("/default"))
        quiet = await _endpoint(http, app_id, receiver.url("/quiet"), sendTraceparent=False)
        path = f"/api/v1/app/{app_id}/endpoint/{quiet}"
        # A PUT without the field (as the svix SDKs send it) keeps it.
        put = await http.put(path, json={"url": receiver.url("/quiet")})
        assert put.status_code == 200 and put.json()["sendTraceparent"] is False, put.text
        got = await http.get(f"/api/v1/app/{app_id}/endpoint/{default}")
        assert got.json()["sendTraceparent"] is None
        await _worker_sees(api, {quiet: False})
        await _send(http, app_id)
        await receiver.wait_for(2)
        assert "traceparent" in _headers(receiver.on("/default")[0])
        assert "traceparent" not in _headers(receiver.on("/quiet")[0])

        # PATCH null: the setting again.
        patched = await http.patch(path, json={"sendTraceparent": None})
        assert patched.status_code == 200 and patched.json()["sendTraceparent"] is None
        await _worker_sees(api, {})
        await _send(http, app_id)
        await receiver.wait_for(2, "/quiet")
        assert "traceparent" in _headers(receiver.on("/quiet")[1])
        bad = await http.patch(path, json={"sendTraceparent": "yes"})
        assert bad.status_code == 422 and "sendTraceparent" in bad.text


async def test_traceparent_goes_out_when_asked_and_retries_link_to_the_same_request(
    any_database_url: str,
    tracing: Tracing,
    exporter: InMemorySpanExporter,
    receiver: Receiver,
) -> None:
    receiver.respond("/hook", fail_then_ok(1, status=503))
    async with (
        _api(any_database_url, tracing, send_traceparent=True) as api,
        api.http() as http,
    ):
        app_id, _ = await _app_and_endpoint(http, receiver.url("/hook"))
        await _send(http, app_id)  # no traceparent from the caller: a trace of its own
        await receiver.wait_for(2)
        spans = await _attempts_traced(exporter, 2)

    request_span = _message_request_span(exporter.get_finished_spans())
    assert request_span.parent is None and request_span.context is not None
    failed, succeeded = sorted(spans, key=lambda s: s.attributes["hookpost.attempt_number"])  # type: ignore[index]
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["http.response.status_code"] == 503  # type: ignore[index]
    assert failed.attributes["error.type"] == "503"  # type: ignore[index]
    assert succeeded.status.status_code != StatusCode.ERROR
    for span, request in zip((failed, succeeded), receiver.requests, strict=True):
        # Each attempt links to the request, and sends its own context.
        (link,) = span.links
        assert link.context.span_id == request_span.context.span_id
        parsed = parse_traceparent(_headers(request)["traceparent"])
        assert span.context is not None and parsed is not None
        assert parsed == (span.context.trace_id, span.context.span_id, True)
