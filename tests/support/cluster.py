"""A scale-out hookpost deployment for tests: real ``hookpost api`` and ``hookpost worker``
processes on one PostgreSQL, a counting webhook receiver, a load generator, and a private
PostgreSQL server that a test may stop and start (the shared one is never touched).

Nothing here sleeps to wait for a condition: waits poll with a deadline, and every loop is
bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from tests.support.polling import eventually
from tests.support.processes import ROOT, hookpost_env, spawn

LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """One ``hookpost`` subprocess and its log."""

    name: str
    role: str  # "api" | "worker"
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far (Linux /proc; 0.0 where unavailable)."""
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def count_in_log(self, needle: str) -> int:
        try:
            return self.log_text().count(needle)
        except OSError:
            return 0


class Cluster:
    """API and worker processes sharing one database, all with the same settings."""

    def __init__(self, database_url: str, workdir: Path, **settings: str) -> None:
        from hookpost.store.secretbox import generate_main_key

        self.database_url = database_url
        self.workdir = workdir
        self.admin_token = "hpk_scaleout_" + os.urandom(8).hex()
        self.settings: dict[str, str] = {
            "database_url": database_url,
            "main_key": generate_main_key(),
            "admin_token": self.admin_token,
            "allow_subnets": "127.0.0.0/8",
            "lease_s": "3",
            "request_timeout_s": "2",  # a lease outlasts a whole request
            "poll_interval_s": "0.5",
            "retry_schedule": "1,1,2,2,5",
            "api_rate_limit": "0",
            **settings,
        }
        self.procs: list[Proc] = []
        self._serial = Counter[str]()

    # -- starting and stopping ---------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        return hookpost_env(**{**self.settings, **extra})

    def migrate(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "hookpost.cli", "migrate"],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"hookpost migrate failed:\n{result.stdout}{result.stderr}"

    def _name(self, role: str) -> str:
        self._serial[role] += 1
        return f"{role}{self._serial[role]}"

    def start_api(self, **extra: str) -> Proc:
        name = self._name("api")
        port = free_port()
        log = self.workdir / f"{name}.log"
        popen = spawn(["api"], self.env(host=LOOPBACK, port=str(port), **extra), log)
        proc = Proc(name, "api", popen, log, port)
        self.procs.append(proc)
        return proc

    def start_worker(self, **extra: str) -> Proc:
        name = self._name("worker")
        log = self.workdir / f"{name}.log"
        popen = spawn(["worker"], self.env(**extra), log)
        proc = Proc(name, "worker", popen, log)
        self.procs.append(proc)
        return proc

    async def start(self, apis: int, workers: int) -> tuple[list[Proc], list[Proc]]:
        """Start ``apis`` API and ``workers`` worker processes at once; wait until all are up."""
        started_apis = [self.start_api() for _ in range(apis)]
        started_workers = [self.start_worker() for _ in range(workers)]
        await self.wait_ready(*started_apis, *started_workers)
        return started_apis, started_workers

    async def wait_ready(self, *procs: Proc, timeout: float = 60.0) -> None:
        """APIs answer /api/v1/health with 204; workers have printed their banner (printed
        after migrating, opening the store and starting the delivery loop)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:

            async def ready(p: Proc) -> bool:
                if not p.alive:
                    raise AssertionError(
                        f"{p.name} exited with {p.popen.returncode}\n{self.logs()}"
                    )
                if p.role == "worker":
                    return p.count_in_log("admin token:") > 0
                try:
                    async with http.get(f"http://{LOOPBACK}:{p.port}/api/v1/health") as r:
                        return r.status == 204
                except (aiohttp.ClientError, OSError, TimeoutError):
                    return False

            async def all_ready() -> list[str]:
                return [p.name for p in procs if not await ready(p)]

            try:
                await eventually(all_ready, lambda waiting: not waiting, timeout=timeout)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{self.logs()}") from None

    async def signal(self, proc: Proc, sig: int, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait (without blocking the event loop) for the exit code."""
        if proc.alive:
            proc.popen.send_signal(sig)
        try:
            return await asyncio.to_thread(proc.popen.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            await asyncio.to_thread(proc.popen.wait, 10)
            raise AssertionError(
                f"{proc.name} did not exit within {timeout}s of signal {sig}\n{self.logs()}"
            ) from None

    async def close(self) -> None:
        """Stop every process still running (SIGTERM; SIGKILL if it hangs)."""
        running = [p for p in self.procs if p.alive]
        for p in running:
            p.popen.send_signal(signal.SIGTERM)
        for p in running:
            try:
                await asyncio.to_thread(p.popen.wait, 30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                await asyncio.to_thread(p.popen.wait, 10)

    # -- looking in ----------------------------------------------------------------------
    @property
    def apis(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "api" and p.alive]

    @property
    def api_ports(self) -> list[int]:
        return [p.port for p in self.apis if p.port is not None]

    def logs(self, lines: int = LOG_TAIL_LINES) -> str:
        parts = []
        for p in self.procs:
            state = "running" if p.alive else f"exited {p.popen.returncode}"
            parts.append(f"----- {p.name} ({state}), last {lines} lines of {p.log}:")
            parts.append(tail(p.log, lines))
        return "\n".join(parts)


# --------------------------------------------------------------------------- receiver


class CountingReceiver:
    """A webhook receiver that only counts: receipts per (webhook-id, path), arrival order.

    Leaner than ``tests.support.receiver.Receiver`` (no headers or bodies kept), and it can
    answer after ``delay_s`` like a real endpoint doing some work, so that each worker has
    a realistic number of requests in flight when a test kills it.
    """

    BARRIER = "/_barrier"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.counts: Counter[tuple[str, str]] = Counter()
        self.total = 0
        self.first_at: float | None = None
        self.last_new_at: float | None = None  # when the latest first-time receipt came
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}/{path.lstrip('/')}"

    async def start(self) -> CountingReceiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0, backlog=4096)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        if request.path != self.BARRIER:
            key = (request.headers.get("webhook-id", ""), request.path)
            now = time.monotonic()
            if self.first_at is None:
                self.first_at = now
            if key not in self.counts:
                self.last_new_at = now
            self.counts[key] += 1
            self.total += 1
            if self.delay_s:
                await asyncio.sleep(self.delay_s)  # the endpoint's own work
        return web.Response(text="ok")

    async def barrier(self) -> None:
        """Return after the receiver has handled a request sent now, on a new connection:
        by then it has also read what the kernel had buffered for it before this call."""
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.post(self.url(self.BARRIER), data=b"{}") as r:
                await r.read()

    @property
    def unique(self) -> int:
        return len(self.counts)

    async def wait_unique(
        self, count: int, timeout: float = 60.0, explain: Callable[[], str] = str
    ) -> None:
        """Wait until ``count`` distinct deliveries have arrived."""

        async def unique() -> int:
            return self.unique

        try:
            await eventually(unique, lambda n: n >= count, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"waiting for {count} deliveries: {exc}\n{explain()}") from None

    def received(self) -> set[tuple[str, str]]:
        return set(self.counts)

    def duplicates(self) -> dict[tuple[str, str], int]:
        return {k: n for k, n in self.counts.items() if n > 1}


