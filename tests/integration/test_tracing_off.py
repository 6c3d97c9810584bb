"""Without ``OTEL_*`` variables nothing is traced, and the OpenTelemetry SDK is not even
imported (docs/decisions/0035-tracing.md).

A fresh interpreter (this test process may have imported the SDK already) runs a whole flow,
API request to delivered webhook, twice: first checking that no ``opentelemetry.sdk`` module
was imported, then with a global in-memory tracer provider installed, checking that nothing
reached it (hookpost and FastAPI's native telemetry both stay off) and that no
``traceparent`` went out, though ``HOOKPOST_SEND_TRACEPARENT`` is on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import asyncio, sys

from tests.integration.test_api_harness import running_api
from tests.support.receiver import Receiver


async def flow(url):
    receiver = await Receiver().start()
    try:
        async with running_api(url, send_traceparent=True) as api, api.http() as http:
            assert api.hp.services.tracing is None
            app_id = (await http.post("/api/v1/app", json={"name": "A"})).json()["id"]
            ep = await http.post(
                f"/api/v1/app/{app_id}/endpoint", json={"url": receiver.url("/hook")}
            )
            assert ep.status_code == 201, ep.text
            caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            sent = await http.post(
                f"/api/v1/app/{app_id}/msg",
                json={"eventType": "a.b", "payload": {}},
                headers={"traceparent": caller},
            )
            assert sent.status_code == 202, sent.text
            await receiver.wait_for(1)
        headers = {k.lower() for k in receiver.requests[0].headers}
        assert "traceparent" not in headers, headers
    finally:
        await receiver.stop()


asyncio.run(flow(sys.argv[1]))
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))
assert not loaded, loaded

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
asyncio.run(flow(sys.argv[2]))
spans = exporter.get_finished_spans()
assert not spans, [s.name for s in spans]
print("untraced")
"""


def test_nothing_is_traced_nor_imported_without_otel_variables(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    urls = [f"sqlite:///{tmp_path / name}" for name in ("one.db", "two.db")]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *urls],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().endswith("untraced")
