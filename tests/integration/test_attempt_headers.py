"""GET /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/headers (issue 23, Svix's
MessageAttemptHeadersOut), end to end on SQLite and PostgreSQL: a real delivery to a loopback
receiver, whose received headers the route's ``sentHeaders`` must match; a sensitive endpoint
header is sent but never stored nor shown (neither in the database nor in the answer, the
portal page included); a failed answer's headers come back capped and without ``set-cookie``;
an attempt recorded before migration 0023 answers ``recorded: false``.

The route's permissions (admin, and the app's own portal token; other tenants 404) are in the
generated matrices: tests/integration/test_permissions.py and test_tenant_isolation.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from jsonschema import Draft202012Validator
from svix.api import SvixAsync

from hookpost.domain.attempt_headers import CONTENT_TYPE, USER_AGENT
from tests.integration.test_api_harness import ApiServer
from tests.integration.test_dashboard_http import portal_key
from tests.support.polling import eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.timeout(60)

SECRET = "Bearer hp-attempt-headers-secret-9f3b1c"  # must never be stored or shown
# MessageAttemptHeadersOut of Svix's reference (svix-openapi 1.947), its `nullable` as JSON
# Schema's null type.
SVIX_SHAPE = Draft202012Validator(
    {
        "type": "object",
        "required": ["sensitive", "sentHeaders"],
        "properties": {
            "sentHeaders": {"type": "object", "additionalProperties": {"type": "string"}},
            "responseHeaders": {
                "type": ["array", "null"],
                "items": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
            "sensitive": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
    }
)
# What aiohttp itself adds to every request: not hookpost's choice, not in sentHeaders.
TRANSPORT = {"host", "content-length", "accept", "accept-encoding"}


async def endpoint(http: httpx.AsyncClient, app_id: str, url: str) -> str:
    r = await http.post(
        f"/api/v1/app/{app_id}/endpoint",
        json={"url": url, "headers": {"X-Tenant": "acme", "Authorization": SECRET}},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def send(http: httpx.AsyncClient, app_id: str) -> str:
    r = await http.post(
        f"/api/v1/app/{app_id}/msg", json={"eventType": "user.created", "payload": {"a": 1}}
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def attempts_of(http: httpx.AsyncClient, app_id: str, msg_id: str, n: int) -> list[Any]:
    async def listed() -> list[Any]:
        r = await http.get(f"/api/v1/app/{app_id}/attempt/msg/{msg_id}")
        return list(r.json()["data"])

    return await eventually(listed, lambda a: len(a) >= n)


async def headers_of(http: httpx.AsyncClient, app_id: str, msg_id: str, attempt_id: str) -> Any:
    r = await http.get(f"/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/headers")
    assert r.status_code == 200, r.text
    assert SECRET.split()[1] not in r.text
    SVIX_SHAPE.validate(r.json())
    return r.json()


async def database_text(api: ApiServer) -> bytes:
    """Every byte the database holds (SQLite: the file and its WAL), or every attempt row as
    text (PostgreSQL)."""
    url = api.hp.settings.database_url
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT a::text FROM attempts a")
        rows += await conn.fetch("SELECT e::text FROM endpoints e")
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows).encode()


async def execute(api: ApiServer, statement: str) -> None:
    url = api.hp.settings.database_url
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement)
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def test_sent_headers_are_what_the_receiver_got(
    api: ApiServer, http: httpx.AsyncClient, app_id: str, receiver: Receiver
) -> None:
    await endpoint(http, app_id, receiver.url("/ok"))
    msg_id = await send(http, app_id)
    await receiver.wait_for(1, "/ok")
    [got] = receiver.on("/ok")
    [attempt] = await attempts_of(http, app_id, msg_id, 1)
    answer = await headers_of(http, app_id, msg_id, attempt["id"])

    received = {name.lower(): value for name, value in got.headers.items()}
    assert received["authorization"] == SECRET  # it was sent...
    assert answer["sensitive"] == ["Authorization"]  # ...and is named, never shown
    sent = {name.lower(): value for name, value in answer["sentHeaders"].items()}
    assert "authorization" not in sent
    for name, value in sent.items():
        assert received.get(name) == value, (name, value, received.get(name))
    assert set(received) - set(sent) - {"authorization"} <= TRANSPORT
    assert sent["x-tenant"] == "acme" and sent["webhook-id"] == msg_id
    assert sent["content-type"] == CONTENT_TYPE and sent["user-agent"] == USER_AGENT
    assert answer["responseHeaders"] is None  # a 2xx keeps none
    assert answer["recorded"] is True
    assert SECRET.encode() not in await database_text(api)
    assert SECRET.split()[1].encode() not in await database_text(api)


async def test_a_failed_answers_headers_are_kept_without_cookies(
    http: httpx.AsyncClient, app_id: str, receiver: Receiver
) -> None:
    receiver.respond(
        "/busy", lambda n: (503, "busy", {"X-Why": "overloaded", "Set-Cookie": "sid=zzz"})
    )
    await endpoint(http, app_id, receiver.url("/busy"))
    msg_id = await send(http, app_id)
    attempts = await attempts_of(http, app_id, msg_id, 1)
    answer = await headers_of(http, app_id, msg_id, attempts[-1]["id"])
    pairs = answer["responseHeaders"]
    assert ["X-Why", "overloaded"] in pairs
    assert all(name.lower() != "set-cookie" for name, _ in pairs)
    assert "zzz" not in str(pairs)


async def test_an_attempt_recorded_before_the_migration_answers_what_it_can(
    api: ApiServer, http: httpx.AsyncClient, app_id: str, receiver: Receiver
) -> None:
    await endpoint(http, app_id, receiver.url("/old"))
    msg_id = await send(http, app_id)
    [attempt] = await attempts_of(http, app_id, msg_id, 1)
    await execute(api, f"UPDATE attempts SET headers = NULL WHERE id = '{attempt['id']}'")
    answer = await headers_of(http, app_id, msg_id, attempt["id"])
    assert answer == {
        "sentHeaders": {"content-type": CONTENT_TYPE, "user-agent": USER_AGENT},
        "responseHeaders": None,
        "sensitive": [],
        "recorded": False,
    }


async def test_unknown_attempts_and_messages_are_404(http: httpx.AsyncClient, app_id: str) -> None:
    r = await http.get(f"/api/v1/app/{app_id}/msg/msg_nope/attempt/atmpt_nope/headers")
    assert r.status_code == 404, r.text


async def test_the_portal_message_page_shows_the_sent_headers(
    api: ApiServer, http: httpx.AsyncClient, app_id: str, receiver: Receiver
) -> None:
    await endpoint(http, app_id, receiver.url("/portal"))
    msg_id = await send(http, app_id)
    [attempt] = await attempts_of(http, app_id, msg_id, 1)
    key = await portal_key(api, app_id)
    async with httpx.AsyncClient(base_url=api.url, timeout=10.0) as browser:
        assert (await browser.post("/app-portal/session", json={"key": key})).status_code == 200
        page = await browser.get(f"/app-portal/messages/{msg_id}/attempts")
    assert page.status_code == 200, page.text
    assert f'id="headers-{attempt["id"]}"' in page.text
    assert "<code>X-Tenant</code>" in page.text and "<code>acme</code>" in page.text
    assert "<code>webhook-signature</code>" in page.text
    assert "<code>Authorization</code>" in page.text and "never stored" in page.text
    assert SECRET.split()[1] not in page.text


async def test_the_svix_sdk_reads_them(
    svix: SvixAsync, http: httpx.AsyncClient, app_id: str, receiver: Receiver
) -> None:
    """Through the SDK's own method where it has one; svix 2.9.1 has none (the operation is
    x-internal in the reference), so through the request machinery its generated methods use
    (auth, base URL, errors): what such a method would do."""
    await endpoint(http, app_id, receiver.url("/sdk"))
    msg_id = await send(http, app_id)
    [attempt] = await attempts_of(http, app_id, msg_id, 1)
    api = svix.message_attempt
    get_headers = getattr(api, "get_headers", None)
    if get_headers is not None:
        out = await get_headers(app_id, msg_id, attempt["id"])
        assert out.sensitive == ["Authorization"] and out.sent_headers["X-Tenant"] == "acme"
        return
    response = await api._request_asyncio(
        method="get",
        path="/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/headers",
        path_params={"app_id": app_id, "msg_id": msg_id, "attempt_id": attempt["id"]},
    )
    body = response.json()
    SVIX_SHAPE.validate(body)
    assert body["sensitive"] == ["Authorization"] and body["sentHeaders"]["X-Tenant"] == "acme"
