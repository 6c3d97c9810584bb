"""Alert rules end to end: rules made on a clock the test drives, messages sent on it, the
evaluator run at chosen instants, the alerts delivered by the real worker to a loopback
receiver and verified there with the ``standardwebhooks`` library.

The served runtime's own alert runner (on the wall clock) is stopped: the test's evaluator is
the only one, so each evaluation happens exactly when the test says."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from standardwebhooks import Webhook

from hookpost.domain.alerts import DIGEST, RESOLVED, TRIGGERED
from hookpost.domain.models import DeliveryStatus, PageRequest
from hookpost.domain.queries import MessageFilter
from hookpost.services import Services
from hookpost.services.alert_evaluator import LEASE_MS, AlertEvaluator
from tests.integration.conftest import ServedApi
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always

pytestmark = pytest.mark.timeout(90)
ALERTS = "/alerts"


class Clock:
    """Epoch milliseconds an hour behind the wall clock (so the deliveries of what is sent on
    it are due at once), aligned to a minute, moved only by the test."""

    def __init__(self) -> None:
        self.now = (int(time.time() * 1000) - 3_600_000) // 60_000 * 60_000

    def __call__(self) -> int:
        return self.now

    def at(self, ms: int) -> None:
        assert ms >= self.now
        self.now = ms


@dataclass
class World:
    api: ServedApi
    receiver: Receiver
    clock: Clock
    services: Services
    app_id: str
    verifier: Webhook

    async def rule(self, **spec: Any) -> str:
        rule, _ = await self.services.alert_rules.create(self.app_id, spec)
        return rule.id

    async def send(self, event_type: str, payload: dict[str, Any] | None = None) -> None:
        await self.services.messages.send_to_app_id(self.app_id, event_type, payload or {})

    async def evaluate_at(self, ms: int) -> None:
        self.clock.at(ms)
        while await self.services.alerts.run_once():
            pass

    async def stored(self, event_type: str) -> list[dict[str, Any]]:
        page = await self.api.hp.store.list_messages(
            self.app_id, PageRequest(limit=50), MessageFilter(event_types=[event_type])
        )
        return [orjson.loads(m.payload) for m in page.items]

    async def received(self, count: int) -> list[dict[str, Any]]:
        """The alerts delivered, once there are ``count``, each verified; in the order they
        were made (two deliveries to one endpoint may arrive in either order)."""

        async def arrived() -> list[Any]:
            return [r for r in self.receiver.requests if r.path == ALERTS]

        got = await eventually(arrived, lambda r: len(r) >= count, timeout=20)
        assert len(got) == count, [r.body for r in got]
        verified = [self.verifier.verify(r.body, r.headers) for r in got]
        return sorted(verified, key=lambda a: a["data"]["evaluatedAt"])


@pytest.fixture
async def world(any_database_url: str, serve_api: Any) -> AsyncIterator[World]:
    receiver = await Receiver().start()
    receiver.respond("/failing", always(500))
    try:
        async with serve_api(
            any_database_url,
            worker=True,
            allow_subnets="127.0.0.0/8",
            retry_schedule=(0,),
            poll_interval_s=0.05,
        ) as api:
            assert api.hp.alerts is not None
            await api.hp.alerts.stop()  # the wall clock's evaluator: see the module's doc
            clock = Clock()
            services = Services.build(api.hp.store, clock=clock)
            async with api.http() as http:
                app = await http.post("/api/v1/app", json={"name": "alerts"})
                app_id = app.json()["id"]
                ep = await http.post(
                    f"/api/v1/app/{app_id}/endpoint",
                    json={"url": receiver.url(ALERTS), "eventTypes": ["hookpost.*"]},
                )
                assert ep.status_code == 201, ep.text
                secret = await http.get(f"/api/v1/app/{app_id}/endpoint/{ep.json()['id']}/secret")
            verifier = Webhook(secret.json()["key"])
            yield World(api, receiver, clock, services, app_id, verifier)
    finally:
        await receiver.stop()


async def test_threshold_on_count_fires_once_and_resolves_once(world: World) -> None:
    t0 = world.clock.now
    rule_id = await world.rule(
        name="failures", kind="threshold", metric="count", eventTypes=["payment.failed"],
        operator="gt", value=5, windowSeconds=60,
    )  # fmt: skip
    world.clock.at(t0 + 1_000)
    for _ in range(6):
        await world.send("payment.failed")
    await world.send("payment.succeeded")  # not of the rule's types
    await world.evaluate_at(t0 + 10_000)
    await world.evaluate_at(t0 + 20_000)  # still above: no second alert
    await world.evaluate_at(t0 + 30_000)
    await world.evaluate_at(t0 + 70_000)  # the six left the window
    await world.evaluate_at(t0 + 80_000)
    alerts = await world.received(2)
    assert [a["type"] for a in alerts] == [TRIGGERED, RESOLVED]
    fired = alerts[0]["data"]
    assert fired["ruleId"] == rule_id and fired["ruleName"] == "failures"
    assert fired["value"] == 6 and fired["threshold"] == 5 and fired["exceeded"] is True
    assert fired["windowSeconds"] == 60 and fired["metric"]["eventTypes"] == ["payment.failed"]
    assert alerts[1]["data"]["exceeded"] is False and alerts[1]["data"]["value"] == 0
    assert len(await world.stored(TRIGGERED)) == 1 and len(await world.stored(RESOLVED)) == 1


async def test_threshold_on_the_average_of_a_field(world: World) -> None:
    t0 = world.clock.now
    await world.rule(
        name="big payments", kind="threshold", metric="avg", field="data.amount",
        eventTypes=["payment.*"], operator="gte", value=100, windowSeconds=30,
    )  # fmt: skip
    world.clock.at(t0 + 1_000)
    await world.send("payment.made", {"data": {"amount": 50}})
    await world.evaluate_at(t0 + 5_000)  # avg 50: below
    world.clock.at(t0 + 6_000)
    await world.send("payment.made", {"data": {"amount": 250}})
    await world.send("payment.made", {"data": {"note": "no amount: not averaged"}})
    await world.send("refund.made", {"data": {"amount": 1}})  # not of the rule's types
    await world.evaluate_at(t0 + 10_000)  # avg 150
    await world.evaluate_at(t0 + 20_000)
    await world.evaluate_at(t0 + 40_000)  # nothing left in the window: resolved
    await world.evaluate_at(t0 + 50_000)
    alerts = await world.received(2)
    assert [a["type"] for a in alerts] == [TRIGGERED, RESOLVED]
    assert alerts[0]["data"]["value"] == 150
    assert alerts[0]["data"]["metric"] == {
        "metric": "avg",
        "field": "data.amount",
        "eventTypes": ["payment.*"],
    }


async def test_anomaly_fires_on_a_spike_not_on_a_steady_baseline(world: World) -> None:
    t0 = world.clock.now
    await world.rule(
        name="surge", kind="anomaly", metric="count", windowSeconds=10,
        baselineWindows=6, sensitivity=3,
    )  # fmt: skip
    steady = [5, 4, 6, 5, 5, 4, 5, 6, 5, 4]
    for i, n in enumerate(steady):
        world.clock.at(t0 + i * 10_000 + 3_000)
        for _ in range(n):
            await world.send("order.placed")
        await world.evaluate_at(t0 + (i + 1) * 10_000 + 2_000)
    assert await world.stored(TRIGGERED) == []
    spike = len(steady)
    world.clock.at(t0 + spike * 10_000 + 3_000)
    for _ in range(30):
        await world.send("order.placed")
    await world.evaluate_at(t0 + (spike + 1) * 10_000 + 2_000)
    (alert,) = await world.received(1)
    assert alert["type"] == TRIGGERED
    data = alert["data"]
    assert data["value"] == 30 and data["baseline"]["median"] == 5
    assert data["baseline"]["score"] >= 3


async def test_digest_on_schedule_with_the_counts_sent(world: World) -> None:
    t0 = world.clock.now  # on a minute: "30s" periods start at t0 and t0 + 30 s
    async with world.api.http() as http:
        failing = await http.post(
            f"/api/v1/app/{world.app_id}/endpoint",
            json={"url": world.receiver.url("/failing"), "eventTypes": ["b.updated"]},
        )
    failing_id = failing.json()["id"]
    rule_id = await world.rule(name="summary", kind="digest", schedule="30s")
    world.clock.at(t0 + 1_000)
    sent = {"a.created": 3, "b.updated": 2}
    for event_type, n in sent.items():
        for _ in range(n):
            await world.send(event_type)

    async def failed() -> list[Any]:
        page = await world.api.hp.store.list_deliveries_for_endpoint(
            world.app_id, failing_id, PageRequest(limit=10), DeliveryStatus.FAILED
        )
        return page.items

    await eventually(failed, lambda items: len(items) == 2, timeout=20)
    await world.evaluate_at(t0 + 20_000)  # before the period's end: nothing
    await world.evaluate_at(t0 + 32_000)
    await world.evaluate_at(t0 + 62_000)  # an empty period
    first, second = await world.received(2)
    assert first["type"] == second["type"] == DIGEST
    data = first["data"]
    assert data["ruleId"] == rule_id
    assert data["countsByEventType"] == sent and data["messages"] == 5
    assert data["failedDeliveries"] == 2
    assert data["topFailingEndpoints"] == [{"endpointId": failing_id, "failed": 2}]
    assert second["data"]["countsByEventType"] == {} and second["data"]["messages"] == 0
    assert second["data"]["periodStart"] == data["periodEnd"]


async def test_pushed_metric_threshold(world: World) -> None:
    t0 = world.clock.now
    await world.rule(
        name="deep queue", kind="threshold", metric="max", pushedMetric="queue.depth",
        operator="gt", value=100, windowSeconds=30,
    )  # fmt: skip
    recorded = await world.services.alert_rules.push(
        world.app_id,
        [{"name": "queue.depth", "value": 40}, {"name": "unused", "value": 1e6}],
    )
    assert recorded == (1, 1)
    await world.evaluate_at(t0 + 10_000)
    world.clock.at(t0 + 15_000)
    await world.services.alert_rules.push(world.app_id, [{"name": "queue.depth", "value": 150}])
    await world.evaluate_at(t0 + 20_000)
    await world.evaluate_at(t0 + 50_000)  # the 150 left the window
    alerts = await world.received(2)
    assert [a["type"] for a in alerts] == [TRIGGERED, RESOLVED]
    assert alerts[0]["data"]["value"] == 150
    assert alerts[0]["data"]["metric"] == {"metric": "max", "pushedMetric": "queue.depth"}


async def test_reserved_types_are_in_the_catalog_with_examples(world: World) -> None:
    await world.rule(name="r", kind="digest", schedule="1h")
    async with world.api.http() as http:
        for name in (TRIGGERED, RESOLVED, DIGEST):
            r = await http.get(f"/api/v1/event-type/{name}")
            assert r.status_code == 200, r.text
            schema = r.json()["schemas"]["1"]
            assert schema["examples"][0]["type"] == name


class Died(Exception):
    """A worker's death, at the worst moment: after the alert was sent, before its state."""


