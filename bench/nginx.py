"""The receiver every contender posts to: one nginx worker that answers 200 and logs arrivals.

Each access-log line is ``$msec $http_webhook_id $request_uri $status``. ``$msec`` is the time
(seconds, millisecond resolution) at which nginx finished the request; the bench joins it with
the time the API accepted the message (by webhook-id) to get the delivery latency.

If nginx is missing, the full bench installs the Debian package (nginx-light) with apt-get, or
stops with a message saying how to install it. ``--quick`` (the CI smoke test) never installs:
it falls back to a Python aiohttp receiver (bench/receivers.py) that writes the same log
format, and the results say ``receiver: python-fallback``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import LOOPBACK, child_env, free_port, wait_port

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile 16384;
events {{
    worker_connections 8192;
    multi_accept on;
}}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    log_format bench '$msec $http_webhook_id $request_uri $status';
    access_log {dir}/access.log bench buffer=64k flush=100ms;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_buffer_size 64k;
    server {{
        listen {host}:{port} backlog=4096 reuseport;
        location / {{
            return 200 "ok";
        }}
    }}
}}
"""


class ReceiverUnavailable(RuntimeError):
    pass


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in NGINX_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_nginx(install: bool = True, log: Callable[[str], None] = print) -> str:
    """The nginx binary, installing the Debian package if it is missing (needs root + apt)."""
    found = find_nginx()
    if found:
        return found
    if not install:
        raise ReceiverUnavailable("nginx is not installed (apt-get install nginx-light)")
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise ReceiverUnavailable(
            "nginx is not installed and cannot be installed here (needs root and apt-get). "
            "Install it with `apt-get install nginx-light` (or nginx) and run the bench again."
        )
    log("bench: nginx is missing; installing the Debian package (apt-get install nginx-light)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx-light"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise ReceiverUnavailable(
                f"installing nginx failed ({' '.join(cmd)} exited {proc.returncode}): "
                f"{proc.stderr.strip()[-500:]}"
            )
    found = find_nginx()
    if not found:
        raise ReceiverUnavailable("apt-get installed nginx-light but no nginx binary was found")
    return found


@dataclass
class LogLine:
    at: float  # seconds since the epoch (ms resolution)
    webhook_id: str
    uri: str
    status: int


@dataclass
class Receiver:
    """A running receiver (nginx or the Python fallback) and its access log."""

    kind: str  # "nginx" or "python-fallback"
    port: int
    dir: Path
    proc: subprocess.Popen[bytes]
    version: str = ""
    _offset: int = 0
    _partial: bytes = b""
    lines: list[LogLine] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "access.log"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def mark(self) -> int:
        """Read everything logged so far and return the index of the next line."""
        self.poll()
        return len(self.lines)

    def poll(self) -> int:
        """Read newly logged lines; returns how many arrived."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return 0
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        before = len(self.lines)
        for raw in complete:
            parts = raw.split(b" ")
            if len(parts) < 4:
                continue
            try:
                self.lines.append(
                    LogLine(float(parts[0]), parts[1].decode(), parts[2].decode(), int(parts[3]))
                )
            except ValueError:
                continue
        return len(self.lines) - before

    def since(self, mark: int, prefix: str = "") -> list[LogLine]:
        self.poll()
        return [ln for ln in self.lines[mark:] if ln.uri.startswith(prefix)]

    def wait_for(
        self, mark: int, prefix: str, count: int, timeout: float, unique: bool = True
    ) -> list[LogLine]:
        """Poll the log until ``count`` (unique by uri+id) requests under ``prefix`` arrived."""
        deadline = time.monotonic() + timeout
        seen: set[tuple[str, str]] = set()
        scanned = mark
        got: list[LogLine] = []
        while True:
            self.poll()
            for ln in self.lines[scanned:]:
                if not ln.uri.startswith(prefix):
                    continue
                key = (ln.uri, ln.webhook_id)
                if unique and key in seen:
                    continue
                seen.add(key)
                got.append(ln)
            scanned = len(self.lines)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT if self.kind == "nginx" else signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_nginx(binary: str, workdir: Path) -> Receiver:
    d = workdir / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    (d / "nginx.conf").write_text(CONF.format(dir=d, host=LOOPBACK, port=port))
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
    proc = subprocess.Popen(
        [binary, "-c", str(d / "nginx.conf"), "-p", str(d), "-e", str(d / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "stderr.log", "wb"),
        start_new_session=True,
    )
    if not wait_port(port, 10):
        proc.kill()
        err = (d / "error.log").read_text() if (d / "error.log").exists() else ""
        raise ReceiverUnavailable(f"nginx did not start on port {port}: {err[-500:]}")
    return Receiver("nginx", port, d, proc, version=version)


def start_python_receiver(workdir: Path) -> Receiver:
    d = workdir / "pyreceiver"
    d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.receivers",
            "ok",
            "--port",
            str(port),
            "--log",
            str(d / "access.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "stderr.log", "wb"),
        start_new_session=True,
        cwd=str(Path(__file__).resolve().parents[1]),
        env=child_env(),
    )
    if not wait_port(port, 10):
        proc.kill()
        raise ReceiverUnavailable("the Python fallback receiver did not start")
    return Receiver("python-fallback", port, d, proc, version="aiohttp")


def worker_pids(receiver: Receiver) -> list[int]:
    """nginx's worker process ids (children of the master), for CPU accounting."""
    pids = []
    try:
        children = Path(f"/proc/{receiver.pid}/task/{receiver.pid}/children").read_text().split()
        pids = [int(p) for p in children]
    except OSError:
        pass
    return pids or [receiver.pid]
