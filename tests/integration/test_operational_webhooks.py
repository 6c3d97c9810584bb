"""Operational webhooks, end to end: the svix SDK's ``operational_webhook.endpoint`` resource
manages the endpoints, and each event reaches a real receiver on 127.0.0.1, where the svix
library's ``Webhook`` verifies it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from svix.api import (
    ApplicationIn,
    EndpointIn,
    EndpointPatch,
    MessageIn,
    OperationalWebhookEndpointHeadersIn,
    OperationalWebhookEndpointIn,
    OperationalWebhookEndpointSecretIn,
    OperationalWebhookEndpointUpsertIn,
    RecoverIn,
    SvixAsync,
    SvixOptions,
)
from svix.exceptions import HttpError
from svix.webhooks import Webhook

from hookpost.domain.operational import OPERATIONAL_APP_ID
from tests.integration.conftest import ServedApi
from tests.integration.test_api_harness import close_svix
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always, fail_then_ok

OPS = "/ops"


@pytest.fixture
async def api(any_database_url: str, serve_api: Any) -> AsyncIterator[ServedApi]:
    async with serve_api(
        any_database_url,
        worker=True,
        allow_subnets="127.0.0.0/8",
        retry_schedule=(0, 0, 0, 0),  # five attempts: enough for message.attempt.failing
        poll_interval_s=0.05,
    ) as server:
        yield server


@pytest.fixture
async def svix(api: ServedApi) -> AsyncIterator[SvixAsync]:
    # No client-side retries: a 5xx must fail the test, not be retried away.
    client = SvixAsync(api.admin_token, SvixOptions(server_url=api.url, retry_schedule=[]))
    yield client
    await close_svix(client)


async def listen(svix: SvixAsync, receiver: Receiver, **kw: Any) -> Webhook:
    """An operational endpoint at the receiver's OPS path: the verifier of its signatures."""
    ep = await svix.operational_webhook.endpoint.create(
        OperationalWebhookEndpointIn(url=receiver.url(OPS), **kw)
    )
    secret = await svix.operational_webhook.endpoint.get_secret(ep.id)
    return Webhook(secret.key)


async def received(
    receiver: Receiver, verifier: Webhook, count: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """The first ``count`` operational events, each verified; oldest first."""
    await receiver.wait_for(count, OPS, timeout=timeout)
    events = []
    for r in receiver.on(OPS)[:count]:
        verifier.verify(r.body, r.headers)  # raises if the signature is wrong
        events.append(orjson.loads(r.body))
    return events


async def test_endpoint_events(svix: SvixAsync, receiver: Receiver) -> None:
    verifier = await listen(svix, receiver)
    app = await svix.application.create(ApplicationIn(name="Acme", uid="acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/app"), uid="main"))
    await svix.endpoint.patch(app.id, ep.id, EndpointPatch(description="changed"))
    await svix.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=True))
    await svix.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=False))
    await svix.endpoint.delete(app.id, ep.id)
    events = await received(receiver, verifier, 5)
    assert sorted(e["type"] for e in events) == sorted(
        [
            "endpoint.created",
            "endpoint.updated",
            "endpoint.disabled",
            "endpoint.enabled",
            "endpoint.deleted",
        ]
    )
    ids = {"appId": app.id, "appUid": "acme", "endpointId": ep.id, "endpointUid": "main"}
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["endpoint.created"] == ids
    assert by_type["endpoint.deleted"] == ids
    assert by_type["endpoint.disabled"] == {**ids, "failSince": None, "trigger": "manual"}


async def test_filter_types(svix: SvixAsync, receiver: Receiver) -> None:
    verifier = await listen(svix, receiver, event_types=["endpoint.deleted"])
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/app")))
    await svix.endpoint.delete(app.id, ep.id)
    (event,) = await received(receiver, verifier, 1)
    assert event["type"] == "endpoint.deleted"
    # The created event was for no endpoint: nothing else arrives after the deleted one.
    other = await svix.application.create(ApplicationIn(name="Other"))
    ep2 = await svix.endpoint.create(other.id, EndpointIn(url=receiver.url("/app")))
    await svix.endpoint.delete(other.id, ep2.id)
    await received(receiver, verifier, 2)
    assert [r.path for r in receiver.requests].count(OPS) == 2


async def test_attempt_exhausted_from_the_worker(svix: SvixAsync, receiver: Receiver) -> None:
    verifier = await listen(svix, receiver, event_types=["message.attempt.exhausted"])
    receiver.respond("/down", always(503))
    app = await svix.application.create(ApplicationIn(name="Acme", uid="acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/down")))
    msg = await svix.message.create(
        app.id, MessageIn(event_type="invoice.paid", payload={"n": 1}, event_id="evt-1")
    )
    (event,) = await received(receiver, verifier, 1)
    assert len(receiver.on("/down")) == 5  # every attempt made before the event
    data = event["data"]
    assert event["type"] == "message.attempt.exhausted"
    assert (data["appId"], data["msgId"], data["endpointId"]) == (app.id, msg.id, ep.id)
    assert data["lastAttempt"]["responseStatusCode"] == 503
    assert (data["appUid"], data["msgEventId"]) == ("acme", "evt-1")  # filled in by the store
    assert data["lastAttempt"]["id"].startswith("atmpt_")


