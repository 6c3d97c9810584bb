"""``hookpost listen`` end to end: a real ``hookpost serve`` (the worker in its child process,
the SSRF guard on with no allow list), a real ``hookpost listen`` forwarding to a loopback
receiver. Deliveries arrive signed (``standardwebhooks`` verifies them), the local answer is
the attempt's result (a local 500 is a failed attempt, then retried), and a listener killed
and restarted loses nothing: meanwhile the relay answers 503 and the deliveries wait.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support.cluster import free_port
from tests.support.polling import eventually
from tests.support.processes import hookpost_env, spawn, stop
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOKEN = "hpk_listen-test-" + "t" * 24
FAIL, SUCCESS = 2, 0  # attempt statuses (MessageStatus)


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    api: httpx.AsyncClient
    url: str
    log: Path


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    env = hookpost_env(
        database_url=f"sqlite:///{tmp_path}/h.db",
        admin_token=TOKEN,
        poll_interval_s="0.2",
        serve_worker="process",  # the worker reaches the relay over HTTP, as in production
    )
    log = tmp_path / "serve.log"
    # The port as a flag: serve's worker child must still find the relay (HOOKPOST_RELAY_URL).
    proc = spawn(["serve", "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    api = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})

    async def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"hookpost exited {proc.returncode}:\n{log.read_text()}")
        try:
            return (await api.get("/api/v1/health")).is_success
        except httpx.TransportError:
            return False

    await eventually(healthy, timeout=30)
    try:
        yield Served(proc, api, url, log)
    finally:
        await api.aclose()
        stop(proc)


class Listener:
    def __init__(self, served: Served, tmp_path: Path, app: str, forward: str, n: int) -> None:
        self.log = tmp_path / f"listen{n}.log"
        env = hookpost_env(url=served.url, token=TOKEN)
        self.proc = spawn(["listen", "--app", app, "--forward", forward], env, self.log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self) -> None:
        async def listening() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"listen exited {self.proc.returncode}:\n{self.text()}")
            return "listening:" in self.text()

        await eventually(listening, timeout=20)


async def send(api: httpx.AsyncClient, app: str, n: int) -> str:
    r = await api.post(f"/api/v1/app/{app}/msg", json={"eventType": "a.b", "payload": {"n": n}})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def attempts(api: httpx.AsyncClient, app: str, msg: str) -> list[dict[str, Any]]:
    r = await api.get(f"/api/v1/app/{app}/attempt/msg/{msg}")
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["data"]))  # oldest first


async def test_listen_forwards_signed_reports_results_and_loses_nothing(
    served: Served, receiver: Receiver, tmp_path: Path
) -> None:
    api = served.api
    app = (await api.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})).json()["id"]
    # The relay opened nothing to tenants: an endpoint on loopback is still refused.
    direct = await api.post(f"/api/v1/app/{app}/endpoint", json={"url": receiver.url("/x")})
    assert direct.status_code == 422, direct.text

    listeners = [Listener(served, tmp_path, "acme", receiver.url("/hooks"), 1)]
    try:
        await listeners[0].ready()
        endpoint = (await api.get(f"/api/v1/app/{app}/endpoint/hookpost-listen")).json()
        assert endpoint["url"].startswith(f"{served.url}/api/v1/relay/"), endpoint
        secret = (await api.get(f"/api/v1/app/{app}/endpoint/{endpoint['id']}/secret")).json()[
            "key"
        ]
        assert f"signing secret: {secret}" in listeners[0].text()

        # Forwarded, signed, one line each, and recorded as the attempts' results.
        sent = [await send(api, app, n) for n in range(3)]
        await receiver.wait_for(3, "/hooks", timeout=20)
        assert sorted(r.webhook_id for r in receiver.on("/hooks")) == sorted(sent)
        for r in receiver.on("/hooks"):
            Webhook(secret).verify(r.body, r.headers)
        for msg in sent:
            found = await eventually(lambda m=msg: attempts(api, app, m))
            assert [(a["status"], a["responseStatusCode"]) for a in found] == [(SUCCESS, 200)]
            assert f"  {msg}  200  (" in listeners[0].text()

        # A local 500 is a failed attempt with the local answer, then retried to success.
        receiver.respond("/hooks", lambda n: (500, "local boom", {}) if n == 4 else (200, "ok", {}))
        failing = await send(api, app, 3)
        found = await eventually(
            lambda: attempts(api, app, failing), lambda a: len(a) >= 2, timeout=30
        )
        assert [(a["status"], a["responseStatusCode"]) for a in found[:2]] == [
            (FAIL, 500),
            (SUCCESS, 200),
        ]
        assert found[0]["response"] == "local boom"
        sent.append(failing)

        # The listener dies: the relay answers 503 and the deliveries wait in the queue.
        os.kill(listeners[0].proc.pid, signal.SIGKILL)
        listeners[0].proc.wait(10)
        away = [await send(api, app, n) for n in range(4, 7)]
        for msg in away:
            refused = await eventually(lambda m=msg: attempts(api, app, m), timeout=20)
            assert (refused[0]["status"], refused[0]["responseStatusCode"]) == (FAIL, 503)
        assert not any(r.webhook_id in away for r in receiver.requests)

        # Restarted, it reuses the relay endpoint and gets every one of them.
        listeners.append(Listener(served, tmp_path, "acme", receiver.url("/hooks"), 2))
        await listeners[1].ready()
        assert "reusing relay endpoint" in listeners[1].text()
        await receiver.wait_until(
            lambda: {r.webhook_id for r in receiver.requests} >= {*sent, *away}, timeout=60
        )
        for r in receiver.on("/hooks"):
            Webhook(secret).verify(r.body, r.headers)
        for msg in away:
            found = await eventually(
                lambda m=msg: attempts(api, app, m), lambda a: a[-1]["status"] == SUCCESS
            )
            assert found[-1]["responseStatusCode"] == 200
    finally:
        for listener in listeners:
            stop(listener.proc)
    assert "hookpost listen stopped" in listeners[-1].text()
