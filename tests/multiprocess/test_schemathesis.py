"""Property-based API testing with schemathesis against hookpost's own OpenAPI document.

A live server (real uvicorn on 127.0.0.1; SQLite, then PostgreSQL) is seeded with
applications, endpoints, messages and attempts; then the worker is stopped, so nothing the
fuzzer creates is ever delivered. The ``st`` CLI (schemathesis 4) runs as a subprocess with the
admin token, phases examples + coverage + fuzzing, a fixed seed and a small
``--max-examples``, checking (``CHECKS``):

* ``not_a_server_error``: no 5xx, ever;
* ``status_code_conformance``: every status is documented for its operation;
* ``content_type_conformance`` / ``response_schema_conformance`` /
  ``response_headers_conformance``: bodies and headers match the document;
* ``allow_header_conformance`` / ``unsupported_method``: 405 with a complete ``Allow``;
* ``ignored_auth`` / ``missing_required_header``: no operation works without the token;
* ``use_after_free`` / ``ensure_resource_availability``: deleted things stay gone, created
  things can be read.

Path parameters are drawn partly from the seeded ids (schemathesis "dictionaries"), so the
fuzzer reaches real resources instead of 404s. Destructive operations (deleting applications,
endpoints, event types) get their own sacrificial ids, so they cannot starve the others.
Each run is bounded (about 30 s per backend here; hard limit ``RUN_TIMEOUT_S``). A deeper
local run: ``HOOKPOST_FUZZ_EXAMPLES=100 HOOKPOST_FUZZ_TIMEOUT=1800 pytest --timeout 2000 ...``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServedApi
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always

RUN_TIMEOUT_S = int(os.environ.get("HOOKPOST_FUZZ_TIMEOUT", "150"))
MAX_EXAMPLES = int(os.environ.get("HOOKPOST_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("HOOKPOST_FUZZ_SEED", "20261123"))
# Not checked: negative_data_rejection (pydantic's lax coercion accepts `false` for an integer
# and numbers for dates) and positive_data_acceptance (URLs, secrets and time ranges are
# checked beyond what JSON Schema can say).
CHECKS = os.environ.get("HOOKPOST_FUZZ_CHECKS") or ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "allow_header_conformance",
        "unsupported_method",
        "missing_required_header",
        "ignored_auth",
        "use_after_free",
        "ensure_resource_availability",
    )
)

pytestmark = pytest.mark.timeout(RUN_TIMEOUT_S + 60)

# The CLI options below (--config-file, dictionaries, --phases, ...) are schemathesis 4's.
pytest.importorskip("schemathesis", minversion="4.0")


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def config_toml(seeded: dict[str, list[str]]) -> str:
    """schemathesis.toml: dictionaries of real ids, bound to the path parameters."""
    lines = ["[dictionaries]"]
    for name, values in seeded.items():
        lines.append(f"{name} = {{ values = {toml_list(values)} }}")
    lines.append("")
    lines.append("[parameters]")
    for param, dictionary in (
        ("app_id", "apps"),
        ("endpoint_id", "endpoints"),
        ("msg_id", "messages"),
        ("attempt_id", "attempts"),
        ("event_type_name", "event_types"),
    ):
        lines.append(f'"path.{param}" = {{ dictionary = "{dictionary}", probability = 0.7 }}')
    for operation_id, param, dictionary in (
        ("v1.application.delete", "app_id", "doomed_apps"),
        ("v1.endpoint.delete", "endpoint_id", "doomed_endpoints"),
        ("v1.event-type.delete", "event_type_name", "doomed_event_types"),
    ):
        lines += [
            "",
            "[[operations]]",
            f'include-operation-id = "{operation_id}"',
            f'parameters = {{ "path.{param}" = {{ dictionary = "{dictionary}", '
            "probability = 0.7 } }",
        ]
    return "\n".join(lines) + "\n"


async def seed(http: httpx.AsyncClient, receiver: Receiver) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {
        "apps": [],
        "endpoints": [],
        "messages": [],
        "attempts": [],
        "event_types": [],
        "doomed_apps": [],
        "doomed_endpoints": [],
        "doomed_event_types": [],
    }

    async def ok(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code < 300, response.text
        return dict(response.json())

    for i in range(3):
        name = f"fuzz.type-{i}"
        await ok(await http.post("/api/v1/event-type", json={"name": name, "description": "x"}))
        out["event_types"].append(name)
        doomed = f"fuzz.doomed-{i}"
        await ok(await http.post("/api/v1/event-type", json={"name": doomed, "description": ""}))
        out["doomed_event_types"].append(doomed)
    for i in range(3):
        app = await ok(await http.post("/api/v1/app", json={"name": f"Fuzz {i}", "uid": f"fz{i}"}))
        out["apps"] += [app["id"], f"fz{i}"]
        doomed = await ok(await http.post("/api/v1/app", json={"name": f"Doomed {i}"}))
        out["doomed_apps"].append(doomed["id"])
        for j in range(2):
            ep = await ok(
                await http.post(
                    f"/api/v1/app/{app['id']}/endpoint",
                    json={"url": receiver.url(f"/fz{i}"), "uid": f"ep{j}", "headers": {"X-A": "1"}},
                )
            )
            out["endpoints"] += [ep["id"], f"ep{j}"]
        ep = await ok(
            await http.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": receiver.url("/x")})
        )
        out["doomed_endpoints"].append(ep["id"])
        for k in range(2):
            msg = await ok(
                await http.post(
                    f"/api/v1/app/{app['id']}/msg",
                    json={
                        "eventType": out["event_types"][k],
                        "payload": {"n": k},
                        "eventId": f"evt{k}",
                        "channels": ["ch"],
                    },
                )
            )
            out["messages"] += [msg["id"], f"evt{k}"]

    async def attempts() -> list[str]:
        found = []
        for app_id in out["apps"][::2]:
            r = await http.get(f"/api/v1/app/{app_id}/attempt/endpoint/{out['endpoints'][0]}")
            if r.status_code == 200:
                found += [a["id"] for a in r.json()["data"]]
            for msg_id in out["messages"][::2]:
                r = await http.get(f"/api/v1/app/{app_id}/attempt/msg/{msg_id}")
                if r.status_code == 200:
                    found += [a["id"] for a in r.json()["data"]]
        return found

    out["attempts"] = sorted(set(await eventually(attempts, lambda a: len(a) >= 6, timeout=15)))
    return out


async def test_schemathesis_finds_no_server_errors_or_schema_violations(
    any_database_url: str,
    serve_api: Callable[..., AbstractAsyncContextManager[ServedApi]],
    tmp_path: Path,
) -> None:
    receiver = await Receiver().start()
    receiver.respond("/x", always(500))
    try:
        async with serve_api(
            any_database_url,
            worker=True,
            allow_subnets="127.0.0.0/8",  # only for seeding: the worker stops before fuzzing
            retry_schedule=(0,),
            poll_interval_s=0.05,
        ) as api:
            async with api.http() as http:
                seeded = await seed(http, receiver)
            await api.hp.stop_worker()  # nothing the fuzzer creates is ever sent
            delivered = len(receiver.requests)

            config = tmp_path / "schemathesis.toml"
            config.write_text(config_toml(seeded))
            command = [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(config),
                "run",
                f"{api.url}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {api.admin_token}",
                "--checks",
                CHECKS,
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--generation-database",
                "none",
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--max-failures",
                "50",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path / "report"),
                "--no-color",
            ]
            proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                output, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                pytest.fail(f"schemathesis ran over {RUN_TIMEOUT_S} s")
            text = output.decode(errors="replace")
            assert proc.returncode == 0, text[-20_000:]
            async with api.http() as http:
                doc = (await http.get("/api/v1/openapi.json")).json()
            operations = sum(len(ops) for ops in doc["paths"].values())
            tested = re.search(r"Tested: (\d+)", text)
            assert tested is not None and int(tested.group(1)) == operations, text[-3000:]
            assert len(receiver.requests) == delivered, "the fuzzer's messages were delivered"
    finally:
        await receiver.stop()
