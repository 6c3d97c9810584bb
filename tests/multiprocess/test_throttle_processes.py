"""throttleRate enforced across processes (issue 20): two ``hookpost worker``s on one
PostgreSQL, and ``hookpost serve``'s worker child on SQLite, send to a throttled endpoint at
no more than its rate, lose nothing, and keep delivering to an unthrottled endpoint at once.

Arrival times are taken at a loopback receiver.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.support.cluster import Cluster
from tests.support.polling import eventually
from tests.support.processes import hookpost_env, spawn, stop

pytestmark = pytest.mark.slow

RATE = 5  # messages a second
MESSAGES = 40  # 7.8 s at 5/s: every full 5-second window lies inside the run
WINDOW_S = 5.0
# Arrival times carry the jitter of two busy workers and the receiver: the first request (a
# new connection) may arrive up to this much later after its slot than the last one. An
# unthrottled run spans well under a second.
JITTER_S = 0.2


class StampingReceiver:
    """Records when each (path, webhook-id) arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[tuple[float, str]]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> StampingReceiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        stamp = (time.monotonic(), request.headers.get("webhook-id", ""))
        self.arrivals.setdefault(request.path, []).append(stamp)
        return web.Response(text="ok")

    def unique(self, path: str) -> int:
        return len({msg for _, msg in self.arrivals.get(path, [])})


@pytest.fixture
async def receiver() -> AsyncIterator[StampingReceiver]:
    r = await StampingReceiver().start()
    yield r
    await r.stop()


async def throttled_run(
    api: httpx.AsyncClient, receiver: StampingReceiver, explain: Callable[[], str]
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

    # All at once (a burst), so that the endpoint has a backlog from its first delivery on.
    sent = list(await asyncio.gather(*(send(n) for n in range(MESSAGES))))
    started = time.monotonic()

    statuses: list[str] = []

    async def slow_done() -> int:
        statuses.append((await api.get(status_url)).json()["status"])
        return receiver.unique("/slow")

    async def fast_count() -> int:
        return receiver.unique("/fast")

    await eventually(fast_count, lambda n: n == MESSAGES, timeout=30)
    fast_done_after = time.monotonic() - started
    await eventually(slow_done, lambda n: n == MESSAGES, timeout=60)
    final = (await api.get(status_url)).json()

    slow_arrivals = sorted(receiver.arrivals["/slow"])
    times = [t for t, _ in slow_arrivals]
    assert sorted({m for _, m in slow_arrivals}) == sorted(sent), explain()  # none lost
    assert len(times) == MESSAGES, "a throttled delivery arrived twice"
    span = times[-1] - times[0]
    assert span >= (MESSAGES - 1) / RATE - JITTER_S, (span, explain())
    limit = RATE * WINDOW_S
    for i, start in enumerate(times):
        in_window = sum(start <= t < start + WINDOW_S for t in times[i:])
        assert in_window <= limit * 1.1, (start - times[0], in_window)
        # A window wholly inside the run, once every message was accepted (before, the
        # backlog was still being sent: the rate is the API's, not the throttle's).
        if start >= started and start + WINDOW_S <= times[-1]:
            assert in_window >= limit * 0.9, (start - times[0], in_window)
    # the throttled endpoint did not hold the other back
    assert fast_done_after < (MESSAGES - 1) / RATE / 2, fast_done_after
    assert final == {"status": "Ok", "throttledSince": None}
    return statuses


@pytest.mark.timeout(180)
async def test_two_workers_on_postgres_keep_a_throttled_endpoint_to_its_rate(
    fresh_postgres_url: str, make_cluster: Callable[..., Cluster], receiver: StampingReceiver
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
    tmp_path: Path, receiver: StampingReceiver
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
