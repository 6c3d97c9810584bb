"""throttleRate enforced across processes (issue 20): two ``hookpost worker``s on one
PostgreSQL, and ``hookpost serve``'s worker child on SQLite, send to a throttled endpoint at
no more than its rate, lose nothing, and keep delivering to an unthrottled endpoint at once.

Arrival times are taken at a loopback receiver.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import Cluster
from tests.support.polling import eventually
from tests.support.processes import hookpost_env, spawn, stop
from tests.support.receiver import Receiver

pytestmark = pytest.mark.slow

RATE = 5  # messages a second
MESSAGES = 40  # 7.8 s at 5/s: every full 5-second window lies inside the run
WINDOW_S = 5.0
# Arrival times carry the jitter of two busy workers and the receiver: the first request (a
# new connection) may arrive up to this much later after its slot than the last one. An
# unthrottled run spans well under a second.
JITTER_S = 0.2
# A gap this long between two arrivals means a claim came more than a window late.
LATE_GAP_S = 2 / RATE + 0.05


async def throttled_run(
    api: httpx.AsyncClient, receiver: Receiver, explain: Callable[[], str]
) -> list[str]:
    """Send MESSAGES to a throttled and an unthrottled endpoint; check what arrives when.
    Returns the rate-limit statuses read while the throttled backlog drained."""
    app = (await api.post("/api/v1/app", json={"name": "Paced"})).json()["id"]
    slow = await api.post(
        f"/api/v1/app/{app}/endpoint",
        json={"url": receiver.url("/slow"), "throttleRate": RATE},
    )
    assert slow.status_code == 201, slow.text
    assert slow.json()["throttleRate"] == RATE
    fast = await api.post(f"/api/v1/app/{app}/endpoint", json={"url": receiver.url("/fast")})
    assert fast.status_code == 201, fast.text
    status_url = f"/api/v1/app/{app}/endpoint/{slow.json()['id']}/rate-limit-status"

    async def send(n: int) -> str:
        r = await api.post(f"/api/v1/app/{app}/msg", json={"eventType": "a.b", "payload": {"n": n}})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def unique(path: str) -> int:
        return len({r.webhook_id for r in receiver.on(path)})

    # All at once (a burst), so that the endpoint has a backlog from its first delivery on.
    sent = list(await asyncio.gather(*(send(n) for n in range(MESSAGES))))
    started = time.time()
    statuses: list[str] = []

    async def slow_done() -> int:
        statuses.append((await api.get(status_url)).json()["status"])
        return unique("/slow")

    async def fast_count() -> int:
        return unique("/fast")

    await eventually(fast_count, lambda n: n == MESSAGES, timeout=30)
    fast_done_after = time.time() - started
    await eventually(slow_done, lambda n: n == MESSAGES, timeout=60)
    final = (await api.get(status_url)).json()

    slow_arrivals = receiver.on("/slow")
    times = sorted(r.at for r in slow_arrivals)
    assert sorted({r.webhook_id for r in slow_arrivals}) == sorted(sent), explain()  # none lost
    assert len(times) == MESSAGES, "a throttled delivery arrived twice"
    span = times[-1] - times[0]
    assert span >= (MESSAGES - 1) / RATE - JITTER_S, (span, explain())
    limit = RATE * WINDOW_S
    previous = {b: a for a, b in itertools.pairwise(times)}

    def late(t: float) -> bool:
        return t - previous[t] > LATE_GAP_S

    for i, start in enumerate(times):
        in_window = sum(start <= t < start + WINDOW_S for t in times[i:])
        assert in_window <= limit * 1.1, (start - times[0], in_window)
        # The lower bound holds for a window wholly inside the run, once every message was
        # accepted (before, the rate is the API's), unless a worker claimed more than a window
        # late in it: by design a late claim saves up no burst (domain.throttle), and on a
        # starved machine (CI) that lost slot is the machine's, not the pace's.
        inside = start >= started and start + WINDOW_S <= times[-1]
        if inside and not any(late(t) for t in times[i + 1 :] if t < start + WINDOW_S):
            gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
            assert in_window >= limit * 0.9, (start - times[0], in_window, gaps, explain())
    # the throttled endpoint did not hold the other back
    assert fast_done_after < (MESSAGES - 1) / RATE / 2, fast_done_after
    assert final == {"status": "Ok", "throttledSince": None}
    return statuses


@pytest.mark.timeout(180)
async def test_two_workers_on_postgres_keep_a_throttled_endpoint_to_its_rate(
    fresh_postgres_url: str, make_cluster: Callable[..., Cluster], receiver: Receiver
) -> None:
    cluster = make_cluster(fresh_postgres_url, poll_interval_s="1")
    cluster.migrate()
    apis, _ = await cluster.start(apis=1, workers=2)
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{apis[0].port}", headers=headers, timeout=10
    ) as api:
        statuses = await throttled_run(api, receiver, cluster.logs)
    assert "RateLimited" in statuses  # seen while the backlog waited for its slots


@pytest.mark.timeout(180)
async def test_serves_worker_child_on_sqlite_keeps_a_throttled_endpoint_to_its_rate(
    tmp_path: Path, receiver: Receiver
) -> None:
    port = _free_port()
    token = "hpk_throttle-test"
    log = tmp_path / "serve.log"
    env = hookpost_env(
        port=str(port),
        database_url=f"sqlite:///{tmp_path}/h.db",
        admin_token=token,
        allow_subnets="127.0.0.0/8",
        serve_worker="process",
        api_rate_limit="0",
    )
    proc = spawn(["serve"], env, log)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as api:

            async def healthy() -> bool:
                assert proc.poll() is None, log.read_text()
                try:
                    return (await api.get("/api/v1/health")).is_success
                except httpx.TransportError:
                    return False

            await eventually(healthy, timeout=30)
            await throttled_run(api, receiver, log.read_text)
    finally:
        stop(proc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
