"""The real ``hookpost`` command as a process: bare ``hookpost``, a database that cannot be
opened (one line, for every command that opens one), and ``tail`` following a ``serve``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from queue import Queue

import pytest

from hookpost.store.secretbox import generate_main_key
from tests.conftest import with_database
from tests.multiprocess.test_cli import free_port, run_cli, wait_healthy
from tests.support.processes import ROOT, hookpost_env, spawn, stop

pytestmark = pytest.mark.slow

OPENS_THE_DATABASE = [
    ["serve"],
    ["api"],
    ["worker"],
    ["migrate"],
    ["token", "create"],
    ["token", "list"],
    ["cleanup"],
]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def post(port: int, token: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def read_lines(proc: subprocess.Popen[str]) -> Queue[str]:
    """The process's output lines as they come (``get(timeout=...)`` waits with a deadline)."""
    lines: Queue[str] = Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_bare_hookpost_prints_help(tmp_path: Path) -> None:
    result = run_cli(env=hookpost_env(), cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: hookpost") and "doctor" in result.stdout


@pytest.mark.parametrize("command", OPENS_THE_DATABASE, ids=" ".join)
def test_unreachable_postgres_is_one_line(tmp_path: Path, command: list[str]) -> None:
    env = hookpost_env(
        database_url="postgresql://postgres@127.0.0.1:1/hookpost",
        main_key=generate_main_key(),
        port=str(free_port()),
    )
    result = run_cli(*command, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result) == (
        "hookpost: cannot reach PostgreSQL at 127.0.0.1:1 (connection refused): start the "
        "server, or fix HOOKPOST_DATABASE_URL (or --db)"
    )


def test_missing_postgres_database_is_one_line(tmp_path: Path, postgres_url: str) -> None:
    url = with_database(postgres_url, "hookpost_cli_missing")
    env = hookpost_env(database_url=url, main_key=generate_main_key(), port=str(free_port()))
    result = run_cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("hookpost: PostgreSQL at 127.0.0.1:")
    assert 'has no database "hookpost_cli_missing": create it (`createdb' in line


def test_sqlite_in_a_directory_that_cannot_exist_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    db = tmp_path / "a-file" / "hookpost.db"
    env = hookpost_env(database_url=f"sqlite:///{db}", port=str(free_port()))
    result = run_cli("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"hookpost: cannot open the SQLite database {db} (")
    assert "check that the directory exists" in line


def test_tail_follows_a_serve_process_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    token = "hpk_cli-daily-test-token"
    env = hookpost_env(
        port=str(port),
        database_url=f"sqlite:///{tmp_path}/h.db",
        admin_token=token,
        allow_subnets="127.0.0.1",
        poll_interval_s="0.05",
    )
    env.update(HOOKPOST_URL=f"http://127.0.0.1:{port}", HOOKPOST_TOKEN=token)
    log = tmp_path / "serve.log"
    serve = spawn(["serve"], env, log)
    tail: subprocess.Popen[str] | None = None
    try:
        wait_healthy(port, serve, log, timeout=20)

        # The application and its endpoint through the API (the commands for them have their
        # own tests); the receiver is the server itself: its answer to a POST /nowhere (an
        # error status) is an attempt like any other, and what matters is that tail shows it.
        app = post(port, token, "/api/v1/app", {"name": "Tail", "uid": "tail"})
        endpoint = {"url": f"http://127.0.0.1:{port}/nowhere"}
        post(port, token, f"/api/v1/app/{app['id']}/endpoint", endpoint)
        tail_err = tmp_path / "tail.err"
        with open(tail_err, "wb") as err:
            tail = subprocess.Popen(
                [sys.executable, "-m", "hookpost.cli", "tail", "tail", "--interval", "0.05"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        lines = read_lines(tail)
        assert lines.get(timeout=20).startswith("following tail's attempts")
        sent = run_cli("send", "tail", "order.created", "--data", "{}", "--json", env=env, cwd=ROOT)
        assert sent.returncode == 0, sent.stderr
        msg = json.loads(sent.stdout)
        line = lines.get(timeout=20)
        assert msg["id"] in line and " fail " in line
        tail.send_signal(signal.SIGINT)
        assert tail.wait(10) == 0
        assert tail_err.read_text() == ""
    finally:
        if tail is not None:
            if tail.poll() is None:
                tail.kill()
                tail.wait(5)
            if tail.stdout is not None:
                tail.stdout.close()
        stop(serve)
