"""The delivery engine end to end: library -> store -> worker -> a real receiver on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from standardwebhooks import Webhook

from hookpost.domain.disabled import FAILING_TOO_LONG, GONE_410
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import AttemptStatus, DeliveryStatus, PageRequest
from hookpost.domain.queries import AttemptFilter
from hookpost.wiring import Hookpost
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always, fail_then_ok


@pytest.fixture
async def hp(fresh_sqlite_url: str) -> AsyncIterator[Hookpost]:
    async with Hookpost.open(
        fresh_sqlite_url,
        worker=True,
        allow_subnets="127.0.0.0/8",
        retry_schedule=(0, 0),
        poll_interval_s=0.05,
    ) as hp:
        yield hp


async def test_message_reaches_receiver_with_valid_signature(hp: Hookpost, receiver: Receiver):
    app = await hp.apps.create("Acme")
    ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/hook")))
    sent = await hp.messages.send(app.id, "invoice.paid", {"id": 42, "amount": 10})

    await receiver.wait_for(1)
    got = receiver.requests[0]
    assert got.webhook_id == sent.message.id
    verified = Webhook(ep.secret).verify(got.body, got.headers)
    assert verified == {"id": 42, "amount": 10}
    assert got.body == sent.message.payload  # the bytes signed are the bytes sent


async def test_retries_until_success_records_every_attempt(hp: Hookpost, receiver: Receiver):
    receiver.respond("/flaky", fail_then_ok(2))
    app = await hp.apps.create("Acme")
    ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/flaky")))
    sent = await hp.messages.send(app.id, "a.b", {"n": 1})

    delivery = await eventually(
        lambda: hp.store.get_delivery(sent.message.id, ep.id),
        lambda d: d.status == DeliveryStatus.SUCCEEDED,
    )
    assert delivery.attempts == 3
    attempts = await hp.store.list_attempts(
        app.id, PageRequest(descending=True), AttemptFilter(message_id=sent.message.id)
    )
    codes = sorted((a.response_status_code, a.status) for a in attempts.items)
    assert codes == [
        (200, AttemptStatus.SUCCESS),
        (500, AttemptStatus.FAIL),
        (500, AttemptStatus.FAIL),
    ]
    assert len({r.webhook_id for r in receiver.on("/flaky")}) == 1


async def test_exhausted_schedule_fails_delivery(hp: Hookpost, receiver: Receiver):
    receiver.respond("/down", always(503))
    app = await hp.apps.create("Acme")
    ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/down")))
    sent = await hp.messages.send(app.id, "a.b", {"n": 1})

    delivery = await eventually(
        lambda: hp.store.get_delivery(sent.message.id, ep.id),
        lambda d: d.status == DeliveryStatus.FAILED,
    )
    assert delivery.attempts == 3  # first try + the two retries of the schedule
    assert len(receiver.on("/down")) == 3


async def test_fan_out_and_filtering(hp: Hookpost, receiver: Receiver):
    app = await hp.apps.create("Acme")
    await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/all")))
    await hp.endpoints.create(
        app.id, NewEndpoint(url=receiver.url("/invoices"), event_types=["invoice.paid"])
    )
    await hp.endpoints.create(
        app.id, NewEndpoint(url=receiver.url("/eu"), channels=["eu"], event_types=["user.created"])
    )
    sent = {
        "inv": await hp.messages.send(app.id, "invoice.paid", {"n": 1}),
        "user_eu": await hp.messages.send(app.id, "user.created", {"n": 2}, channels=["eu"]),
        "user_us": await hp.messages.send(app.id, "user.created", {"n": 3}, channels=["us"]),
        "other": await hp.messages.send(app.id, "other.thing", {"n": 4}),
    }
    expected = {
        "/all": {"inv", "user_eu", "user_us", "other"},
        "/invoices": {"inv"},
        "/eu": {"user_eu"},
    }
    await receiver.wait_for(sum(len(v) for v in expected.values()))
    ids = {key: created.message.id for key, created in sent.items()}
    for path, keys in expected.items():
        assert sorted(r.webhook_id for r in receiver.on(path)) == sorted(ids[k] for k in keys)
    # Nothing more arrives: every delivery is final and the receiver saw exactly these.
    for key, created in sent.items():
        assert created.deliveries == sum(key in keys for keys in expected.values())


async def test_event_id_is_idempotent(hp: Hookpost, receiver: Receiver):
    app = await hp.apps.create("Acme")
    await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/hook")))
    first = await hp.messages.send(app.id, "a.b", {"v": 1}, event_id="evt-1")
    again = await hp.messages.send(app.id, "a.b", {"v": 2}, event_id="evt-1")
    assert first.created and not again.created
    assert again.message.id == first.message.id and again.deliveries == 0
    assert again.message.payload == first.message.payload
    await receiver.wait_for(1)
    other_app = await hp.apps.create("Other")
    elsewhere = await hp.messages.send(other_app.id, "a.b", {"v": 3}, event_id="evt-1")
    assert elsewhere.created  # eventId is unique per application, not globally


async def test_secret_rotation_signs_with_both_keys(hp: Hookpost, receiver: Receiver):
    app = await hp.apps.create("Acme")
    ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/hook")))
    old_secret = ep.secret
    rotated = await hp.endpoints.rotate_secret(app.id, ep.id)
    assert rotated.secret != old_secret
    await hp.messages.send(app.id, "a.b", {"v": 1})
    await receiver.wait_for(1)
    got = receiver.requests[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(got.body, got.headers)  # receivers not yet switched
    Webhook(rotated.secret).verify(got.body, got.headers)  # receivers already switched


async def test_expired_old_key_stops_signing(hp: Hookpost, receiver: Receiver):
    app = await hp.apps.create("Acme")
    ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/hook")))
    rotated = await hp.endpoints.rotate_secret(app.id, ep.id, grace_s=0)
    await hp.messages.send(app.id, "a.b", {"v": 1})
    await receiver.wait_for(1)
    got = receiver.requests[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    Webhook(rotated.secret).verify(got.body, got.headers)


async def test_http_410_disables_the_endpoint(hp: Hookpost, receiver: Receiver):
    events = []
    hp.services.events.subscribe(events.append)
    receiver.respond("/gone", always(410))
    app = await hp.apps.create("Acme")
    ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/gone")))
    sent = await hp.messages.send(app.id, "a.b", {"v": 1})
    delivery = await eventually(
        lambda: hp.store.get_delivery(sent.message.id, ep.id),
        lambda d: d.status == DeliveryStatus.FAILED,
    )
    assert delivery.attempts == 1  # 410 is final: no retries
    endpoint = await hp.endpoints.get(app.id, ep.id)
    assert (endpoint.disabled, endpoint.disabled_reason) == (True, GONE_410)
    assert any(e.kind == "endpoint.disabled" for e in events)
    # A disabled endpoint receives nothing more.
    later = await hp.messages.send(app.id, "a.b", {"v": 2})
    assert later.deliveries == 0


async def test_endpoint_failing_for_too_long_is_disabled(fresh_sqlite_url: str, receiver: Receiver):
    receiver.respond("/down", always(500))
    async with Hookpost.open(
        fresh_sqlite_url,
        worker=True,
        allow_subnets="127.0.0.0/8",
        retry_schedule=(0, 0, 0),
        poll_interval_s=0.05,
        disable_after_s=0,
    ) as hp:
        app = await hp.apps.create("Acme")
        ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/down")))
        await hp.messages.send(app.id, "a.b", {"v": 1})
        endpoint = await eventually(lambda: hp.endpoints.get(app.id, ep.id), lambda e: e.disabled)
        assert endpoint.disabled_reason == FAILING_TOO_LONG


async def test_success_resets_endpoint_health(hp: Hookpost, receiver: Receiver):
    receiver.respond("/flaky", fail_then_ok(1))
    app = await hp.apps.create("Acme")
    ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/flaky")))
    sent = await hp.messages.send(app.id, "a.b", {"v": 1})
    await eventually(
        lambda: hp.store.get_delivery(sent.message.id, ep.id),
        lambda d: d.status == DeliveryStatus.SUCCEEDED,
    )
    endpoint = await hp.endpoints.get(app.id, ep.id)
    assert endpoint.consecutive_failures == 0 and endpoint.first_failure_at is None


async def test_graceful_stop_releases_in_flight_deliveries(
    fresh_sqlite_url: str, receiver: Receiver
):
    import asyncio

    receiver.gate = asyncio.Event()  # hold every request open
    async with Hookpost.open(
        fresh_sqlite_url,
        allow_subnets="127.0.0.0/8",
        shutdown_grace_s=0.2,
        poll_interval_s=0.05,
    ) as hp:
        app = await hp.apps.create("Acme")
        ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/slow")))
        sent = await hp.messages.send(app.id, "a.b", {"v": 1})
        await hp.start_worker()
        await receiver.wait_for(1)
        await hp.stop_worker()  # the request is still held: it must go back to the queue
        delivery = await hp.store.get_delivery(sent.message.id, ep.id)
        assert delivery.status == DeliveryStatus.PENDING
        receiver.gate.set()
        receiver.gate = None
        await hp.start_worker()
        await eventually(
            lambda: hp.store.get_delivery(sent.message.id, ep.id),
            lambda d: d.status == DeliveryStatus.SUCCEEDED,
        )