# --------------------------------------------------------------------------- REST setup


async def create_app_and_endpoints(
    api_port: int, token: str, receiver: CountingReceiver, endpoints: int, name: str = "load"
) -> tuple[str, dict[str, str]]:
    """Create one application with ``endpoints`` endpoints on the receiver.
    Returns (app id, endpoint id -> receiver path)."""
    base = f"http://{LOOPBACK}:{api_port}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    paths: dict[str, str] = {}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{base}/app", json={"name": name, "uid": name}) as r:
            assert r.status == 201, await r.text()
            app_id = (await r.json())["id"]
        for n in range(endpoints):
            path = f"/{name}/ep{n}"
            body = {"url": receiver.url(path), "description": path}
            async with http.post(f"{base}/app/{app_id}/endpoint", json=body) as r:
                assert r.status == 201, await r.text()
                paths[(await r.json())["id"]] = path
    return app_id, paths


# --------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    accepted: dict[int, str] = field(default_factory=dict)  # message number -> message id
    failed: dict[int, str] = field(default_factory=dict)  # message number -> last error
    errors: Counter[str] = field(default_factory=Counter)  # every failed request, by kind
    requests: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return len(self.accepted) / self.seconds

    def expected(self, paths: Iterable[str]) -> set[tuple[str, str]]:
        """Every (webhook-id, receiver path) that must arrive: accepted messages x endpoints."""
        paths = list(paths)
        return {(msg_id, path) for msg_id in self.accepted.values() for path in paths}