async def test_attempt_failing_then_recovered(svix: SvixAsync, receiver: Receiver) -> None:
    verifier = await listen(
        svix, receiver, event_types=["message.attempt.failing", "message.attempt.recovered"]
    )
    receiver.respond("/flaky", fail_then_ok(4))
    app = await svix.application.create(ApplicationIn(name="Acme"))
    await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/flaky")))
    await svix.message.create(app.id, MessageIn(event_type="invoice.paid", payload={}))
    failing, recovered = await received(receiver, verifier, 2)
    assert failing["type"] == "message.attempt.failing"
    assert failing["data"]["lastAttempt"]["responseStatusCode"] == 500
    assert recovered["type"] == "message.attempt.recovered"
    assert recovered["data"]["lastAttempt"]["responseStatusCode"] == 200


async def test_endpoint_disabled_by_the_worker(svix: SvixAsync, receiver: Receiver) -> None:
    verifier = await listen(svix, receiver, event_types=["endpoint.disabled"])
    receiver.respond("/gone", always(410))
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/gone"), uid="gone"))
    await svix.message.create(app.id, MessageIn(event_type="invoice.paid", payload={}))
    (event,) = await received(receiver, verifier, 1)
    assert event["type"] == "endpoint.disabled"
    assert event["data"]["endpointId"] == ep.id and event["data"]["trigger"] == "automatic"
    assert event["data"]["failSince"] is not None
    assert event["data"]["endpointUid"] == "gone"


# --------------------------------------------------------------------------- the routes


async def test_routes_through_the_sdk(api: ServedApi, svix: SvixAsync, receiver: Receiver) -> None:
    ops = svix.operational_webhook.endpoint
    created = await ops.create(
        OperationalWebhookEndpointIn(
            url=receiver.url(OPS),
            description="pager",
            uid="pager",
            event_types=["message.attempt.exhausted"],
            metadata={"team": "sre"},
            headers={"X-Team": "sre"},
        )
    )
    assert created.id.startswith("ep_") and created.uid == "pager"
    assert created.event_types == ["message.attempt.exhausted"]
    assert created.metadata == {"team": "sre"}
    assert (await ops.get("pager")).id == created.id
    listed = await ops.list()
    assert [e.id for e in listed.data] == [created.id] and listed.done

    updated = await ops.upsert(
        created.id, OperationalWebhookEndpointUpsertIn(url=receiver.url(OPS), description="new")
    )
    assert updated.description == "new" and updated.event_types is None
    made = await ops.upsert("second", OperationalWebhookEndpointUpsertIn(url=receiver.url(OPS)))
    assert made.uid == "second"

    old = (await ops.get_secret(created.id)).key
    await ops.rotate_secret(created.id, OperationalWebhookEndpointSecretIn())
    assert (await ops.get_secret(created.id)).key != old

    assert (await ops.get_headers(created.id)).headers == {"X-Team": "sre"}
    await ops.set_headers(created.id, OperationalWebhookEndpointHeadersIn(headers={"X-A": "1"}))
    assert (await ops.get_headers(created.id)).headers == {"X-A": "1"}

    await ops.delete(made.id)
    with pytest.raises(HttpError) as gone:
        await ops.get(made.id)
    assert gone.value.status_code == 404

    # The operational application is no client's: not listed, not readable, not writable.
    apps = await svix.application.list()
    assert OPERATIONAL_APP_ID not in [a.id for a in apps.data]
    async with api.http() as http:
        for method, path in [
            ("GET", f"/api/v1/app/{OPERATIONAL_APP_ID}"),
            ("GET", f"/api/v1/app/{OPERATIONAL_APP_ID}/endpoint"),
            ("DELETE", f"/api/v1/app/{OPERATIONAL_APP_ID}"),
        ]:
            assert (await http.request(method, path)).status_code == 404, path
        bad = await http.post(
            "/api/v1/operational-webhook/endpoint",
            json={"url": receiver.url(OPS), "eventTypes": ["invoice.paid"]},
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "eventTypes", 0]


async def test_app_tokens_cannot_use_the_routes(api: ServedApi, svix: SvixAsync) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    async with api.http() as http:
        answer = await http.post(f"/api/v1/auth/app-portal-access/{app.id}", json={})
        token = answer.json()["token"]
    async with api.http(token) as http:
        listed = await http.get("/api/v1/operational-webhook/endpoint")
        assert listed.status_code == 403


async def test_background_task_finished(svix: SvixAsync, receiver: Receiver) -> None:
    verifier = await listen(svix, receiver, event_types=["background_task.finished"])
    receiver.respond("/down", always(500))
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/down")))
    await svix.message.create(app.id, MessageIn(event_type="invoice.paid", payload={}))
    await receiver.wait_for(5, "/down")
    since = datetime.now(UTC) - timedelta(hours=1)

    async def failed() -> int:
        stats = await svix.endpoint.get_stats(app.id, ep.id)
        return stats.fail

    await eventually(failed)
    task = await svix.endpoint.recover(app.id, ep.id, RecoverIn(since=since))
    (event,) = await received(receiver, verifier, 1)
    assert event["type"] == "background_task.finished"
    data = event["data"]
    assert (data["taskId"], data["task"], data["status"]) == (
        task.id,
        "endpoint.recover",
        "finished",
    )
    assert data["data"]["messages_sent"] == 1 and data["data"]["endp_id"] == ep.id
