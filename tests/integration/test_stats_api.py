"""Attempt statistics over real deliveries to a loopback receiver, some failing, on both
backends: the stats routes' numbers equal those the test counts itself from what the receiver
answered (and, for an endpoint nobody listens on, from the attempts the SDK lists), read from
the attempts and again once the hour is rolled up. Svix's app attempt stats is read through the
svix SDK's client and checked against the reference's schema; the usage tasks' data too."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from svix.api import (
    ApplicationIn,
    AppUsageStatsIn,
    EndpointIn,
    MessageAttemptListByEndpointOptions,
    MessageIn,
    SvixAsync,
)
from svix.api.common import serialize_params
from svix.models import BackgroundTaskOut

from hookpost.domain.stats import HOUR_MS, ROLLUP_GRACE_MS, closed_until
from tests.integration.test_api_harness import ApiServer
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always, fail_then_ok

pytestmark = pytest.mark.timeout(120)
SCHEMAS = json.loads(
    (Path(__file__).parents[1] / "data" / "svix-openapi-1.947-stats.json").read_text()
)
TYPES = ("invoice.paid", "user.created")
# path -> what it answers; "dead" is a closed port (connection refused)
PATHS = {"ok": always(200), "bad": always(500), "flaky": fail_then_ok(1, 503)}
MESSAGES = 6


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": SCHEMAS["$defs"]})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    for path, responder in PATHS.items():
        r.respond(path, responder)
    yield r
    await r.stop()


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


async def get(svix: SvixAsync, path: str, params: dict[str, Any]) -> Any:
    """A GET through the SDK's own client (auth, query serialisation, error handling): the SDK
    2.9.1 has no method for these routes (``x-internal`` in the reference)."""
    response = await svix.application._request_asyncio(
        "get", path, path_params={}, query_params=serialize_params(params)
    )
    return response.json()


async def test_stats_equal_the_attempts_the_test_caused(
    api: ApiServer, svix: SvixAsync, receiver: Receiver
) -> None:
    app = await svix.application.create(ApplicationIn(name="stats"))
    endpoints = {
        path: await svix.endpoint.create(app.id, EndpointIn(url=receiver.url(path)))
        for path in PATHS
    }
    endpoints["dead"] = await svix.endpoint.create(app.id, EndpointIn(url="http://127.0.0.1:9/"))
    start = int(time.time() * 1000)
    for i in range(MESSAGES):
        event_type = TYPES[i % 2]
        await svix.message.create(
            app.id, MessageIn(event_type=event_type, payload={"t": event_type})
        )

    # every delivery final: ok 6, bad 6 x 3, flaky 6 + 1 (its first request fails) requests;
    # dead 6 x 3 attempts
    await receiver.wait_for(MESSAGES * (1 + 3 + 1) + 1, timeout=30.0)
    dead_id = endpoints["dead"].id

    async def dead_attempts() -> list[Any]:
        page = await svix.message_attempt.list_by_endpoint(
            app.id, dead_id, MessageAttemptListByEndpointOptions(limit=100)
        )
        return page.data

    dead = await eventually(dead_attempts, lambda a: len(a) == MESSAGES * 3, timeout=30.0)

    # what the test counts itself, from the receiver's requests and the dead endpoint's attempts
    by_type: dict[str, Counter[str]] = {t: Counter() for t in TYPES}
    by_endpoint: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    for request in receiver.requests:
        path = request.path.strip("/")
        n = receiver.on(request.path).index(request) + 1
        status = PATHS[path](n)[0]
        outcome = "succeeded" if status < 300 else "failed"
        by_type[json.loads(request.body)["t"]][outcome] += 1
        by_endpoint.setdefault(endpoints[path].id, Counter())[outcome] += 1
        if outcome == "failed":
            reasons[str(status)] += 1
    for attempt in dead:
        msg = await svix.message.get(app.id, attempt.msg_id)
        by_type[msg.event_type]["failed"] += 1
        by_endpoint.setdefault(dead_id, Counter())["failed"] += 1
        reasons["connection error"] += 1
    succeeded = sum(c["succeeded"] for c in by_type.values())
    failed = sum(c["failed"] for c in by_type.values())
    assert (succeeded, failed) == (12, 37)

    since, until = start - HOUR_MS, int(time.time() * 1000) + HOUR_MS

    async def report_now() -> Any:
        return await get(
            svix, f"/api/v1/app/{app.id}/stats/delivery", {"since": iso(since), "until": iso(until)}
        )

    # the last results may still be on their way to the store
    await eventually(
        report_now, lambda r: sum(r["totals"].values()) >= succeeded + failed, timeout=30.0
    )

    async def check() -> None:
        report = await report_now()
        assert report["totals"] == {
            "succeeded": succeeded,
            "failed": failed,
            "pending": 0,
            "sending": 0,
        }
        assert report["successRate"] == pytest.approx(succeeded / (succeeded + failed))
        assert {e["eventType"]: (e["succeeded"], e["failed"]) for e in report["byEventType"]} == {
            t: (c["succeeded"], c["failed"]) for t, c in by_type.items()
        }
        assert {e["endpointId"]: (e["succeeded"], e["failed"]) for e in report["byEndpoint"]} == {
            k: (c["succeeded"], c["failed"]) for k, c in by_endpoint.items()
        }
        assert {r["reason"]: r["count"] for r in report["failureReasons"]} == dict(reasons)
        assert report["period"] == "hour"
        assert sum(p["succeeded"] + p["failed"] for p in report["byPeriod"]) == succeeded + failed
        latency = report["latency"]
        assert 0 <= latency["p50Ms"] <= latency["p95Ms"] and latency["exact"] is False

        flaky = endpoints["flaky"].id
        one = await get(
            svix,
            f"/api/v1/app/{app.id}/endpoint/{flaky}/stats/delivery",
            {"since": iso(since), "until": iso(until)},
        )
        assert (one["totals"]["succeeded"], one["totals"]["failed"]) == (MESSAGES, 1)
        assert one["failureReasons"] == [{"reason": "503", "count": 1}]

        svix_stats = await get(
            svix, f"/api/v1/app/{app.id}/stats/attempts", {"since": iso(since), "until": iso(until)}
        )
        validator("AppAttemptStatsOut").validate(svix_stats)
        assert set(svix_stats) == set(SCHEMAS["$defs"]["AppAttemptStatsOut"]["properties"])
        assert (svix_stats["total_success"], svix_stats["total_failure"]) == (succeeded, failed)
        assert svix_stats["total_canceled"] == 0
        assert svix_stats["by_event_type"] == {
            t: {"success": c["succeeded"], "failure": c["failed"], "canceled": 0}
            for t, c in by_type.items()
        }
        only = await get(
            svix,
            f"/api/v1/app/{app.id}/stats/attempts",
            {"since": iso(since), "until": iso(until), "event_types": [TYPES[0]]},
        )
        assert list(only["by_event_type"]) == [TYPES[0]]
        assert only["total_success"] == by_type[TYPES[0]]["succeeded"]

    await check()  # from the attempts
    # the hour rolled up as the pass will once it has closed: the same numbers from the rollups
    store = api.hp.store
    later = int(time.time() * 1000) + 2 * HOUR_MS + ROLLUP_GRACE_MS

    async def roll() -> int:  # a step at a time (the worker's own pass may hold the turn)
        await store.roll_up_next(later)
        return await store.rolled_until()

    await eventually(roll, lambda mark: mark == closed_until(later), timeout=30.0)
    assert closed_until(later) > int(time.time() * 1000)  # this hour is in the rollups
    await check()


async def test_bad_ranges_are_422_naming_the_field(api: ApiServer, svix: SvixAsync) -> None:
    app = await svix.application.create(ApplicationIn(name="ranges"))
    now = int(time.time() * 1000)
    async with api.http() as http:
        doc = (await http.get("/api/v1/openapi.json")).json()
        for path in (
            "/api/v1/app/{app_id}/stats/delivery",
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats/delivery",
        ):
            assert "get" in doc["paths"][path]
        fields = doc["components"]["schemas"]["DeliveryStatsOut"]["properties"]
        assert {"successRate", "byEventType", "byEndpoint", "failureReasons"} <= set(fields)
        r = await http.get(
            f"/api/v1/app/{app.id}/stats/delivery", params={"since": iso(now), "until": iso(now)}
        )
        assert r.status_code == 422 and "until" in r.text
        r = await http.get(f"/api/v1/app/{app.id}/stats/attempts", params={"since": iso(now)})
        assert r.status_code == 422 and "until" in r.text
        r = await http.get(
            "/api/v1/app/app_nothere/stats/delivery",
            params={"since": iso(now - 1), "until": iso(now)},
        )
        assert r.status_code == 404


async def test_usage_tasks_data_have_svix_shapes(
    api: ApiServer, svix: SvixAsync, receiver: Receiver
) -> None:
    app = await svix.application.create(ApplicationIn(name="usage", uid="usage-app"))
    await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("ok"), event_types=[TYPES[0]]))
    await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("ok")))
    start = datetime.now(UTC)
    for _ in range(3):
        await svix.message.create(app.id, MessageIn(event_type=TYPES[0], payload={}))
    created = await svix.statistics.aggregate_app_stats(
        AppUsageStatsIn(
            since=start.replace(year=start.year - 1),
            until=datetime.now(UTC),
            app_ids=[app.id, "nothere"],
        )
    )
    assert created.unresolved_app_ids == ["nothere"]
    aggregate = await svix.statistics.aggregate_event_types()

    async def finished(task_id: str) -> BackgroundTaskOut:
        return await eventually(
            lambda: svix.background_task.get(task_id), lambda t: t.status != "running", 30.0
        )

    usage = await finished(created.id)
    assert usage.data == {
        "appStats": [{"appId": app.id, "appUid": "usage-app", "messageDestinations": 6}]
    }
    types = await finished(aggregate.id)
    assert types.task == "event-type.aggregate"
    assert {
        "appId": app.id,
        "explicitlySubscribedEventTypes": [TYPES[0]],
        "hasCatchAllEndpoint": True,
    } in types.data["event_types"]
