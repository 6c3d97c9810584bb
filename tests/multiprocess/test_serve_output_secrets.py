"""``hookpost serve`` (a real process) never prints a configured admin token or a secret."""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
from pathlib import Path

import httpx
from standardwebhooks import Webhook

from tests.integration.test_secrets_at_rest import _no_hookpost_env as _no_hookpost_env
from tests.integration.test_secrets_at_rest import new_secret
from tests.support.polling import eventually
from tests.support.processes import hookpost_env, spawn, stop
from tests.support.receiver import Receiver, always


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_never_prints_the_admin_token_or_secrets(tmp_path: Path, receiver: Receiver):
    port = free_port()
    admin = "hpk_serve-" + secrets.token_urlsafe(24)
    secret = new_secret()
    env = hookpost_env(
        port=str(port),
        database_url=f"sqlite:///{tmp_path}/serve.db",
        admin_token=admin,
        allow_subnets="127.0.0.0/8",
        retry_schedule="0",
        poll_interval_s="0.05",
    )
    log = tmp_path / "serve.log"
    proc = spawn(["serve"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=5.0
        ) as http:

            async def healthy() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"hookpost exited {proc.returncode}:\n{log.read_text()}")
                try:
                    return (await http.get("/api/v1/health")).status_code < 300
                except httpx.TransportError:
                    return False

            await eventually(healthy, timeout=20.0)
            app = (await http.post("/api/v1/app", json={"name": "Served"})).json()
            for path in ("/served", "/served-failing"):
                created = await http.post(
                    f"/api/v1/app/{app['id']}/endpoint",
                    json={"url": receiver.url(path), "secret": secret},
                )
                assert created.status_code == 201, created.text
            receiver.respond("/served-failing", always(500))
            sent = await http.post(
                f"/api/v1/app/{app['id']}/msg", json={"eventType": "s.t", "payload": {"v": 1}}
            )
            assert sent.status_code in (200, 202), sent.text
            await receiver.wait_for(1, "/served")
            await receiver.wait_for(2, "/served-failing")  # first try + the one retry
            Webhook(secret).verify(
                receiver.on("/served")[0].body, receiver.on("/served")[0].headers
            )
            denied = await http.get("/api/v1/app", headers={"Authorization": "Bearer nope"})
            assert denied.status_code == 401
    finally:
        code = await asyncio.to_thread(stop, proc, signal.SIGTERM)
    out = log.read_text()
    assert code == 0, out
    assert "admin token: from HOOKPOST_ADMIN_TOKEN" in out  # control: the banner was printed
    assert admin not in out
    assert secret not in out and secret.removeprefix("whsec_") not in out