class LoadGenerator:
    """Sends ``count`` messages through the API ports with bounded concurrency, round-robin.

    A message whose request fails (a non-2xx answer or a connection error) is retried on the
    next port after a short backoff while ``retry_for_s`` has not run out, at most
    ``max_tries`` times; what finally failed is in ``result.failed``. Only messages that got
    a 2xx answer are in ``result.accepted``: those are the ones hookpost promised to deliver.

    With ``rate`` (messages/s), message ``i`` is sent no earlier than ``i / rate`` seconds
    after the start: a steady load for tests that inject faults, which may end it early with
    ``stop()`` once their faults are done.
    """

    def __init__(
        self,
        ports: Sequence[int],
        token: str,
        app_id: str,
        count: int,
        *,
        concurrency: int = 64,
        retry_for_s: float = 0.0,
        max_tries: int = 200,
        payload_bytes: int = 256,
        rate: float | None = None,
    ) -> None:
        self.urls = [f"http://{LOOPBACK}:{p}/api/v1/app/{app_id}/msg" for p in ports]
        self.token = token
        self.count = count
        self.concurrency = concurrency
        self.retry_for_s = retry_for_s
        self.max_tries = max_tries
        self.pad = "x" * payload_bytes
        self.rate = rate
        self._stopping = False
        self.result = LoadResult()
        self.failed_requests = 0  # a test reads this to see an outage bite

    def stop(self) -> None:
        """Send no further messages (requests under way finish, with their retries)."""
        self._stopping = True

    @property
    def done(self) -> int:
        return len(self.result.accepted) + len(self.result.failed)

    async def run(self) -> LoadResult:
        res = self.result
        res.started = time.monotonic()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(self.count):
            queue.put_nowait(i)
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=30, connect=5)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers
        ) as http:
            await asyncio.gather(*(self._sender(http, queue) for _ in range(self.concurrency)))
        res.finished = time.monotonic()
        return res

    async def _sender(self, http: aiohttp.ClientSession, queue: asyncio.Queue[int]) -> None:
        while not queue.empty() and not self._stopping:
            i = queue.get_nowait()
            if self.rate:
                ahead = self.result.started + i / self.rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)  # pacing the load, not waiting for a state
            await self._send_one(http, i)

    async def _send_one(self, http: aiohttp.ClientSession, i: int) -> None:
        res = self.result
        body = {"eventType": "load.test", "payload": {"n": i, "pad": self.pad}}
        deadline = time.monotonic() + self.retry_for_s
        backoff = 0.05
        error = ""
        for attempt in range(self.max_tries):
            url = self.urls[(i + attempt) % len(self.urls)]
            res.requests += 1
            try:
                async with http.post(url, json=body) as r:
                    if 200 <= r.status < 300:
                        res.accepted[i] = (await r.json())["id"]
                        res.failed.pop(i, None)
                        return
                    error = f"HTTP {r.status}"
                    await r.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = type(exc).__name__
            res.errors[error] += 1
            self.failed_requests += 1
            res.failed[i] = error
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(backoff)  # a client's retry backoff, not a wait for a state
            backoff = min(backoff * 2, 1.0)


# --------------------------------------------------------------------------- database views


async def db_fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def delivery_status_counts(url: str) -> dict[int, int]:
    rows = await db_fetch(url, "SELECT status, count(*) AS n FROM deliveries GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def sending_now(url: str, paths: dict[str, str]) -> set[tuple[str, str]]:
    """(message id, receiver path) of every delivery in status ``sending``."""
    rows = await db_fetch(url, "SELECT message_id, endpoint_id FROM deliveries WHERE status = 1")
    return {(r["message_id"], paths.get(r["endpoint_id"], r["endpoint_id"])) for r in rows}


# --------------------------------------------------------------------------- waiting


async def wait_delivered(
    receiver: CountingReceiver,
    expected: set[tuple[str, str]],
    timeout: float,
    explain: Callable[[], str],
) -> None:
    async def missing() -> int:
        return len(expected - receiver.counts.keys())

    try:
        await eventually(missing, lambda n: n == 0, timeout=timeout, interval=0.1)
    except AssertionError as exc:
        lost = sorted(expected - receiver.counts.keys())
        raise AssertionError(
            f"{len(lost)} of {len(expected)} deliveries never arrived ({exc}); "
            f"first few: {lost[:5]}\n{explain()}"
        ) from None


# --------------------------------------------------------------------------- private PostgreSQL


def find_pg_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[Path] = []
    if env := os.environ.get("HOOKPOST_TEST_PG_BINDIR"):
        candidates.append(Path(env))
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for d in candidates:
        if all((d / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def private_postgres_unavailable() -> str | None:
    """Why a private PostgreSQL server cannot be run here, or None if it can."""
    if find_pg_bindir() is None:
        return "initdb/pg_ctl not found (set HOOKPOST_TEST_PG_BINDIR)"
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            return "running as root, and runuser (to run the server as postgres) is missing"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres OS user to run the server as"
    return None


class PrivatePostgres:
    """A throwaway PostgreSQL server owned by one test: stop and start it at will.

    PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` OS user
    (``runuser``), in a temporary directory owned by that user.
    """

    def __init__(self, bindir: Path, port: int | None = None) -> None:
        self.bindir = bindir
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hookpost-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}{result.stderr}\n"
                f"server log:\n{tail(self.log)}"
            )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={LOOPBACK} -c fsync=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
