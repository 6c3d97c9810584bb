"""The official svix SDK (SvixAsync) drives every resource of a real hookpost server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from svix.api import (
    ApplicationIn,
    ApplicationListOptions,
    ApplicationPatch,
    AppPortalAccessIn,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointListOptions,
    EndpointPatch,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
    EventExampleIn,
    EventTypeIn,
    EventTypeListOptions,
    EventTypePatch,
    EventTypeUpsertIn,
    MessageAttemptListAttemptedMessagesOptions,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    MessageStatus,
    Ordering,
    RecoverIn,
    SvixAsync,
)
from svix.exceptions import HttpError
from svix.webhooks import Webhook, WebhookVerificationError

from hookpost.domain.models import DeliveryStatus
from tests.integration.test_api_harness import ApiServer, close_svix, running_api
from tests.support.polling import eventually
from tests.support.receiver import Receiver, fail_then_ok


@pytest.fixture
async def api(fresh_sqlite_url: str) -> AsyncIterator[ApiServer]:
    async with running_api(fresh_sqlite_url) as server:
        yield server


# --------------------------------------------------------------------------- applications


async def test_applications_crud(svix: SvixAsync) -> None:
    created = await svix.application.create(
        ApplicationIn(name="Acme", uid="acme", metadata={"tier": "gold"})
    )
    assert created.id.startswith("app_") and created.uid == "acme"
    assert created.metadata == {"tier": "gold"}
    assert created.created_at.tzinfo is not None

    again = await svix.application.get_or_create(ApplicationIn(name="Other", uid="acme"))
    assert again.id == created.id and again.name == "Acme"

    assert (await svix.application.get("acme")).id == created.id
    assert (await svix.application.get(created.id)).uid == "acme"

    other = await svix.application.create(ApplicationIn(name="Globex"))
    page = await svix.application.list()
    assert [a.id for a in page.data] == [created.id, other.id]  # ascending by default
    assert page.done and page.iterator == other.id and page.prev_iterator == "-" + created.id
    desc = await svix.application.list(ApplicationListOptions(order=Ordering.DESCENDING))
    assert [a.id for a in desc.data] == [other.id, created.id]

    updated = await svix.application.upsert("acme", ApplicationIn(name="Acme Inc", uid="acme"))
    assert updated.id == created.id and updated.name == "Acme Inc"
    fresh = await svix.application.upsert("initech", ApplicationIn(name="Initech"))
    assert fresh.uid == "initech" and fresh.id not in (created.id, other.id)

    patched = await svix.application.patch(
        created.id, ApplicationPatch(throttle_rate=10, metadata={"tier": "silver"})
    )
    assert (patched.name, patched.throttle_rate, patched.metadata) == (
        "Acme Inc",
        10,
        {"tier": "silver"},
    )

    await svix.application.delete(created.id)
    with pytest.raises(HttpError) as err:
        await svix.application.get(created.id)
    assert (err.value.status_code, err.value.code) == (404, "not_found")


# --------------------------------------------------------------------------- event types


async def test_event_types_crud_archive_and_unarchive(svix: SvixAsync) -> None:
    schema = {"1": {"type": "object", "examples": [{"invoice": 1}]}}
    created = await svix.event_type.create(
        EventTypeIn(name="invoice.paid", description="Paid", schemas=schema)
    )
    assert (created.name, created.description, created.archived) == ("invoice.paid", "Paid", False)
    await svix.event_type.create(EventTypeIn(name="user.signup", description="Signed up"))

    got = await svix.event_type.get("invoice.paid")
    assert got.schemas == schema

    listed = await svix.event_type.list()
    assert [e.name for e in listed.data] == ["invoice.paid", "user.signup"]
    assert listed.data[0].schemas is None  # with_content defaults to false
    full = await svix.event_type.list(EventTypeListOptions(with_content=True))
    assert full.data[0].schemas == schema

    upserted = await svix.event_type.upsert(
        "invoice.paid", EventTypeUpsertIn(description="Paid (v2)", schemas=schema)
    )
    assert upserted.description == "Paid (v2)"
    brand_new = await svix.event_type.upsert(
        "invoice.voided", EventTypeUpsertIn(description="Voided")
    )
    assert brand_new.name == "invoice.voided"

    patched = await svix.event_type.patch("invoice.paid", EventTypePatch(deprecated=True))
    assert patched.deprecated and patched.description == "Paid (v2)"

    await svix.event_type.delete("user.signup")  # archives
    names = [e.name for e in (await svix.event_type.list()).data]
    assert "user.signup" not in names
    archived = await svix.event_type.list(EventTypeListOptions(include_archived=True))
    assert "user.signup" in [e.name for e in archived.data]

    with pytest.raises(HttpError) as err:
        await svix.event_type.create(EventTypeIn(name="invoice.paid", description="dup"))
    assert err.value.status_code == 409

    revived = await svix.event_type.create(EventTypeIn(name="user.signup", description="Back"))
    assert not revived.archived and revived.description == "Back"


# --------------------------------------------------------------------------- endpoints


async def test_endpoints_crud_secret_and_headers(svix: SvixAsync, receiver: Receiver) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ep = await svix.endpoint.create(
        app.id,
        EndpointIn(
            url=receiver.url("/a"),
            description="main",
            uid="main-ep",
            event_types=["invoice.paid"],
            channels=["eu"],
            secret=secret,
            metadata={"k": "v"},
            headers={"X-Custom": "1"},
        ),
    )
    assert ep.id.startswith("ep_") and ep.uid == "main-ep"
    assert (ep.event_types, ep.channels, ep.metadata) == (["invoice.paid"], ["eu"], {"k": "v"})
    assert (await svix.endpoint.get_secret(app.id, ep.id)).key == secret
    assert (await svix.endpoint.get(app.id, "main-ep")).id == ep.id

    second = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/b")))
    assert second.event_types is None and second.channels is None
    listed = await svix.endpoint.list(app.id)
    assert [e.id for e in listed.data] == [ep.id, second.id] and listed.done
    desc = await svix.endpoint.list(app.id, EndpointListOptions(order=Ordering.DESCENDING))
    assert [e.id for e in desc.data] == [second.id, ep.id]

    updated = await svix.endpoint.upsert(
        app.id, ep.id, EndpointUpsertIn(url=receiver.url("/a2"), description="renamed")
    )
    assert (updated.url, updated.description, updated.event_types) == (
        receiver.url("/a2"),
        "renamed",
        None,
    )
    created_by_put = await svix.endpoint.upsert(
        app.id, "by-put", EndpointUpsertIn(url=receiver.url("/c"))
    )
    assert created_by_put.uid == "by-put"

    patched = await svix.endpoint.patch(
        app.id, ep.id, EndpointPatch(disabled=True, channels=["us"])
    )
    assert patched.disabled and patched.channels == ["us"] and patched.url == receiver.url("/a2")

    rotated = await svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn())
    assert rotated.key.startswith("whsec_") and rotated.key != secret
    assert (await svix.endpoint.get_secret(app.id, ep.id)).key == rotated.key
    chosen = "whsec_" + "C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    again = await svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(key=chosen))
    assert again.key == chosen

    headers = await svix.endpoint.get_headers(app.id, ep.id)
    assert headers.headers == {"X-Custom": "1"} and headers.sensitive == []
    await svix.endpoint.set_headers(
        app.id, ep.id, EndpointHeadersIn(headers={"X-A": "a", "Authorization": "Bearer s3cret"})
    )
    headers = await svix.endpoint.get_headers(app.id, ep.id)
    assert headers.headers == {"X-A": "a"} and headers.sensitive == ["Authorization"]
    await svix.endpoint.patch_headers(
        app.id,
        ep.id,
        EndpointHeadersPatchIn(headers={"X-B": "b"}, delete_headers=["Authorization"]),
    )
    headers = await svix.endpoint.get_headers(app.id, ep.id)
    assert headers.headers == {"X-A": "a", "X-B": "b"} and headers.sensitive == []

    await svix.endpoint.delete(app.id, ep.id)
    with pytest.raises(HttpError) as err:
        await svix.endpoint.get(app.id, ep.id)
    assert err.value.status_code == 404


# --------------------------------------------------------------------------- messages


async def test_message_reaches_receiver_and_verifies_with_svix_webhook(
    api: ApiServer, svix: SvixAsync, receiver: Receiver
) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme", uid="acme"))
    ep = await svix.endpoint.create("acme", EndpointIn(url=receiver.url("/hook")))
    secret = (await svix.endpoint.get_secret("acme", ep.id)).key

    msg = await svix.message.create(
        "acme",
        MessageIn(event_type="invoice.paid", payload={"id": 42, "note": "héllo"}, event_id="evt-1"),
    )
    assert msg.id.startswith("msg_") and msg.event_id == "evt-1"
    assert msg.payload == {}  # the SDK asks with_content=false

    await receiver.wait_for(1, "/hook")
    got = receiver.on("/hook")[0]
    Webhook(secret).verify(got.body, got.headers)  # raises if the signature is wrong
    assert got.webhook_id == msg.id
    headers = {name.lower(): value for name, value in got.headers.items()}
    assert headers["content-type"].startswith("application/json")

    full = await svix.message.get(app.id, msg.id, MessageGetOptions(with_content=True))
    assert full.payload == {"id": 42, "note": "héllo"}
    by_event_id = await svix.message.get("acme", "evt-1", MessageGetOptions(with_content=True))
    assert by_event_id.id == msg.id

    # The application is created on the fly when `application` is given.
    created = await svix.message.create(
        "new-app",
        MessageIn(event_type="a.b", payload={"x": 1}, application=ApplicationIn(name="New app")),
    )
    assert created.event_type == "a.b"
    assert (await svix.application.get("new-app")).name == "New app"

    await svix.message.expunge_content("acme", msg.id)
    gone = await svix.message.get("acme", msg.id, MessageGetOptions(with_content=True))
    assert gone.payload == {}


async def test_attempts_resend_stats_and_delivery_views(
    svix: SvixAsync, receiver: Receiver
) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/ok")))
    msg = await svix.message.create(
        app.id, MessageIn(event_type="invoice.paid", payload={"n": 1}, channels=["eu"])
    )
    await receiver.wait_for(1, "/ok")

    async def attempts_by_endpoint() -> list[object]:
        page = await svix.message_attempt.list_by_endpoint(
            app.id, ep.id, MessageAttemptListByEndpointOptions(with_content=True)
        )
        return list(page.data)

    [attempt] = await eventually(attempts_by_endpoint, lambda a: len(a) == 1)
    assert attempt.msg_id == msg.id and attempt.endpoint_id == ep.id  # type: ignore[attr-defined]
    assert attempt.response_status_code == 200 and attempt.response == "ok"  # type: ignore[attr-defined]
    assert attempt.status == MessageStatus.SUCCESS  # type: ignore[attr-defined]
    assert attempt.trigger_type == 0  # type: ignore[attr-defined]

    by_msg = await svix.message_attempt.list_by_msg(app.id, msg.id)
    assert [a.id for a in by_msg.data] == [attempt.id]  # type: ignore[attr-defined]
    assert by_msg.data[0].response == ""  # the SDK asks with_content=false
    fetched = await svix.message_attempt.get(app.id, msg.id, attempt.id)  # type: ignore[attr-defined]
    assert fetched.url == receiver.url("/ok")

    await svix.message_attempt.resend(app.id, msg.id, ep.id)
    await receiver.wait_for(2, "/ok")
    attempts = await eventually(attempts_by_endpoint, lambda a: len(a) == 2)
    assert attempts[0].trigger_type == 1  # newest first: the manual one  # type: ignore[attr-defined]
    assert {r.webhook_id for r in receiver.on("/ok")} == {msg.id}

    failed = await svix.message_attempt.list_by_endpoint(
        app.id, ep.id, MessageAttemptListByEndpointOptions(status=MessageStatus.FAIL)
    )
    assert failed.data == [] and failed.done
    with_channel = await svix.message_attempt.list_by_msg(
        app.id, msg.id, MessageAttemptListByMsgOptions(channel="eu")
    )
    assert len(with_channel.data) == 2
    other_channel = await svix.message_attempt.list_by_msg(
        app.id, msg.id, MessageAttemptListByMsgOptions(channel="us")
    )
    assert other_channel.data == []

    sent_to_ep = await svix.message_attempt.list_attempted_messages(
        app.id, ep.id, MessageAttemptListAttemptedMessagesOptions(with_content=True)
    )
    [item] = sent_to_ep.data
    assert (item.id, item.status, item.payload) == (msg.id, MessageStatus.SUCCESS, {"n": 1})
    destinations = await svix.message_attempt.list_attempted_destinations(app.id, msg.id)
    [dest] = destinations.data
    assert (dest.id, dest.status, dest.url) == (ep.id, MessageStatus.SUCCESS, receiver.url("/ok"))

    stats = await svix.endpoint.get_stats(app.id, ep.id)
    assert (stats.success, stats.fail, stats.pending, stats.sending) == (1, 0, 0, 0)

    await svix.message_attempt.expunge_content(app.id, msg.id, attempt.id)  # type: ignore[attr-defined]
    emptied = await svix.message_attempt.get(app.id, msg.id, attempt.id)  # type: ignore[attr-defined]
    assert emptied.response == ""


async def test_recover_requeues_failed_deliveries(
    api: ApiServer, svix: SvixAsync, receiver: Receiver
) -> None:
    receiver.respond("/flaky", fail_then_ok(3))  # 3 attempts fail (first + 2 retries)
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/flaky")))
    since = datetime.now(UTC) - timedelta(minutes=1)
    msg = await svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 1}))

    await eventually(
        lambda: api.hp.store.get_delivery(msg.id, ep.id),
        lambda d: d.status == DeliveryStatus.FAILED,
    )
    stats = await svix.endpoint.get_stats(app.id, ep.id)
    assert stats.fail == 1
    attempted = await svix.message_attempt.list_attempted_messages(app.id, ep.id)
    assert attempted.data[0].status == MessageStatus.FAIL

    task = await svix.endpoint.recover(app.id, ep.id, RecoverIn(since=since))
    assert task.id.startswith("qtask_") and task.task == "endpoint.recover"
    await eventually(
        lambda: api.hp.store.get_delivery(msg.id, ep.id),
        lambda d: d.status == DeliveryStatus.SUCCEEDED,
    )
    assert len(receiver.on("/flaky")) == 4
    assert (await svix.endpoint.get_stats(app.id, ep.id)).success == 1


async def test_send_example_goes_to_that_endpoint_only(svix: SvixAsync, receiver: Receiver) -> None:
    await svix.event_type.create(
        EventTypeIn(
            name="invoice.paid",
            description="Paid",
            schemas={"1": {"type": "object", "examples": [{"invoice": "in_1", "amount": 5}]}},
        )
    )
    app = await svix.application.create(ApplicationIn(name="Acme"))
    target = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/target")))
    await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/bystander")))

    msg = await svix.endpoint.send_example(
        app.id, target.id, EventExampleIn(event_type="invoice.paid")
    )
    assert msg.event_type == "invoice.paid" and msg.payload == {"invoice": "in_1", "amount": 5}
    await receiver.wait_for(1, "/target")
    generic = await svix.endpoint.send_example(
        app.id, target.id, EventExampleIn(event_type="no.schema")
    )
    assert generic.payload["example"] is True
    await receiver.wait_for(2, "/target")
    assert receiver.on("/bystander") == []


# --------------------------------------------------------------------------- paging


async def _all_messages(svix: SvixAsync, app_id: str, between_pages: object = None) -> list[str]:
    seen: list[str] = []
    iterator = None
    while True:
        page = await svix.message.list(app_id, MessageListOptions(limit=50, iterator=iterator))
        seen += [m.id for m in page.data]
        if page.done:
            return seen
        iterator = page.iterator
        if between_pages is not None:
            await between_pages()  # type: ignore[operator]


async def test_paging_120_messages_yields_each_once(api: ApiServer, svix: SvixAsync) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ids = [
        (await svix.message.create(app.id, MessageIn(event_type="a.b", payload={"i": i}))).id
        for i in range(120)
    ]
    seen = await _all_messages(svix, app.id)
    assert seen == list(reversed(ids))  # newest first, each exactly once

    first = await svix.message.list(app.id, MessageListOptions(limit=50))
    assert len(first.data) == 50 and not first.done
    second = await svix.message.list(app.id, MessageListOptions(limit=50, iterator=first.iterator))
    back = await svix.message.list(
        app.id, MessageListOptions(limit=50, iterator=second.prev_iterator)
    )
    assert [m.id for m in back.data] == [m.id for m in first.data]  # prevIterator walks back
    assert back.done


async def test_paging_is_stable_while_messages_arrive(api: ApiServer, svix: SvixAsync) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    before = [
        (await svix.message.create(app.id, MessageIn(event_type="a.b", payload={"i": i}))).id
        for i in range(120)
    ]
    added: list[str] = []

    async def add_some() -> None:
        for i in range(7):
            new = await svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": i}))
            added.append(new.id)

    seen = await _all_messages(svix, app.id, add_some)
    assert seen == list(reversed(before))  # no duplicates, none skipped, newcomers not mixed in
    assert len(added) == 14
    everything = await _all_messages(svix, app.id)
    assert sorted(everything) == sorted(before + added) and len(set(everything)) == 134


# --------------------------------------------------------------------------- app portal


async def test_app_portal_token_is_scoped_to_its_application(
    api: ApiServer, svix: SvixAsync
) -> None:
    mine = await svix.application.create(ApplicationIn(name="Mine", uid="mine"))
    theirs = await svix.application.create(ApplicationIn(name="Theirs", uid="theirs"))
    await svix.message.create("theirs", MessageIn(event_type="a.b", payload={"secret": 1}))

    access = await svix.authentication.app_portal_access("mine", AppPortalAccessIn())
    assert access.token and access.url.endswith(access.token)
    scoped = api.svix(access.token)
    try:
        assert [a.id for a in (await scoped.application.list()).data] == [mine.id]
        assert (await scoped.application.get("mine")).id == mine.id
        # A portal token reads its app's messages but does not create them
        # (docs/permissions.md: message creation needs an admin token, as in Svix).
        with pytest.raises(HttpError) as err:
            await scoped.message.create("mine", MessageIn(event_type="a.b", payload={}))
        assert err.value.status_code == 403
        sent = await svix.message.create("mine", MessageIn(event_type="a.b", payload={}))
        listed = await scoped.message.list(mine.id)
        assert [m.id for m in listed.data] == [sent.id]
        for call in (
            scoped.application.get(theirs.id),
            scoped.application.get("theirs"),
            scoped.message.list("theirs"),
            scoped.endpoint.list(theirs.id),
            scoped.message.create("theirs", MessageIn(event_type="a.b", payload={})),
        ):
            with pytest.raises(HttpError) as err:
                await call
            assert err.value.status_code == 404
        with pytest.raises(HttpError) as err:
            await scoped.application.create(ApplicationIn(name="Nope"))
        assert err.value.status_code == 403
        await scoped.authentication.logout()
        with pytest.raises(HttpError) as err:  # the token is revoked
            await scoped.application.get("mine")
        assert err.value.status_code == 401
    finally:
        await close_svix(scoped)
    with pytest.raises(HttpError) as err:  # an admin token cannot log out
        await svix.authentication.logout()
    assert err.value.status_code == 403
    assert (await svix.application.get("mine")).id == mine.id

    created_with_portal = await svix.authentication.app_portal_access(
        "portal-made", AppPortalAccessIn(application=ApplicationIn(name="Portal made"))
    )
    assert created_with_portal.token
    assert (await svix.application.get("portal-made")).name == "Portal made"


async def test_health_check(svix: SvixAsync) -> None:
    started = time.monotonic()
    await svix.health.get()
    assert time.monotonic() - started < 5


async def test_rotated_secret_signs_while_the_old_one_still_verifies(
    svix: SvixAsync, receiver: Receiver
) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/rot")))
    old = (await svix.endpoint.get_secret(app.id, ep.id)).key
    new = (await svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn())).key
    await svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 1}))
    await receiver.wait_for(1, "/rot")
    got = receiver.on("/rot")[0]
    Webhook(new).verify(got.body, got.headers)
    Webhook(old).verify(got.body, got.headers)  # within the grace period

    await svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(grace_period_seconds=0))
    newest = (await svix.endpoint.get_secret(app.id, ep.id)).key
    await svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 2}))
    await receiver.wait_for(2, "/rot")
    latest = receiver.on("/rot")[1]
    Webhook(newest).verify(latest.body, latest.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(latest.body, latest.headers)  # no grace: no longer signs
