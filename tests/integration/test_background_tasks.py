"""Background tasks through the official svix SDK on both backends: recover, replay-missing,
bulk replay (and its dryRun), usage stats and expunge-all run as tasks the client reads, each
ending with ``background_task.finished``; and the routes of issue 21 served beside them
(attempts with their message, attempt count, raw payload, bulk expunge, expire-all)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from svix.api import (
    ApplicationIn,
    ApplicationTokenExpireIn,
    AppUsageStatsIn,
    BackgroundTaskListOptions,
    BackgroundTaskOut,
    BackgroundTaskStatus,
    BackgroundTaskType,
    BulkExpungeContentsIn,
    BulkReplayIn,
    EndpointIn,
    EndpointPatch,
    MessageAttemptListByEndpointOptions,
    MessageIn,
    MessageStatus,
    OperationalWebhookEndpointIn,
    RecoverIn,
    ReplayIn,
    SvixAsync,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.webhooks import Webhook

from tests.integration.test_api_harness import ApiServer, close_svix
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always

pytestmark = pytest.mark.timeout(90)


def ago(minutes: int = 5) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


async def finished(svix: SvixAsync, task_id: str) -> BackgroundTaskOut:
    task = await eventually(
        lambda: svix.background_task.get(task_id),
        lambda t: t.status != BackgroundTaskStatus.RUNNING,
    )
    assert task.status == BackgroundTaskStatus.FINISHED, task
    return task


async def ops_events(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.on("/ops")]


async def test_replay_missing_sends_exactly_what_the_endpoint_never_had(
    svix: SvixAsync, receiver: Receiver
) -> None:
    await svix.operational_webhook.endpoint.create(
        OperationalWebhookEndpointIn(
            url=receiver.url("/ops"), event_types=["background_task.finished"]
        )
    )
    app = await svix.application.create(ApplicationIn(name="Acme"))
    other = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/other")))
    ep = await svix.endpoint.create(
        app.id,
        EndpointIn(url=receiver.url("/ep"), event_types=["x.*"], disabled=True),
    )
    sent_disabled = await svix.message.create(app.id, MessageIn(event_type="x.a", payload={"n": 1}))
    unmatched = await svix.message.create(app.id, MessageIn(event_type="y.a", payload={"n": 2}))
    await svix.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=False))
    delivered = await svix.message.create(app.id, MessageIn(event_type="x.b", payload={"n": 3}))
    late = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/late")))
    await receiver.wait_for(1, "/ep")
    await receiver.wait_for(3, "/other")

    task = await svix.endpoint.replay_missing(app.id, ep.id, ReplayIn(since=ago()))
    assert task.task == BackgroundTaskType.ENDPOINT_REPLAY
    done = await finished(svix, task.id)
    assert done.data == {"messagesSent": 1}
    await receiver.wait_for(2, "/ep")
    # the endpoint that subscribed late gets every message sent before it existed
    late_task = await svix.endpoint.replay_missing(app.id, late.id, ReplayIn(since=ago()))
    assert (await finished(svix, late_task.id)).data == {"messagesSent": 3}
    await receiver.wait_for(3, "/late")
    again = await svix.endpoint.replay_missing(app.id, ep.id, ReplayIn(since=ago()))
    assert (await finished(svix, again.id)).data == {"messagesSent": 0}

    secret = (await svix.endpoint.get_secret(app.id, ep.id)).key
    got = [r.webhook_id for r in receiver.on("/ep")]
    assert sorted(got) == sorted([delivered.id, sent_disabled.id]), (got, unmatched.id)
    for r in receiver.on("/ep"):
        Webhook(secret).verify(r.body, r.headers)
    assert sorted(r.webhook_id for r in receiver.on("/late")) == sorted(
        [sent_disabled.id, unmatched.id, delivered.id]
    )
    assert len(receiver.on("/other")) == 3  # untouched
    assert other.id

    await receiver.wait_for(3, "/ops")
    finished_events = await ops_events(receiver)
    assert {e["type"] for e in finished_events} == {"background_task.finished"}
    by_task = {e["data"]["taskId"]: e["data"] for e in finished_events}
    assert by_task[task.id]["task"] == "endpoint.replay"
    assert by_task[task.id]["data"] == {"messagesSent": 1}


async def test_bulk_replay_dry_run_counts_and_the_real_run_resends(
    api: ApiServer, svix: SvixAsync, receiver: Receiver
) -> None:
    receiver.respond("/flaky", lambda n: (500, "no", {}) if n == 2 else (200, "ok", {}))
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/flaky")))
    sent = []
    for i, kind in enumerate(["a.one", "a.two", "a.one"]):
        sent.append(await svix.message.create(app.id, MessageIn(event_type=kind, payload={"i": i})))
        await receiver.wait_for(len(sent), "/flaky")
    # the second message's first attempt fails; retries (schedule 0, 0) make it succeed
    await eventually(
        lambda: svix.message_attempt.list_by_endpoint(app.id, ep.id),
        lambda page: len([a for a in page.data if a.status == MessageStatus.SUCCESS]) == 3,
    )
    before = len(receiver.on("/flaky"))

    async with api.http() as http:
        path = f"/api/v1/app/{app.id}/endpoint/{ep.id}/bulk-replay"
        r = await http.post(path, json={"since": ago().isoformat(), "dryRun": True})
        assert r.status_code == 202, r.text
        dry = await finished(svix, r.json()["id"])
        assert dry.data == {"dryRun": True, "messagesMatched": 3}
        r = await http.post(path, json={"since": ago().isoformat(), "channel": "c"})
        assert r.status_code == 422 and "channel" in r.text
    assert len(receiver.on("/flaky")) == before  # the dry run sent nothing

    only_one = await svix.endpoint.bulk_replay(
        app.id, ep.id, BulkReplayIn(since=ago(), event_types=["a.one"])
    )
    assert only_one.task == BackgroundTaskType.ENDPOINT_BULK_REPLAY
    assert (await finished(svix, only_one.id)).data == {"messagesSent": 2}
    await receiver.wait_for(before + 2, "/flaky")
    # and recorded (a delivery still sending is not queued again by a replay)
    await eventually(
        lambda: svix.message_attempt.list_by_endpoint(app.id, ep.id),
        lambda page: len(page.data) == 6,  # 3 sent + 1 retry + 2 replayed
    )
    replayed = [r.webhook_id for r in receiver.on("/flaky")[before:]]
    assert sorted(replayed) == sorted([sent[0].id, sent[2].id])

    everything = await svix.endpoint.bulk_replay(app.id, ep.id, BulkReplayIn(since=ago()))
    assert (await finished(svix, everything.id)).data == {"messagesSent": 3}
    await receiver.wait_for(before + 5, "/flaky")

    tasks = await svix.background_task.list(
        BackgroundTaskListOptions(task=BackgroundTaskType.ENDPOINT_BULK_REPLAY)
    )
    assert [t.id for t in tasks.data] == [everything.id, only_one.id, dry.id]  # newest first
    assert all(t.status == BackgroundTaskStatus.FINISHED for t in tasks.data)


async def test_recover_is_a_task_the_client_reads(svix: SvixAsync, receiver: Receiver) -> None:
    receiver.respond("/down", always(500))
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/down")))
    msg = await svix.message.create(app.id, MessageIn(event_type="a.b", payload={}))
    await eventually(
        lambda: svix.message_attempt.list_by_endpoint(app.id, ep.id),
        lambda page: len(page.data) == 3,  # the first attempt and two retries
    )
    receiver.respond("/down", always(200))
    task = await svix.endpoint.recover(app.id, ep.id, RecoverIn(since=ago()))
    done = await finished(svix, task.id)
    assert done.task == BackgroundTaskType.ENDPOINT_RECOVER
    assert done.data["messages_sent"] == 1 and done.data["endp_id"] == ep.id
    await receiver.wait_for(4, "/down")
    assert receiver.on("/down")[-1].webhook_id == msg.id


async def test_attempts_with_msg_count_and_raw_payload(
    api: ApiServer, svix: SvixAsync, receiver: Receiver
) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/ok")))
    msgs = [
        await svix.message.create(app.id, MessageIn(event_type="a.b", payload={"i": i}))
        for i in range(3)
    ]
    await receiver.wait_for(3, "/ok")
    await eventually(
        lambda: svix.message_attempt.list_by_endpoint(app.id, ep.id),
        lambda page: len(page.data) == 3,
    )
    page = await svix.message_attempt.list_by_endpoint(
        app.id, ep.id, MessageAttemptListByEndpointOptions(with_msg=True)
    )
    assert {a.msg.id: a.msg_id for a in page.data if a.msg is not None} == {
        m.id: m.id for m in msgs
    }
    assert {a.msg.payload.get("i") for a in page.data if a.msg is not None} == {0, 1, 2}
    plain = await svix.message_attempt.list_by_endpoint(app.id, ep.id)
    assert all(a.msg is None for a in plain.data)
    async with api.http() as http:
        base = f"/api/v1/app/{app.id}"
        r = await http.get(f"{base}/attempt/endpoint/{ep.id}/count")
        assert r.json() == {"count": 3, "approximated": False}
        r = await http.get(f"{base}/attempt/endpoint/{ep.id}/count", params={"status": 2})
        assert r.json() == {"count": 0, "approximated": False}
        r = await http.get(f"{base}/msg/{msgs[0].id}/raw")
        assert r.status_code == 200 and r.json() == {"payload": '{"i":0}'}


async def test_expunge_bulk_and_all_and_expire_all(
    api: ApiServer, svix: SvixAsync, receiver: Receiver
) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    msgs = [
        await svix.message.create(app.id, MessageIn(event_type="a.b", payload={"i": i}))
        for i in range(3)
    ]
    out = await svix.message.bulk_expunge_content(
        app.id, BulkExpungeContentsIn(ids=[msgs[0].id, "msg_missing"])
    )
    assert {k: v.value for k, v in out.results.items()} == {
        msgs[0].id: "expunged",
        "msg_missing": "not-found",
    }
    assert (await svix.message.get(app.id, msgs[0].id)).payload == {}
    task = await svix.message.expunge_all_contents(app.id)
    done = await finished(svix, task.id)
    assert done.task == BackgroundTaskType.APPLICATION_PURGE_CONTENT
    assert done.data == {"messagesPurged": 2}
    for m in msgs:
        assert (await svix.message.get(app.id, m.id)).payload == {}

    async with api.http() as http:
        r = await http.post("/api/v1/auth/token", json={"appId": app.id, "name": "portal"})
        token = r.json()["token"]
        app_client = api.svix(token)
        try:
            assert (await app_client.application.get(app.id)).id == app.id
            await svix.authentication.expire_all(app.id, ApplicationTokenExpireIn())

            async def status() -> int:
                try:
                    await app_client.application.get(app.id)
                except HttpError as exc:
                    return exc.status_code
                return 200

            # every process refuses it once its auth cache entry (5 s) is gone
            assert await eventually(status, lambda code: code == 401, timeout=15.0) == 401
        finally:
            await close_svix(app_client)
        r = await http.post(f"/api/v1/auth/app/{app.id}/expire-all", json={"expiry": 60})
        assert r.status_code == 422 and "expiry" in r.text


async def test_usage_stats_tasks(svix: SvixAsync, receiver: Receiver) -> None:
    a = await svix.application.create(ApplicationIn(name="A", uid="usage-a"))
    b = await svix.application.create(ApplicationIn(name="B"))
    await svix.endpoint.create(a.id, EndpointIn(url=receiver.url("/a"), event_types=["x.y"]))
    await svix.endpoint.create(a.id, EndpointIn(url=receiver.url("/a2")))
    await svix.endpoint.create(b.id, EndpointIn(url=receiver.url("/b"), event_types=["q.r"]))
    for _ in range(2):
        await svix.message.create(a.id, MessageIn(event_type="x.y", payload={}))
    since, until = ago(), datetime.now(UTC) + timedelta(minutes=1)
    out = await svix.statistics.aggregate_app_stats(
        AppUsageStatsIn(since=since, until=until, app_ids=["usage-a", b.id, "nope"])
    )
    assert out.unresolved_app_ids == ["nope"]
    stats = (await finished(svix, out.id)).data["appStats"]
    assert sorted((s["appId"], s["appUid"], s["messageDestinations"]) for s in stats) == sorted(
        [(a.id, "usage-a", 4), (b.id, None, 0)]
    )
    with pytest.raises(HTTPValidationError) as bad:
        await svix.statistics.aggregate_app_stats(
            AppUsageStatsIn(since=since, until=until, app_ids=["nope"])
        )
    assert bad.value.detail[0].loc == ["body", "appIds"]
    types = await svix.statistics.aggregate_event_types()
    data = (await finished(svix, types.id)).data["event_types"]
    by_app = {d["appId"]: d for d in data}
    assert by_app[a.id]["explicitlySubscribedEventTypes"] == ["x.y"]
    assert by_app[a.id]["hasCatchAllEndpoint"] is True
    assert by_app[b.id] == {
        "appId": b.id,
        "explicitlySubscribedEventTypes": ["q.r"],
        "hasCatchAllEndpoint": False,
    }


async def test_a_literal_route_beside_a_parameter_allows_its_own_methods(api: ApiServer) -> None:
    """``msg/bulk-expunge`` is not ``msg/{msg_id}``: a 405 there allows POST, not GET."""
    async with api.http() as http:
        for method, path in (
            ("OPTIONS", "/api/v1/app/x/msg/bulk-expunge"),
            ("DELETE", "/api/v1/app/x/msg/expunge-all-contents"),
        ):
            r = await http.request(method, path)
            assert (r.status_code, r.headers["allow"]) == (405, "POST"), (path, r.text)
        r = await http.request("DELETE", "/api/v1/app/x/msg")
        assert r.headers["allow"] == "GET, POST"
