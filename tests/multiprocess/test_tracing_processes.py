"""Tracing configured by the environment alone, across real processes: ``hookpost serve
--worker process`` with ``OTEL_TRACES_EXPORTER=console`` (the SDK's exporter, printing each
span as JSON on stdout) and ``HOOKPOST_SEND_TRACEPARENT=1``.

The API process traces the request; the worker child, which shares nothing with it but the
database and the environment, traces the attempt, linked to that request through the context
stored with the message, and sends the attempt's ``traceparent`` to the receiver. Spans still
buffered when the processes stop are exported on the way out.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookpost.domain.tracecontext import parse_traceparent
from tests.multiprocess.test_serve_output_secrets import free_port
from tests.support.polling import eventually
from tests.support.processes import hookpost_env, spawn, stop
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def console_spans(text: str) -> list[dict[str, Any]]:
    """The spans ConsoleSpanExporter printed (JSON objects, each starting a line with ``{``),
    among the banner and the JSON log lines (the output holds both streams)."""
    decoder, found, at, text = json.JSONDecoder(), [], 0, "\n" + text
    while (start := text.find("\n{", at)) >= 0:
        obj, at = decoder.raw_decode(text, start + 1)
        found.append(obj)
    return [o for o in found if {"name", "context", "kind"} <= o.keys()]


async def test_serve_traces_the_request_in_the_api_and_the_linked_attempt_in_its_worker(
    tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    admin = "hpk_traced-admin-token-0123456789"
    env = hookpost_env(
        port=str(port),
        database_url=f"sqlite:///{tmp_path}/traced.db",
        admin_token=admin,
        allow_subnets="127.0.0.0/8",
        poll_interval_s="0.05",
        send_traceparent="1",
        log_format="json",  # every log line one object: no stray "{" at a line's start
    )
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    env.update({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "hooks-test"})
    out = tmp_path / "stdout.log"
    proc = spawn(["serve", "--worker", "process"], env, out)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=10.0
        ) as http:

            async def healthy() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"exited {proc.returncode}:\n{out.read_text()}")
                try:
                    return (await http.get("/api/v1/health")).status_code < 300
                except httpx.TransportError:
                    return False

            await eventually(healthy, timeout=30.0)
            app = (await http.post("/api/v1/app", json={"name": "Traced"})).json()
            ep = await http.post(
                f"/api/v1/app/{app['id']}/endpoint", json={"url": receiver.url("/traced")}
            )
            assert ep.status_code == 201, ep.text
            sent = await http.post(
                f"/api/v1/app/{app['id']}/msg", json={"eventType": "t.d", "payload": {"v": 1}}
            )
            assert sent.status_code == 202, sent.text
            await receiver.wait_for(1, "/traced")
    finally:
        assert await asyncio.to_thread(stop, proc) == 0, out.read_text()

    spans = console_spans(out.read_text())
    assert {s["resource"]["attributes"]["service.name"] for s in spans} == {"hooks-test"}
    (created,) = [
        s
        for s in spans
        if s["kind"] == "SpanKind.SERVER" and s["name"].startswith("POST /api/v1/app/{app_id}/msg")
    ]
    assert created["attributes"]["http.response.status_code"] == 202
    (attempt,) = [s for s in spans if s["name"] == "hookpost.attempt"]
    assert attempt["kind"] == "SpanKind.CLIENT"
    assert attempt["attributes"]["hookpost.message_id"] == sent.json()["id"]
    assert attempt["attributes"]["http.response.status_code"] == 200
    (link,) = attempt["links"]
    assert link["context"]["span_id"] == created["context"]["span_id"]
    assert link["context"]["trace_id"] == created["context"]["trace_id"]
    assert attempt["context"]["trace_id"] != created["context"]["trace_id"]

    headers = {k.lower(): v for k, v in receiver.on("/traced")[0].headers.items()}
    parsed = parse_traceparent(headers["traceparent"])
    assert parsed is not None
    trace_id, span_id, sampled = parsed
    assert (f"0x{trace_id:032x}", f"0x{span_id:016x}", sampled) == (
        attempt["context"]["trace_id"],
        attempt["context"]["span_id"],
        True,
    )
