"""``hookpost api`` as operators run it: slow clients are cut off, and ``/metrics`` moves to a
port of its own behind a token when configured to."""

from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.multiprocess.test_cli import free_port, wait_healthy
from tests.support.processes import hookpost_env, spawn, stop

pytestmark = pytest.mark.slow

HEAD_TIMEOUT_S = 1.0
DEADLINE_S = 15.0
METRICS_TOKEN = "metrics-" + "m" * 32


def _status(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes ``sock`` (polled with a deadline)."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < DEADLINE_S:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    raise AssertionError(f"the connection was still open after {DEADLINE_S}s")


def test_api_closes_a_half_sent_request_head_and_serves_metrics_apart(tmp_path: Path):
    port, metrics_port = free_port(), free_port()
    env = hookpost_env(
        port=str(port),
        database_url=f"sqlite:///{tmp_path}/h.db",
        request_head_timeout_s=str(HEAD_TIMEOUT_S),
        metrics_port=str(metrics_port),
        metrics_token=METRICS_TOKEN,
    )
    log = tmp_path / "api.log"
    proc = spawn(["api"], env, log)
    try:
        wait_healthy(port, proc, log, timeout=20)
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            took = _closed_after(slow)
        assert HEAD_TIMEOUT_S * 0.8 <= took < DEADLINE_S, took

        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        assert _status(metrics) == 401
        assert _status(metrics, METRICS_TOKEN) == 200
        assert _status(f"http://127.0.0.1:{port}/metrics", METRICS_TOKEN) == 404
    finally:
        code = stop(proc, signal.SIGTERM)
    out = log.read_text()
    assert code == 0, out
    assert f"metrics:   http://127.0.0.1:{metrics_port}/metrics" in out
