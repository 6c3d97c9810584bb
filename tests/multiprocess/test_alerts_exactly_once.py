"""Alert rules across processes on PostgreSQL: one ``hookpost api`` and two ``hookpost worker``
processes, both evaluating; one is SIGKILLed as the first alert arrives. Each crossing is
still alerted exactly once (one message per crossing, whatever was redelivered), and every
alert is verified at a loopback receiver with the ``standardwebhooks`` library."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from hookpost.domain.alerts import RESOLVED, TRIGGERED
from tests.support.cluster import Cluster
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(240)]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


def alerts(receiver: Receiver, verifier: Webhook) -> dict[str, list[str]]:
    """The distinct alert messages received (a delivery may be retried), by type."""
    seen: dict[str, set[str]] = {}
    for r in receiver.on("/alerts"):
        verifier.verify(r.body, r.headers)
        seen.setdefault(orjson.loads(r.body)["type"], set()).add(r.webhook_id)
    return {kind: sorted(ids) for kind, ids in seen.items()}


async def test_two_workers_one_killed_alert_each_crossing_once(
    fresh_postgres_url: str, make_cluster: Callable[..., Cluster], receiver: Receiver
) -> None:
    cluster = make_cluster(fresh_postgres_url, retry_schedule="0,1")
    (api_proc,), workers = await cluster.start(apis=1, workers=2)
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{api_proc.port}", headers=headers, timeout=10
    ) as api:
        app_id = (await api.post("/api/v1/app", json={"name": "alerts"})).json()["id"]
        ep = await api.post(
            f"/api/v1/app/{app_id}/endpoint",
            json={"url": receiver.url("/alerts"), "eventTypes": ["hookpost.alert.*"]},
        )
        assert ep.status_code == 201, ep.text
        secret = await api.get(f"/api/v1/app/{app_id}/endpoint/{ep.json()['id']}/secret")
        verifier = Webhook(secret.json()["key"])
        rule = await api.post(
            f"/api/v1/app/{app_id}/alert-rule",
            json={
                "name": "burst",
                "kind": "threshold",
                "eventTypes": ["burst"],
                "operator": "gte",
                "value": 20,
                "windowSeconds": 10,
                "evaluateEverySeconds": 1,
            },
        )
        assert rule.status_code == 201, rule.text

        async def burst() -> None:
            for _ in range(25):
                r = await api.post(
                    f"/api/v1/app/{app_id}/msg", json={"eventType": "burst", "payload": {}}
                )
                assert r.status_code == 202, r.text

        def count(kind: str) -> int:
            return len(alerts(receiver, verifier).get(kind, []))

        await burst()
        await receiver.wait_until(lambda: count(TRIGGERED) >= 1, timeout=30)
        await cluster.signal(workers[0], signal.SIGKILL)  # maybe holding the application
        await receiver.wait_until(lambda: count(RESOLVED) >= 1, timeout=60)
        await burst()  # a second crossing, evaluated by the survivor alone
        await receiver.wait_until(lambda: count(RESOLVED) >= 2, timeout=60)

        listed = await api.get(f"/api/v1/app/{app_id}/msg", params={"limit": 250})
        kinds = [m["eventType"] for m in listed.json()["data"]]
        assert kinds.count(TRIGGERED) == 2 and kinds.count(RESOLVED) == 2
        got = alerts(receiver, verifier)
        assert len(got[TRIGGERED]) == 2 and len(got[RESOLVED]) == 2
        state = (await api.get(f"/api/v1/app/{app_id}/alert-rule/{rule.json()['id']}")).json()
        assert state["timesFired"] == 2 and state["firing"] is False
