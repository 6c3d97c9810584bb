"""The real ``hookpost`` command, run as subprocesses (as users and operators run it)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import hookpost_env, spawn, stop

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> float:
    """Poll /api/v1/health until it answers 2xx; returns seconds taken."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"hookpost exited {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1) as r:
                if 200 <= r.status < 300:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"no healthy answer within {timeout}s:\n{log.read_text()}")


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookpost.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_answers_health_and_stops_cleanly_on_sigterm(tmp_path: Path):
    port = free_port()
    env = hookpost_env(port=str(port), database_url=f"sqlite:///{tmp_path}/h.db")
    log = tmp_path / "serve.log"
    proc = spawn(["serve"], env, log)
    try:
        # About 2 s on a quiet machine; 10-13 s under the suite's four workers on two cores.
        took = wait_healthy(port, proc, log, timeout=30)
        assert took < 20
    finally:
        code = stop(proc, signal.SIGTERM)
    out = log.read_text()
    assert code == 0, out
    assert f"http://127.0.0.1:{port}/api/v1" in out
    assert "admin token (shown once" in out  # a fresh database gets a generated token
    assert "hookpost stopped" in out


def test_known_admin_token_is_not_printed(tmp_path: Path):
    port = free_port()
    env = hookpost_env(
        port=str(port), database_url=f"sqlite:///{tmp_path}/h.db", admin_token="hpk_known-123"
    )
    log = tmp_path / "serve.log"
    proc = spawn(["serve"], env, log)
    try:
        wait_healthy(port, proc, log, timeout=20)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/app",
            headers={"Authorization": "Bearer hpk_known-123"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
    finally:
        stop(proc)
    out = log.read_text()
    assert "hpk_known-123" not in out
    assert "from HOOKPOST_ADMIN_TOKEN" in out


def test_bad_database_url_is_a_clear_error(tmp_path: Path):
    result = run_cli("serve", "--db", "mysql://nope", env=hookpost_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "unsupported database URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "serve",
            "--port",
            str(port),
            "--db",
            f"sqlite:///{tmp_path}/h.db",
            env=hookpost_env(),
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_token_and_keygen(tmp_path: Path):
    env = hookpost_env(database_url=f"sqlite:///{tmp_path}/h.db")
    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    token = run_cli("token", "create", "--name", "ci", env=env, cwd=tmp_path)
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("hpk_")
    key = run_cli("keygen", env=env, cwd=tmp_path)
    assert key.returncode == 0 and len(key.stdout.strip()) == 44


def test_bad_setting_is_a_clear_error(tmp_path: Path):
    env = hookpost_env(database_url=f"sqlite:///{tmp_path}/h.db", retry_schedule="1,soon")
    result = run_cli("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "HOOKPOST_RETRY_SCHEDULE" in result.stderr and "'soon'" in result.stderr


def test_a_lease_shorter_than_a_request_is_refused(tmp_path: Path):
    env = hookpost_env(
        database_url=f"sqlite:///{tmp_path}/h.db", lease_s="20", request_timeout_s="15"
    )
    for command in ("serve", "worker"):
        result = run_cli(command, env=env, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "HOOKPOST_LEASE_S=20" in result.stderr, result.stderr
        assert "HOOKPOST_REQUEST_TIMEOUT_S=15" in result.stderr, result.stderr
        assert "at least 22.5" in result.stderr and "Traceback" not in result.stderr
