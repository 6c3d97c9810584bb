"""``hookpost token create | list | revoke`` and HOOKPOST_ADMIN_TOKEN, through the real command
(subprocesses, as operators run it)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hookpost.api.auth import CACHE_TTL_S
from tests.multiprocess.test_cli import free_port, run_cli, wait_healthy
from tests.support.processes import hookpost_env, spawn, stop

pytestmark = pytest.mark.slow

OLD = "hpk_the-first-admin-token-value-0001"
NEW = "hpk_the-second-admin-token-value-002"


def status(port: int, token: str, path: str = "/api/v1/app") -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def serve(tmp_path: Path, port: int, admin_token: str, log: Path) -> subprocess.Popen[bytes]:
    env = hookpost_env(
        port=str(port), database_url=f"sqlite:///{tmp_path}/h.db", admin_token=admin_token
    )
    proc = spawn(["serve", "--worker", "inline"], env, log)
    try:
        wait_healthy(port, proc, log, timeout=20)
    except BaseException:
        stop(proc)  # else it outlives the test
        raise
    return proc


def rows(listing: str) -> list[list[str]]:
    lines = listing.strip().splitlines()
    assert lines[0].split("\t") == ["id", "name", "app", "created", "expires", "hint"]
    return [line.split("\t") for line in lines[1:]]


def test_token_create_list_and_revoke(tmp_path: Path):
    env = hookpost_env(database_url=f"sqlite:///{tmp_path}/h.db")
    created = run_cli("token", "create", "--name", "ci", "--expires", "12h", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    forever = run_cli("token", "create", "--name", "ops", env=env, cwd=tmp_path)
    assert forever.returncode == 0, forever.stderr
    forever_token = forever.stdout.strip()

    listing = run_cli("token", "list", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert token not in listing.stdout and forever.stdout.strip() not in listing.stdout
    by_name = {row[1]: row for row in rows(listing.stdout)}
    assert set(by_name) == {"ci", "ops"}
    assert by_name["ci"][2] == "(admin)" and by_name["ci"][4] != "-"
    assert by_name["ops"][4] == "-"
    # The last four characters tell the tokens apart; nothing more of them is shown.
    assert (
        by_name["ci"][5] == "..." + token[-4:] and by_name["ops"][5] == "..." + forever_token[-4:]
    )

    revoked = run_cli("token", "revoke", by_name["ci"][0], env=env, cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert by_name["ci"][0] in revoked.stdout
    again = run_cli("token", "revoke", by_name["ci"][0], env=env, cwd=tmp_path)
    assert again.returncode == 1 and "no such token" in again.stderr
    # By the token itself (what a leak report gives you).
    by_value = run_cli("token", "revoke", forever.stdout.strip(), env=env, cwd=tmp_path)
    assert by_value.returncode == 0, by_value.stderr
    assert rows(run_cli("token", "list", env=env, cwd=tmp_path).stdout) == []


def test_token_create_refuses_bad_input(tmp_path: Path):
    env = hookpost_env(database_url=f"sqlite:///{tmp_path}/h.db")
    for expires in ("soon", "2001-01-01T00:00:00Z", "0"):
        result = run_cli("token", "create", "--expires", expires, env=env, cwd=tmp_path)
        assert result.returncode == 2, (expires, result.stderr)
        assert "--expires" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("token", "create", "--app", "no-such-app", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "application not found" in result.stderr
    result = run_cli("token", "create", "--name", "HOOKPOST_ADMIN_TOKEN", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "reserved" in result.stderr


def test_a_new_admin_token_value_revokes_the_old_one(tmp_path: Path):
    port = free_port()
    log = tmp_path / "serve.log"
    first = serve(tmp_path, port, OLD, log)
    try:
        assert status(port, OLD) == 200
    finally:
        stop(first)
    second = serve(tmp_path, port, NEW, log)
    try:
        assert status(port, NEW) == 200
        assert status(port, OLD) == 401
    finally:
        stop(second)
    out = log.read_text()
    assert "the previous value's token is revoked" in out
    assert OLD not in out and NEW not in out


def test_revoking_from_the_cli_reaches_a_running_server(tmp_path: Path):
    port = free_port()
    env = hookpost_env(database_url=f"sqlite:///{tmp_path}/h.db")
    proc = serve(tmp_path, port, OLD, tmp_path / "serve.log")
    try:
        token = run_cli("token", "create", "--name", "leaked", env=env, cwd=tmp_path)
        assert token.returncode == 0, token.stderr
        leaked = token.stdout.strip()
        assert status(port, leaked) == 200  # now cached by the server
        listed = run_cli("token", "list", env=env, cwd=tmp_path).stdout
        (row,) = [r for r in rows(listed) if r[1] == "leaked"]
        assert run_cli("token", "revoke", row[0], env=env, cwd=tmp_path).returncode == 0
        revoked_at = time.monotonic()
        deadline = revoked_at + CACHE_TTL_S + 5
        while status(port, leaked) != 401:
            assert time.monotonic() < deadline, "the server still accepts a revoked token"
            time.sleep(0.1)
        assert time.monotonic() - revoked_at <= CACHE_TTL_S + 2
        # The API's own listing agrees.
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            headers={"Authorization": f"Bearer {OLD}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            names = [t["name"] for t in json.load(response)["data"]]
        assert names == ["HOOKPOST_ADMIN_TOKEN"]
    finally:
        stop(proc)


def test_production_refuses_a_short_admin_token(tmp_path: Path):
    key = run_cli("keygen", env=hookpost_env(), cwd=tmp_path).stdout.strip()
    env = hookpost_env(
        database_url=f"sqlite:///{tmp_path}/h.db",
        production="1",
        main_key=key,
        admin_token="hpk_short-but-not-32",
    )
    result = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "HOOKPOST_ADMIN_TOKEN" in result.stderr and "32" in result.stderr
    assert "hpk_short-but-not-32" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
