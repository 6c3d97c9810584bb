"""Logs of real ``hookpost`` processes at DEBUG in JSON: every line parses, none holds a secret,
each failed attempt has its line (from whichever process delivers), and the access log names
routes, never query strings or headers.

SQLite runs ``serve --worker process`` (the worker is serve's child); PostgreSQL runs the
scale-out roles, ``hookpost api`` and ``hookpost worker``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookpost.store.secretbox import generate_main_key
from tests.integration.test_secrets_at_rest import _no_hookpost_env as _no_hookpost_env
from tests.integration.test_secrets_at_rest import new_secret
from tests.multiprocess.test_cli import run_cli
from tests.multiprocess.test_serve_output_secrets import free_port
from tests.support.polling import eventually
from tests.support.processes import ROOT, hookpost_env, stop
from tests.support.receiver import Receiver, always

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@contextmanager
def processes(
    roles: list[list[str]], env: dict[str, str], tmp_path: Path
) -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    """``hookpost <role>`` for each role, stderr (the logs) apart from stdout (the banner)."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for n, args in enumerate(roles):
            err = tmp_path / f"stderr-{n}.log"
            with open(tmp_path / f"stdout-{n}.log", "ab") as out, open(err, "ab") as errors:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "hookpost.cli", *args],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=errors,
                    start_new_session=True,
                )
            started.append((proc, err))
        yield started
    finally:
        for proc, _ in started:
            stop(proc)


def read_all(directory: Path, stream: str) -> str:
    return "".join(p.read_text() for p in sorted(directory.glob(f"{stream}-*.log")))