class DiesBeforeFinishing:
    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def finish_alert_run(self, *args: Any, **kwargs: Any) -> bool:
        raise Died


async def test_a_run_that_dies_after_sending_is_not_sent_again(world: World) -> None:
    t0 = world.clock.now
    await world.rule(name="once", kind="threshold", operator="gte", value=1, windowSeconds=60)
    world.clock.at(t0 + 1_000)
    await world.send("x.happened")
    world.clock.at(t0 + 10_000)
    dying = AlertEvaluator(
        DiesBeforeFinishing(world.api.hp.store), world.services.messages, world.clock
    )
    with pytest.raises(Died):
        await dying.run_once()
    assert len(await world.stored(TRIGGERED)) == 1
    await world.evaluate_at(t0 + 20_000)  # the dead run's lease still holds the application
    await world.evaluate_at(
        t0 + 10_000 + LEASE_MS
    )  # expired: the next run reaches the same crossing
    assert len(await world.stored(TRIGGERED)) == 1
    rule_state = (await world.services.alert_rules.list(world.app_id, PageRequest())).items[0][1]
    assert rule_state.firing and rule_state.fired == 1
    await world.evaluate_at(t0 + 100_000)
    alerts = await world.received(2)
    assert [a["type"] for a in alerts] == [TRIGGERED, RESOLVED]


