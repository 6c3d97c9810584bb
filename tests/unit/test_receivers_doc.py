"""docs/receivers.md's FastAPI example, run as written against requests hookpost signed."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from hookpost.domain.signing import STANDARD, generate_secret, scheme_for

DOC = Path(__file__).parents[2] / "docs" / "receivers.md"


def _example(heading: str) -> str:
    text = DOC.read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, heading
    return match.group(1)


async def test_the_fastapi_example_verifies_and_drops_redeliveries() -> None:
    secret = generate_secret()
    namespace: dict[str, Any] = {"__name__": "receiver_example"}
    exec(_example("### FastAPI"), namespace)
    namespace["SECRET"] = secret
    handled: list[Any] = []
    namespace["handle"] = handled.append

    body = b'{"id":"inv_1"}'
    signed = scheme_for(STANDARD).sign_headers("msg_1", int(time.time()), body, [secret])
    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        first = await client.post("/webhooks", content=body, headers=signed)
        again = await client.post("/webhooks", content=body, headers=signed)
        forged = await client.post("/webhooks", content=b'{"id":"inv_2"}', headers=signed)
        unsigned = await client.post("/webhooks", content=body)
    assert (first.status_code, first.json()) == (200, {"duplicate": False})
    assert (again.status_code, again.json()) == (200, {"duplicate": True})
    assert forged.status_code == 400 and "signature" in forged.text
    assert unsigned.status_code == 400 and "missing header" in unsigned.text
    assert handled == [{"id": "inv_1"}]


def test_every_example_is_valid_python() -> None:
    # Flask and Django are not dependencies: their examples are compiled, not run.
    for heading in ("### FastAPI", "### Flask", "### Django"):
        compile(_example(heading), f"receivers.md {heading}", "exec")
