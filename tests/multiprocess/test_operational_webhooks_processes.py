"""Operational events made by a worker in another process than the API's: ``hookpost serve``'s
worker child (SQLite) and a ``hookpost worker`` beside a ``hookpost api`` (PostgreSQL). The
worker writes them with the results, and delivers them; a receiver on 127.0.0.1 verifies them
with the svix library."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from svix.webhooks import Webhook

from tests.multiprocess.test_serve_worker_process import serve
from tests.support.cluster import Cluster
from tests.support.processes import stop
from tests.support.receiver import Receiver, always

pytestmark = pytest.mark.slow


async def gone_endpoint_is_reported(api: httpx.AsyncClient, receiver: Receiver) -> None:
    """An endpoint answering 410 is disabled and its delivery exhausted, by the worker: both
    events reach the operational endpoint, signed."""
    ops = await api.post(
        "/api/v1/operational-webhook/endpoint",
        json={
            "url": receiver.url("/ops"),
            "eventTypes": ["message.attempt.exhausted", "endpoint.disabled"],
        },
    )
    assert ops.status_code == 201, ops.text
    secret = await api.get(f"/api/v1/operational-webhook/endpoint/{ops.json()['id']}/secret")
    receiver.respond("/gone", always(410))
    app = (await api.post("/api/v1/app", json={"name": "Acme"})).json()
    ep = await api.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": receiver.url("/gone")})
    msg = await api.post(f"/api/v1/app/{app['id']}/msg", json={"eventType": "a.b", "payload": {}})
    assert msg.status_code == 202, msg.text

    await receiver.wait_for(2, "/ops", timeout=30)
    verifier = Webhook(secret.json()["key"])
    events = {}
    for r in receiver.on("/ops"):
        verifier.verify(r.body, r.headers)
        event = orjson.loads(r.body)
        events[event["type"]] = event["data"]
    assert sorted(events) == ["endpoint.disabled", "message.attempt.exhausted"]
    assert events["endpoint.disabled"]["endpointId"] == ep.json()["id"]
    assert events["endpoint.disabled"]["trigger"] == "automatic"
    exhausted = events["message.attempt.exhausted"]
    assert exhausted["msgId"] == msg.json()["id"]
    assert exhausted["lastAttempt"]["responseStatusCode"] == 410


@pytest.mark.timeout(120)
async def test_in_serves_worker_child(tmp_path: Path, receiver: Receiver) -> None:
    served = await serve(tmp_path, poll_interval_s="0.2")
    try:
        served.worker_pid()  # the worker is the child: the API process delivers nothing
        await gone_endpoint_is_reported(served.api, receiver)
    finally:
        await served.api.aclose()
        stop(served.proc)


@pytest.mark.postgres
@pytest.mark.timeout(180)
async def test_in_a_postgres_worker_process(
    fresh_postgres_url: str, make_cluster: Callable[..., Cluster], receiver: Receiver
) -> None:
    cluster = make_cluster(fresh_postgres_url, retry_schedule="0")
    (api_proc,), _ = await cluster.start(apis=1, workers=1)
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{api_proc.port}", headers=headers, timeout=10
    ) as api:
        await gone_endpoint_is_reported(api, receiver)