class SlowPages:
    """A store on which each page of messages takes ``step_ms`` of the test's clock (and page
    ``at`` ``stall_ms`` more); at page ``at`` it runs ``meanwhile`` (another evaluator)."""

    def __init__(
        self,
        store: Any,
        clock: Clock,
        at: int,
        meanwhile: Callable[[], Awaitable[bool]],
        step_ms: int = 0,
        stall_ms: int = 0,
    ) -> None:
        self._store, self._clock, self._at, self._meanwhile = store, clock, at, meanwhile
        self._step_ms, self._stall_ms = step_ms, stall_ms
        self.pages = 0
        self.other_claimed: bool | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def scan_messages(self, *args: Any) -> Any:
        self.pages += 1
        self._clock.at(self._clock.now + self._step_ms)
        if self.pages == self._at:
            self._clock.at(self._clock.now + self._stall_ms)
            self.other_claimed = await self._meanwhile()
        return await self._store.scan_messages(*args)


async def test_a_catch_up_longer_than_its_lease_is_one_run_and_fires_once(world: World) -> None:
    t0 = world.clock.now
    await world.rule(name="backlog", kind="threshold", operator="gte", value=50, windowSeconds=600)
    world.clock.at(t0 + 1_000)
    for _ in range(50):
        await world.send("x.happened")
    started = t0 + 10_000
    world.clock.at(started)
    other = AlertEvaluator(world.api.hp.store, world.services.messages, world.clock)
    # 2 messages a page: 25 pages and an empty one, 2 s of the clock each; at page 12 (24 s
    # in, past the claim's lease) a second evaluator tries to take the application.
    slow = SlowPages(world.api.hp.store, world.clock, 12, other.run_once, step_ms=2_000)
    first = AlertEvaluator(slow, world.services.messages, world.clock, scan_rows=2)
    assert await first.run_once()
    assert slow.pages == 26 and world.clock.now - started > 3 * LEASE_MS  # one run
    assert slow.other_claimed is False  # the lease was renewed: still held
    (fired,) = await world.stored(TRIGGERED)
    assert fired["data"]["value"] == 50  # every page counted
    await world.evaluate_at(world.clock.now + 10_000)  # still above: no second alert
    (alert,) = await world.received(1)
    assert alert["type"] == TRIGGERED and len(await world.stored(TRIGGERED)) == 1


