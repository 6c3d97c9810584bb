"""Endpoint health end to end, on both backends: real deliveries to receivers on 127.0.0.1,
count-based auto-disable (HOOKPOST_DISABLE_AFTER_FAILURES), the ``health`` object of the API's
endpoints (raw JSON and through the svix SDK), and re-enabling, which resets the counters."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from svix.api import ApplicationIn, EndpointIn, EndpointPatch, MessageIn, SvixAsync, SvixOptions

from tests.integration.conftest import ServedApi
from tests.integration.test_api_harness import close_svix
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always

# Two quick attempts per message, then a retry an hour later that no test waits for: an
# endpoint's streak then rests at a known length between messages.
SCHEDULE = (0, 3600)
DISABLE_AFTER = 3


def _serve(serve_api: Any, url: str, **settings: Any) -> Any:
    settings = {"retry_schedule": SCHEDULE, **settings}
    return serve_api(
        url, worker=True, allow_subnets="127.0.0.0/8", poll_interval_s=0.05, **settings
    )


def _svix(api: ServedApi) -> SvixAsync:
    options = SvixOptions(server_url=api.url, retry_schedule=[], timeout=10.0)
    return SvixAsync(api.admin_token, options)


@pytest.fixture
async def api(serve_api: Any, any_database_url: str) -> AsyncIterator[ServedApi]:
    async with _serve(serve_api, any_database_url, disable_after_failures=DISABLE_AFTER) as api:
        yield api


@pytest.fixture
async def svix(api: ServedApi) -> AsyncIterator[SvixAsync]:
    client = _svix(api)
    yield client
    await close_svix(client)


async def _endpoint(svix: SvixAsync, url: str) -> tuple[str, str]:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=url))
    return app.id, ep.id


async def _send(svix: SvixAsync, app_id: str) -> None:
    await svix.message.create(app_id, MessageIn(event_type="a.b", payload={"n": 1}))


async def _health(api: ServedApi, app_id: str, ep_id: str) -> dict[str, Any]:
    async with api.http() as http:
        got = await http.get(f"/api/v1/app/{app_id}/endpoint/{ep_id}")
        assert got.status_code == 200, got.text
        health: dict[str, Any] = got.json()["health"]
        return health


async def _health_when(api: ServedApi, app_id: str, ep_id: str, **expected: Any) -> Any:
    return await eventually(
        lambda: _health(api, app_id, ep_id),
        lambda h: all(h[k] == v for k, v in expected.items()),
    )


def _ts(text: str | None) -> datetime:
    assert text is not None and text.endswith("Z")
    return datetime.fromisoformat(text)


async def test_consecutive_failures_disable_and_re_enabling_resets_the_counters(
    api: ServedApi, svix: SvixAsync, receiver: Receiver
) -> None:
    # one success, then 503 for good
    receiver.respond("/flaky", lambda n: (200, "ok", {}) if n == 1 else (503, "down", {}))
    app_id, ep_id = await _endpoint(svix, receiver.url("/flaky"))
    fresh = await _health(api, app_id, ep_id)
    assert fresh == {
        "state": "healthy",
        "consecutiveFailures": 0,
        "lastSuccessAt": None,
        "lastFailureAt": None,
        "lastStatusCode": None,
        "disabledReason": None,
    }

    await _send(svix, app_id)
    ok = await _health_when(api, app_id, ep_id, lastStatusCode=200)
    assert (ok["state"], ok["consecutiveFailures"], ok["lastFailureAt"]) == ("healthy", 0, None)
    success_at = _ts(ok["lastSuccessAt"])

    # two failed attempts (the third is an hour away): degraded, a success being recent
    await _send(svix, app_id)
    degraded = await _health_when(api, app_id, ep_id, consecutiveFailures=2)
    assert degraded["state"] == "degraded"
    assert (degraded["lastStatusCode"], degraded["disabledReason"]) == (503, None)
    assert _ts(degraded["lastSuccessAt"]) == success_at
    assert _ts(degraded["lastFailureAt"]) > success_at

    # the third failed attempt in a row disables it
    await _send(svix, app_id)
    disabled = await _health_when(api, app_id, ep_id, state="disabled")
    assert disabled["disabledReason"] == "consecutive_failures"
    assert disabled["consecutiveFailures"] == DISABLE_AFTER
    ep = await svix.endpoint.get(app_id, ep_id)  # the SDK still parses EndpointOut
    assert ep.disabled is True
    assert len(receiver.requests) == 1 + 2 + 1
    later = await svix.message.create(app_id, MessageIn(event_type="a.b", payload={"n": 2}))
    assert later.id  # accepted, but nothing is queued for a disabled endpoint

    # re-enabling starts a fresh record; the last success and failure stay on show
    enabled = await svix.endpoint.patch(app_id, ep_id, EndpointPatch(disabled=False))
    assert enabled.disabled is False
    after = await _health(api, app_id, ep_id)
    assert after["state"] == "healthy"
    assert (after["consecutiveFailures"], after["disabledReason"]) == (0, None)
    assert after["lastFailureAt"] == disabled["lastFailureAt"]
    assert _ts(after["lastSuccessAt"]) == success_at

    # a manual disable says so
    await svix.endpoint.patch(app_id, ep_id, EndpointPatch(disabled=True))
    manual = await _health(api, app_id, ep_id)
    assert (manual["state"], manual["disabledReason"]) == ("disabled", "manual")


async def test_an_endpoint_that_never_succeeded_is_failing(
    api: ServedApi, svix: SvixAsync, receiver: Receiver
) -> None:
    receiver.respond("/down", always(500))
    app_id, ep_id = await _endpoint(svix, receiver.url("/down"))
    await _send(svix, app_id)
    failing = await _health_when(api, app_id, ep_id, consecutiveFailures=2)
    assert failing["state"] == "failing"
    assert (failing["lastSuccessAt"], failing["lastStatusCode"]) == (None, 500)
    # listed endpoints carry it too
    async with api.http() as http:
        listed = (await http.get(f"/api/v1/app/{app_id}/endpoint")).json()["data"]
    assert [e["health"]["state"] for e in listed] == ["failing"]


async def test_no_http_response_shows_no_status_code(api: ServedApi, svix: SvixAsync) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app_id, ep_id = await _endpoint(svix, f"http://127.0.0.1:{port}/hook")
    await _send(svix, app_id)
    h = await _health_when(api, app_id, ep_id, consecutiveFailures=2)
    assert (h["state"], h["lastStatusCode"]) == ("failing", None)
    assert h["lastFailureAt"] is not None


async def test_without_the_setting_failures_never_disable_by_count(
    serve_api: Any, any_database_url: str, receiver: Receiver
) -> None:
    receiver.respond("/down", always(500))
    async with _serve(serve_api, any_database_url, retry_schedule=(0,) * 5) as api:
        client = _svix(api)
        try:
            app_id, ep_id = await _endpoint(client, receiver.url("/down"))
            await _send(client, app_id)
            h = await _health_when(api, app_id, ep_id, consecutiveFailures=6)
            assert (h["state"], h["disabledReason"]) == ("failing", None)
        finally:
            await close_svix(client)
