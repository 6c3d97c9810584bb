"""``hookpost serve --worker process``: the API in the parent, the worker in a supervised child.

Real processes, real HTTP: messages go in through the API, arrive signed at a loopback
receiver, the wake pipe makes delivery immediate, the child's metrics show in the parent's
``/metrics``, a killed child is restarted without losing a message, and the child never
outlives its parent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support.polling import eventually
from tests.support.processes import hookpost_env, spawn, stop
from tests.support.receiver import Receiver

pytestmark = pytest.mark.slow

TOKEN = "hpk_worker-process-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    api: httpx.AsyncClient
    log: Path

    def worker_pid(self) -> int:
        kids = children_of(self.proc.pid)
        assert len(kids) == 1, (kids, self.log.read_text())
        return kids[0]


async def serve(tmp_path: Path, mode: str = "process", **settings: str) -> Served:
    port = free_port()
    env = hookpost_env(
        port=str(port),
        database_url=f"sqlite:///{tmp_path}/h.db",
        admin_token=TOKEN,
        allow_subnets="127.0.0.0/8",
        serve_worker=mode,
        **settings,
    )
    log = tmp_path / "serve.log"
    proc = spawn(["serve"], env, log)
    api = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
    )

    async def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"hookpost exited {proc.returncode}:\n{log.read_text()}")
        try:
            return (await api.get("/api/v1/health")).is_success
        except httpx.TransportError:
            return False

    await eventually(healthy, timeout=30)
    return Served(proc, api, log)


async def app_with_endpoint(api: httpx.AsyncClient, url: str) -> tuple[str, str]:
    app = (await api.post("/api/v1/app", json={"name": "Acme"})).json()
    ep = (await api.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": url})).json()
    secret = (await api.get(f"/api/v1/app/{app['id']}/endpoint/{ep['id']}/secret")).json()
    return app["id"], secret["key"]


async def send(api: httpx.AsyncClient, app_id: str, n: int) -> str:
    r = await api.post(f"/api/v1/app/{app_id}/msg", json={"eventType": "a.b", "payload": {"n": n}})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def test_the_child_delivers_signed_at_once_and_reports_metrics(
    tmp_path: Path, receiver: Receiver
):
    # A 60 s poll interval: only the wake pipe can explain a delivery within seconds. The
    # metrics on a port of their own, behind a token: the child's are there too.
    metrics_port, metrics_token = free_port(), "metrics-token-" + "m" * 20
    served = await serve(
        tmp_path,
        poll_interval_s="60",
        metrics_port=str(metrics_port),
        metrics_token=metrics_token,
    )
    scraper = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{metrics_port}",
        headers={"Authorization": f"Bearer {metrics_token}"},
    )
    try:
        assert (await served.api.get("/metrics")).status_code == 404  # not on the API's port
        assert (await scraper.get("/metrics", headers={"Authorization": ""})).status_code == 401
        worker = served.worker_pid()
        app_id, secret = await app_with_endpoint(served.api, receiver.url("/hook"))
        started = time.monotonic()
        sent = [await send(served.api, app_id, i) for i in range(20)]
        await receiver.wait_for(20, timeout=10)
        assert time.monotonic() - started < 10
        assert sorted(r.webhook_id for r in receiver.requests) == sorted(sent)
        for r in receiver.requests:
            Webhook(secret).verify(r.body, dict(r.headers))

        async def succeeded() -> float:
            text = (await scraper.get("/metrics")).text
            for line in text.splitlines():
                if line.startswith('hookpost_deliveries_total{outcome="succeeded"}'):
                    return float(line.split()[-1])
            return 0.0

        # Counted in the child, scraped through the parent; the API's own counter too.
        await eventually(succeeded, lambda n: n == 20, timeout=10)
        metrics = (await scraper.get("/metrics")).text
        assert "hookpost_messages_accepted_total 20.0" in metrics
        assert "hookpost_attempt_duration_seconds_count 20.0" in metrics
        assert metrics.count("# TYPE hookpost_deliveries_total counter") == 1
        assert 'hookpost_attempts_total{status_class="2xx"} 20.0' in metrics
        sends = 'method="POST",route="/api/v1/app/{app_id}/msg",status="202"'
        assert f"hookpost_http_requests_total{{{sends}}} 20.0" in metrics
        # Both processes' CPU and GC: the child's under names of their own, so that no
        # family appears twice in the one scrape.
        for family in ("process_cpu_seconds_total", "python_gc_collections_total"):
            assert f"# TYPE {family} counter" in metrics
            assert f"# TYPE hookpost_worker_{family} counter" in metrics
        types = [line.split()[2] for line in metrics.splitlines() if line.startswith("# TYPE")]
        assert len(types) == len(set(types))
        assert served.worker_pid() == worker  # the same child all along
    finally:
        await scraper.aclose()
        await served.api.aclose()
        code = stop(served.proc)
    out = served.log.read_text()
    assert code == 0, out
    assert "API + worker (process" in out
    assert "hookpost stopped" in out
    assert not alive(worker), "the child outlived a clean stop"


async def test_a_killed_child_is_restarted_and_nothing_is_lost(tmp_path: Path, receiver: Receiver):
    receiver.gate = asyncio.Event()  # hold requests open so some are in flight at the kill
    served = await serve(
        tmp_path, lease_s="3", request_timeout_s="2", poll_interval_s="0.2", max_in_flight="10"
    )
    try:
        app_id, _ = await app_with_endpoint(served.api, receiver.url("/hook"))
        sent = [await send(served.api, app_id, i) for i in range(30)]
        await receiver.wait_for(10, timeout=15)
        first = served.worker_pid()
        os.kill(first, signal.SIGKILL)
        receiver.gate.set()
        receiver.gate = None
        sent += [await send(served.api, app_id, i) for i in range(30, 40)]  # while it is down

        async def restarted() -> list[int]:
            return [p for p in children_of(served.proc.pid) if p != first]

        await eventually(restarted, lambda kids: len(kids) == 1, timeout=15)
        await receiver.wait_until(
            lambda: {r.webhook_id for r in receiver.requests} >= set(sent), timeout=30
        )
        assert "restarting it" in served.log.read_text()
    finally:
        await served.api.aclose()
        assert stop(served.proc) == 0, served.log.read_text()


async def test_the_child_stops_when_the_parent_is_killed(tmp_path: Path):
    served = await serve(tmp_path)
    try:
        worker = served.worker_pid()
        os.kill(served.proc.pid, signal.SIGKILL)
        served.proc.wait(10)

        async def gone() -> bool:
            return not alive(worker)

        await eventually(gone, timeout=20)  # end of file on the wake pipe, then a clean stop
    finally:
        await served.api.aclose()
        stop(served.proc)


async def test_inline_mode_keeps_one_process(tmp_path: Path, receiver: Receiver):
    served = await serve(tmp_path, mode="inline")
    try:
        assert children_of(served.proc.pid) == []
        app_id, _ = await app_with_endpoint(served.api, receiver.url("/hook"))
        sent = await send(served.api, app_id, 1)
        await receiver.wait_for(1, timeout=10)
        assert receiver.requests[0].webhook_id == sent
        assert "API + worker (process" not in served.log.read_text()
    finally:
        await served.api.aclose()
        assert stop(served.proc) == 0, served.log.read_text()


def test_bad_worker_mode_is_a_clear_error(tmp_path: Path):
    env = hookpost_env(database_url=f"sqlite:///{tmp_path}/h.db", serve_worker="threads")
    result = subprocess.run(
        [sys.executable, "-m", "hookpost.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "HOOKPOST_SERVE_WORKER='threads'" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_child_runs_background_tasks_woken_through_the_pipe(
    tmp_path: Path, receiver: Receiver
):
    # A 60 s poll interval: only the wake pipe can explain a task finished within seconds.
    served = await serve(tmp_path, poll_interval_s="60")
    try:
        app = (await served.api.post("/api/v1/app", json={"name": "Acme"})).json()
        sent = [await send(served.api, app["id"], i) for i in range(3)]  # before any endpoint
        base = f"/api/v1/app/{app['id']}/endpoint"
        ep = (await served.api.post(base, json={"url": receiver.url("/late")})).json()
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        r = await served.api.post(f"{base}/{ep['id']}/replay-missing", json={"since": since})
        assert r.status_code == 202, r.text

        async def task() -> dict[str, Any]:
            return dict((await served.api.get(f"/api/v1/background-task/{r.json()['id']}")).json())

        done = await eventually(task, lambda t: t["status"] != "running", timeout=10)
        assert done["status"] == "finished" and done["data"] == {"messagesSent": 3}
        await receiver.wait_for(3, "/late", timeout=10)
        assert sorted(x.webhook_id for x in receiver.on("/late")) == sorted(sent)
    finally:
        await served.api.aclose()
        assert stop(served.proc) == 0, served.log.read_text()