async def test_a_run_whose_lease_was_taken_stops_and_sends_nothing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hookpost.alerts")
    t0 = world.clock.now
    await world.rule(name="taken", kind="threshold", operator="gte", value=10, windowSeconds=600)
    world.clock.at(t0 + 1_000)
    for _ in range(10):
        await world.send("x.happened")
    world.clock.at(t0 + 10_000)
    other = AlertEvaluator(world.api.hp.store, world.services.messages, world.clock)
    # The first run stalls on its second page for longer than its lease: the other evaluator
    # takes the application, counts everything and fires.
    slow = SlowPages(world.api.hp.store, world.clock, 2, other.run_once, stall_ms=LEASE_MS + 1)
    first = AlertEvaluator(slow, world.services.messages, world.clock, scan_rows=2)
    assert await first.run_once()
    assert slow.other_claimed is True
    assert slow.pages == 2  # it read no page after its lease was taken
    assert "lease lost" in caplog.text
    (fired,) = await world.stored(TRIGGERED)
    assert fired["data"]["value"] == 10
    rule_state = (await world.services.alert_rules.list(world.app_id, PageRequest())).items[0][1]
    assert rule_state.firing and rule_state.fired == 1
    await world.evaluate_at(world.clock.now + 10_000)
    (alert,) = await world.received(1)
    assert alert["type"] == TRIGGERED