def parsed(lines: str) -> list[dict[str, Any]]:
    out = []
    for line in lines.splitlines():
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "msg", "pid"} <= record.keys(), line
        out.append(record)
    return out


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_json_logs_parse_hold_no_secret_and_report_failed_attempts(
    backend: str, tmp_path: Path, receiver: Receiver, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    admin = "hpk_admin-" + secrets.token_urlsafe(24)
    odd_admin = "admin-token-of-any-shape-" + secrets.token_hex(8)  # set below, replaces admin
    main_key = generate_main_key()
    metrics_token = "metrics-" + secrets.token_hex(16)
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/logs.db"
        roles = [["serve", "--worker", "process"]]
    else:
        url = str(request.getfixturevalue("fresh_postgres_url"))
        roles = [["api"], ["worker"]]
    settings = {
        "port": str(port),
        "database_url": url,
        "main_key": main_key,
        "metrics_token": metrics_token,
        "allow_subnets": "127.0.0.0/8",
        "retry_schedule": "0",
        "poll_interval_s": "0.05",
        "log_level": "DEBUG",
        "log_format": "json",
        "access_log": "1",
    }
    secret = new_secret()
    shown: list[str] = []  # every token value the flows get to see
    receiver.respond("/failing", always(500))
    base = f"http://127.0.0.1:{port}"
    with processes(roles, hookpost_env(admin_token=admin, **settings), tmp_path) as procs:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=10.0
        ) as http:

            async def healthy() -> bool:
                for proc, err in procs:
                    if proc.poll() is not None:
                        raise AssertionError(f"exited {proc.returncode}:\n{err.read_text()}")
                try:
                    return (await http.get("/api/v1/health")).status_code < 300
                except httpx.TransportError:
                    return False

            await eventually(healthy, timeout=30.0)
            app = (await http.post("/api/v1/app", json={"name": "Logged", "uid": "logged"})).json()
            endpoints = {}
            for path in ("/ok", "/failing"):
                created = await http.post(
                    f"/api/v1/app/{app['id']}/endpoint",
                    json={"url": receiver.url(path), "secret": secret},
                )
                assert created.status_code == 201, created.text
                endpoints[path] = created.json()["id"]
            got = await http.get(f"/api/v1/app/{app['id']}/endpoint/{endpoints['/ok']}/secret")
            assert got.json()["key"] == secret
            sent = await http.post(
                f"/api/v1/app/{app['id']}/msg", json={"eventType": "l.t", "payload": {"v": 1}}
            )
            assert sent.status_code == 202, sent.text
            msg_id = sent.json()["id"]
            made = await http.post("/api/v1/auth/token", json={"name": "ci", "expiry": 3600})
            assert made.status_code == 201, made.text
            shown.append(made.json()["token"])
            portal = await http.post(f"/api/v1/auth/app-portal-access/{app['id']}", json={})
            assert portal.status_code == 200, portal.text
            shown.append(portal.json()["token"])
            as_portal = {"Authorization": f"Bearer {shown[-1]}"}
            listed = await http.get(f"/api/v1/app/{app['id']}/endpoint", headers=as_portal)
            assert listed.status_code == 200, listed.text
            # A token where none belongs: in the query string, and a wrong bearer.
            r = await http.get(f"/api/v1/app/{app['id']}/msg", params={"token": shown[0]})
            assert r.status_code == 200, r.text
            bogus = "hpk_bogus-" + secrets.token_urlsafe(24)
            r = await http.get("/api/v1/app", headers={"Authorization": f"Bearer {bogus}"})
            assert r.status_code == 401
            scrape = await http.get(
                "/metrics", headers={"Authorization": f"Bearer {metrics_token}"}
            )
            assert scrape.status_code == 200
            await receiver.wait_for(1, "/ok")
            await receiver.wait_for(2, "/failing")  # the first try and its one retry

            async def exhausted() -> bool:  # the second failure's line is written
                return any("exhausted" in err.read_text() for _, err in procs)

            await eventually(exhausted, timeout=20.0)
        results = [await asyncio.to_thread(stop, proc) for proc, _ in procs]
    assert results == [0] * len(procs)

    # A restart with another admin token value: the old one is refused (and never printed).
    with processes(roles[:1], hookpost_env(admin_token=odd_admin, **settings), tmp_path) as again:
        async with httpx.AsyncClient(base_url=base, timeout=10.0) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/api/v1/health")).status_code < 300
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=30.0)
            bearer = {"Authorization": f"Bearer {odd_admin}"}
            assert (await http.get("/api/v1/app", headers=bearer)).status_code == 200
            old = {"Authorization": f"Bearer {admin}"}
            assert (await http.get("/api/v1/app", headers=old)).status_code == 401
        assert await asyncio.to_thread(stop, again[0][0]) == 0

    logs, banners = read_all(tmp_path, "stderr"), read_all(tmp_path, "stdout")
    records = parsed(logs)
    everything = logs + banners
    forbidden = [admin, odd_admin, main_key, metrics_token, secret, bogus, *shown]
    forbidden.append(secret.removeprefix("whsec_"))
    for value in forbidden:
        assert value not in everything, value[:12]
    # Nothing needed the redactor: the code logs no secret in the first place.
    assert "[redacted]" not in logs
    assert "token create" in banners  # how to get a lost token back

    failed = [r for r in records if r["logger"] == "hookpost.worker" and "failed" in r["msg"]]
    assert [r["attempt"] for r in failed] == [1, 2], failed
    assert all(r["level"] == "WARNING" for r in failed)
    assert all(r["status_code"] == 500 and "HTTP 500" in r["msg"] for r in failed)
    assert {(r["app_id"], r["endpoint_id"], r["message_id"]) for r in failed} == {
        (app["id"], endpoints["/failing"], msg_id)
    }
    assert all(r["attempt_id"].startswith("atmpt_") for r in failed)
    assert "next retry at" in failed[0]["msg"] and failed[0]["next_attempt_at"] > 0
    assert failed[1]["msg"].endswith("exhausted") and "next_attempt_at" not in failed[1]
    api_pids = {r["pid"] for r in records if r["logger"] == "hookpost.access"}
    assert failed[0]["pid"] not in api_pids  # the worker's process, not the API's

    access = [r for r in records if r["logger"] == "hookpost.access"]
    routes = {(r["method"], r["route"], r["status"]) for r in access}
    assert ("POST", "/api/v1/app/{app_id}/msg", 202) in routes
    assert ("GET", "/api/v1/app/{app_id}/endpoint", 200) in routes
    assert ("GET", "/api/v1/app", 401) in routes
    assert all("?" not in r["msg"] and "?" not in r["path"] for r in access)
    assert all(isinstance(r["duration_ms"], float) for r in access)


def test_a_bad_log_setting_is_a_clear_config_error(tmp_path: Path) -> None:
    env = hookpost_env(database_url=f"sqlite:///{tmp_path}/h.db", log_format="xml")
    result = run_cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "HOOKPOST_LOG_FORMAT='xml': expected one of text, json" in result.stderr
    assert "Traceback" not in result.stderr
