"""The wheel, built from a fresh checkout and installed into a new venv away from the sources,
serves and delivers (issue 24): its migrations and every other data file are in it, and a
SQLite server needs none of the ``postgres`` extra.

Installed with the runtime lock as constraints (the same versions, and only what the wheel's
own dependencies need: no extra). The Dockerfile's health check runs against it too.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.multiprocess.test_cli import free_port, wait_healthy
from tests.support.checkout import checkout_copy, clean_env, tracked_files
from tests.support.processes import ROOT, stop
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TOKEN = "hpk_wheel-test-admin-token"


def uv() -> Path:
    found = Path(sys.executable).parent / "uv"  # make install puts it in the venv
    assert found.exists(), found
    return found


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command (in an environment without this venv or PYTHONPATH); its stdout."""
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def healthcheck_command() -> list[str]:
    """The Dockerfile's HEALTHCHECK command (exec form)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.M)
    assert found, "no HEALTHCHECK ... CMD [...] in the Dockerfile"
    return list(json.loads(found.group(1)))


def build_wheel(tmp_path: Path) -> Path:
    source = checkout_copy(tmp_path / "src")
    out = tmp_path / "dist"
    run(
        uv(), "build", "--wheel", "--python", sys.executable, "--out-dir", out, source, cwd=tmp_path
    )
    (wheel,) = (tmp_path / "dist").glob("hookpost-*.whl")
    return wheel


async def deliver_one(port: int) -> None:
    """Through the API: an application, an endpoint on a loopback receiver, a message; the
    request that arrives verifies with ``standardwebhooks``."""
    receiver = await Receiver().start()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
            created = await api.post("/api/v1/app", json={"name": "Wheel", "uid": "wheel"})
            assert created.status_code == 201, created.text
            endpoint = await api.post(
                "/api/v1/app/wheel/endpoint", json={"url": receiver.url("/hook"), "uid": "hook"}
            )
            assert endpoint.status_code == 201, endpoint.text
            secret = (await api.get("/api/v1/app/wheel/endpoint/hook/secret")).json()["key"]
            payload = {"id": "inv_1", "amount": 4200}
            sent = await api.post(
                "/api/v1/app/wheel/msg", json={"eventType": "invoice.paid", "payload": payload}
            )
            assert sent.status_code == 202, sent.text
        await receiver.wait_for(1, "/hook", timeout=30)
        (request,) = receiver.on("/hook")
        assert request.webhook_id == sent.json()["id"]
        assert Webhook(secret).verify(request.body, request.headers) == payload
    finally:
        await receiver.stop()


def test_the_wheel_installs_serves_and_delivers_without_the_source_tree(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    inside = set(zipfile.ZipFile(wheel).namelist())
    package_files = [f for f in tracked_files() if f.startswith("hookpost/")]
    missing = [f for f in package_files if f not in inside]
    assert not missing, f"tracked files of the package missing from the wheel: {missing}"
    assert any(f.startswith("hookpost/store/migrations/versions/") for f in inside)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python, hookpost = venv / "bin" / "python", venv / "bin" / "hookpost"
    constraints = ROOT / "requirements.lock"
    run(uv(), "pip", "install", "-q", "--python", python, wheel, "-c", constraints, cwd=tmp_path)
    workdir = tmp_path / "run"  # nothing of the sources here or on sys.path
    workdir.mkdir()
    where = run(python, "-c", "import hookpost; print(hookpost.__file__)", cwd=workdir)
    assert where.startswith(str(venv)), where
    absent = "import importlib.util as u; print(u.find_spec('asyncpg'), u.find_spec('pytest'))"
    assert run(python, "-c", absent, cwd=workdir).split() == ["None", "None"]

    # Without the postgres extra a PostgreSQL URL is one clear line, not a traceback.
    refused = subprocess.run(
        [hookpost, "migrate", "--db", "postgresql://hookpost@127.0.0.1:1/hookpost"],
        cwd=workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused
    assert "pip install 'hookpost[postgres]'" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr

    port = free_port()
    env = clean_env(
        HOOKPOST_PORT=str(port),
        HOOKPOST_DATABASE_URL=f"sqlite:///{workdir}/hookpost.db",
        HOOKPOST_ADMIN_TOKEN=TOKEN,
        HOOKPOST_ALLOW_SUBNETS="127.0.0.0/8",
        PYTHONUNBUFFERED="1",
    )
    health_env = {**env, "HOOKPOST_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/api/v1/health"}
    check = healthcheck_command()
    assert check[0] == "python"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [hookpost, "serve"], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_healthy(port, server, log, timeout=60)
        run(python, *check[1:], cwd=workdir, env=health_env)  # the Dockerfile's health check
        asyncio.run(deliver_one(port))
    finally:
        code = stop(server, signal.SIGTERM)
    assert code == 0, log.read_text()
    # The health check fails once the server is gone.
    down = subprocess.run([python, *check[1:]], env=health_env, capture_output=True, timeout=60)
    assert down.returncode != 0