async def test_a_digest_run_that_dies_resumes_with_one_digest_per_period(world: World) -> None:
    t0 = world.clock.now  # on a minute: "30s" periods end at t0 + 30, 60, 90 s
    await world.rule(name="summary", kind="digest", schedule="30s")
    world.clock.at(t0 + 1_000)
    for _ in range(3):
        await world.send("a.created")
    world.clock.at(t0 + 31_000)
    for _ in range(2):
        await world.send("b.updated")
    world.clock.at(t0 + 32_000)
    dying = AlertEvaluator(
        DiesBeforeFinishing(world.api.hp.store), world.services.messages, world.clock
    )
    with pytest.raises(Died):  # after sending the first period's digest
        await dying.run_once()
    assert len(await world.stored(DIGEST)) == 1
    await world.evaluate_at(t0 + 95_000)  # three periods over: the first is not sent again
    digests = sorted(await world.received(3), key=lambda d: d["data"]["periodEnd"])
    assert len(await world.stored(DIGEST)) == 3
    assert [d["data"]["countsByEventType"] for d in digests] == [
        {"a.created": 3},
        {"b.updated": 2},
        {},
    ]
    assert [d["data"]["messages"] for d in digests] == [3, 2, 0]
    for before, after in itertools.pairwise(digests):
        assert after["data"]["periodStart"] == before["data"]["periodEnd"]


async def test_a_digest_back_from_a_long_outage_sends_the_latest_periods_only(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hookpost.alerts")
    t0 = world.clock.now
    await world.rule(name="summary", kind="digest", schedule="30s")
    world.clock.at(t0 + 1_000)
    await world.send("old.event")  # in the first period: skipped
    world.clock.at(t0 + 91_000)
    await world.send("new.event")  # in the fourth
    world.clock.at(t0 + 122_000)
    evaluator = AlertEvaluator(
        world.api.hp.store, world.services.messages, world.clock, max_missed_digests=2
    )
    while await evaluator.run_once():
        pass
    digests = sorted(await world.received(2), key=lambda d: d["data"]["periodEnd"])
    assert [d["data"]["countsByEventType"] for d in digests] == [{}, {"new.event": 1}]
    assert digests[0]["data"]["periodEnd"] == digests[1]["data"]["periodStart"]
    assert "are skipped" in caplog.text
    assert len(await world.stored(DIGEST)) == 2


async def test_api_routes_and_errors_naming_the_field(world: World) -> None:
    base = f"/api/v1/app/{world.app_id}"
    async with world.api.http() as http:
        bad = await http.post(f"{base}/alert-rule", json={"name": "x", "kind": "threshold"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "windowSeconds"]
        bad = await http.post(
            f"{base}/alert-rule",
            json={"name": "x", "kind": "digest", "schedule": "61 * * * *"},
        )
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "schedule"]
        made = await http.post(
            f"{base}/alert-rule",
            json={"name": "x", "kind": "threshold", "operator": "lt", "value": 1,
                  "windowSeconds": 60, "eventTypes": ["a.*"]},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        rule = made.json()
        assert rule["id"].startswith("alrt_") and rule["firing"] is False
        patched = await http.patch(f"{base}/alert-rule/{rule['id']}", json={"eventTypes": None})
        assert patched.status_code == 200 and "eventTypes" not in patched.json()
        bad = await http.patch(f"{base}/alert-rule/{rule['id']}", json={"field": "amount"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "field"]
        listed = await http.get(f"{base}/alert-rule")
        assert [r["id"] for r in listed.json()["data"]] == [rule["id"]]
        pushed = await http.post(f"{base}/metric", json={"name": "q", "value": 1})
        assert pushed.status_code == 202 and pushed.json() == {"recorded": 0, "ignored": 1}
        batch = await http.post(f"{base}/metric", json={"samples": [{"name": "q", "value": "x"}]})
        assert batch.status_code == 422
        assert (await http.delete(f"{base}/alert-rule/{rule['id']}")).status_code == 204
        assert (await http.get(f"{base}/alert-rule/{rule['id']}")).status_code == 404
