"""The relay routes behind ``hookpost listen``, in process: who may use them, and what the
relay route answers with and without a listener (``Listen`` is the real client; the worker's
POST is made by hand here, see tests/multiprocess/test_listen.py for the whole path)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.relay import new_relay_token, relay_url
from hookpost.listen import Listen, ListenError
from tests.integration.conftest import ServedApi
from tests.support.polling import eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def served(
    fresh_sqlite_url: str, serve_api: Callable[..., AbstractAsyncContextManager[ServedApi]]
) -> AsyncIterator[ServedApi]:
    async with serve_api(fresh_sqlite_url) as api:
        yield api


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def new_app(admin: httpx.AsyncClient, uid: str) -> str:
    r = await admin.post("/api/v1/app", json={"name": uid, "uid": uid})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_a_relay_is_created_once_then_reused(served: ServedApi) -> None:
    async with served.http() as admin:
        app = await new_app(admin, "acme")
        first = await admin.post(f"/api/v1/app/{app}/relay", json={})
        again = await admin.post(f"/api/v1/app/{app}/relay", json={})
        plain = await admin.post(f"/api/v1/app/{app}/endpoint", json={"url": "https://e.example"})
        assert plain.status_code == 201, plain.text
        await admin.patch(f"/api/v1/app/{app}/endpoint/{plain.json()['id']}", json={"uid": "p"})
        not_relay = await admin.post(f"/api/v1/app/{app}/relay", json={"uid": "p"})
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    out = first.json()
    assert out["url"].startswith(f"{served.hp.settings.relay_base()}/api/v1/relay/")
    assert out["secret"].startswith("whsec_") and out["created"] is True
    assert again.json() == {**out, "created": False}
    assert not_relay.status_code == 409, not_relay.text
    endpoint = await served.hp.services.endpoints.get(app, out["endpointId"])
    assert endpoint.retry_policy is not None and endpoint.retry_policy.max_attempts == 50


async def test_only_the_apps_own_tokens_reach_its_relay(served: ServedApi) -> None:
    async with served.http() as admin:
        app, other = await new_app(admin, "acme"), await new_app(admin, "other")
        relay = (await admin.post(f"/api/v1/app/{app}/relay", json={})).json()
    foreign, _ = await served.hp.services.tokens.create(app_id=other, name="other")
    own, _ = await served.hp.services.tokens.create(app_id=app, name="own")
    events = f"/api/v1/app/{app}/relay/{relay['endpointId']}/events"
    async with served.http(None) as anonymous, served.http(foreign) as stranger:
        assert (await anonymous.post(f"/api/v1/app/{app}/relay", json={})).status_code == 401
        assert (await stranger.post(f"/api/v1/app/{app}/relay", json={})).status_code == 404
        assert (await stranger.get(events)).status_code == 404
        reply = {"requestId": "nope", "status": 200}
        r = await stranger.post(f"/api/v1/app/{app}/relay/{relay['endpointId']}/reply", json=reply)
        assert r.status_code == 404
    async with served.http(own) as tenant:
        r = await tenant.post(f"/api/v1/app/{app}/relay/{relay['endpointId']}/reply", json=reply)
        assert r.status_code == 404 and "relay request" in r.text  # none open: not a 403
        assert (await tenant.post(f"/api/v1/app/{app}/relay", json={})).status_code == 200


async def test_the_relay_answers_for_its_listener(served: ServedApi, receiver: Receiver) -> None:
    async with served.http() as admin:
        app = await new_app(admin, "acme")
        relay = (await admin.post(f"/api/v1/app/{app}/relay", json={})).json()
    target = relay["url"].removeprefix(served.hp.settings.relay_base())
    headers = {"webhook-id": "msg_1", "webhook-signature": "v1,x", "content-type": "a/json"}
    async with served.http(None) as worker:
        # No listener: 503, so the delivery stays queued and is retried.
        r = await worker.post(target, content=b'{"a":1}', headers=headers)
        assert r.status_code == 503 and r.json()["code"] == "no_listener"
        assert (await worker.post("/api/v1/relay/" + "x" * 43)).status_code == 503
        assert (await worker.post("/api/v1/relay/bad!token")).status_code == 422

        out, stop = io.StringIO(), asyncio.Event()
        listen = Listen(served.url, served.admin_token, "acme", receiver.url("/in"), out=out)
        running = asyncio.create_task(listen.run(stop))
        try:
            await eventually(lambda: _async("listening:" in out.getvalue()))
            receiver.respond("/in", lambda n: (201 if n == 1 else 500, f"local {n}", {}))
            first = await worker.post(target, content=b'{"a":1}', headers=headers)
            second = await worker.post(target, content=b'{"a":2}', headers=headers)
        finally:
            stop.set()
            await running
    assert (first.status_code, first.text) == (201, "local 1")
    assert (second.status_code, second.text) == (500, "local 2")
    got = receiver.on("/in")[0]
    assert got.body == b'{"a":1}'
    received = {k.lower(): v for k, v in got.headers.items()}
    assert {k: received[k] for k in headers} == headers
    assert "msg_1  201" in out.getvalue() and "msg_1  500" in out.getvalue()


async def test_a_newer_listener_takes_the_relay_over(served: ServedApi, receiver: Receiver) -> None:
    async with served.http() as admin:
        await new_app(admin, "acme")
    outs = [io.StringIO(), io.StringIO()]
    stop = asyncio.Event()
    listens = [
        Listen(served.url, served.admin_token, "acme", receiver.url("/in"), out=o) for o in outs
    ]
    first = asyncio.create_task(listens[0].run(stop))
    await eventually(lambda: _async("listening:" in outs[0].getvalue()))
    second = asyncio.create_task(listens[1].run(stop))
    with pytest.raises(ListenError, match="took over"):
        await asyncio.wait_for(first, 10)
    await eventually(lambda: _async("listening:" in outs[1].getvalue()))
    stop.set()
    await second


async def _async(value: bool) -> bool:
    return value


async def test_a_listener_points_its_relay_at_this_process(
    served: ServedApi, receiver: Receiver
) -> None:
    """Several API processes: the process the listener connects to makes the relay's URL its
    own (same token), and enables the relay if it was disabled for failing."""
    async with served.http() as admin:
        app = await new_app(admin, "acme")
    token = new_relay_token()
    elsewhere = await served.hp.services.endpoints.create(
        app,
        NewEndpoint(
            url=f"https://api-b.example/api/v1/relay/{token}", uid="hookpost-listen", disabled=True
        ),
    )
    out, stop = io.StringIO(), asyncio.Event()
    listen = Listen(served.url, served.admin_token, "acme", receiver.url("/in"), out=out)
    running = asyncio.create_task(listen.run(stop))
    try:
        await eventually(lambda: _async("listening:" in out.getvalue()))
        now = await served.hp.services.endpoints.get(app, elsewhere.id)
    finally:
        stop.set()
        await running
    assert now.url == relay_url(served.hp.settings.relay_base(), token)
    assert not now.disabled
    assert f"reusing relay endpoint {elsewhere.id}" in out.getvalue()
