"""``hookpost serve`` on more than one core: the API in this process, the worker in a child.

Why: a CPython process runs one thread of Python at a time, and at full load the API and the
delivery worker each want about a core (see
docs/decisions/0001-serve-runs-the-worker-in-a-child-process.md). So ``serve`` (``--worker
auto`` on a machine with two or more CPUs) starts ``hookpost worker`` as a child on the same
database and keeps it running. Two channels tie them together:

* the wake pipe: the API writes a byte after message commits (one per event-loop turn, however
  many commits the turn saw), and the child claims at once (SQLite has no LISTEN/NOTIFY;
  without it the child would find new work only at its next poll). End of file on the pipe
  means the parent is gone, and the child stops gracefully;
* the metrics socket: the child serves its Prometheus text on a UNIX socket in a private
  directory, and the API's ``/metrics`` appends it, so one scrape still sees everything.

Nothing durable passes through either channel: the database is the queue. A lost wake-up
costs at most one poll interval; a child that dies loses nothing (its leases expire, or the
next child's claims pick the work up) and is restarted with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from hookpost.wiring import Hookpost

log = logging.getLogger("hookpost.serve")

METRICS_TIMEOUT_S = 2.0
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def wants_worker_process(mode: str) -> bool:
    """``serve_worker`` setting: ``process``, ``inline`` or ``auto`` (process on 2+ CPUs)."""
    if mode == "process":
        return True
    if mode == "inline":
        return False
    if mode == "auto":
        return available_cpus() >= 2
    raise ValueError(f"HOOKPOST_SERVE_WORKER={mode!r}: expected auto, process or inline")


class WorkerProcess:
    """Parent side: start the child, wake it, fetch its metrics, restart it, stop it."""

    def __init__(self, database_url: str, grace_s: float) -> None:
        self._database_url = database_url
        self._grace_s = grace_s
        self._dir = Path(tempfile.mkdtemp(prefix="hookpost-worker-"))  # mode 0700
        self.metrics_socket = self._dir / "metrics.sock"
        self._wake_w: int | None = None
        self._wake_soon = False  # a wake-up is already due at the end of this loop turn
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self.started = asyncio.Event()  # set once a child has been spawned (tests, banner)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="hookpost-worker-proc")

    def wake(self) -> None:
        """Called on the event loop after every message commit; never blocks and never fails
        the API call. The commits of one loop turn (a group of them lands together) share one
        byte, written right after the turn: the child claims everything due when it wakes."""
        if self._wake_soon:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not called from the event loop: nothing to coalesce with
            self._write_wake()
            return
        self._wake_soon = True
        loop.call_soon(self._write_wake)

    def _write_wake(self) -> None:
        self._wake_soon = False
        fd = self._wake_w
        if fd is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(fd, b"\x01")  # a full pipe already holds a wake-up

    async def metrics_text(self) -> bytes:
        import aiohttp

        try:
            connector = aiohttp.UnixConnector(path=str(self.metrics_socket))
            timeout = aiohttp.ClientTimeout(total=METRICS_TIMEOUT_S)
            async with (
                aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
                http.get("http://worker/metrics") as response,
            ):
                response.raise_for_status()
                return await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("worker process metrics unavailable: %s", exc)
            return b"# hookpost worker process metrics unavailable\n"

    async def _spawn(self) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        with contextlib.suppress(FileNotFoundError):
            self.metrics_socket.unlink()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hookpost",
                "worker",
                "--db",
                self._database_url,
                "--wake-fd",
                str(read_fd),
                "--metrics-socket",
                str(self.metrics_socket),
                pass_fds=(read_fd,),
                # Its own session: a terminal's Ctrl-C reaches only the parent, which then
                # stops the child in order (instead of both racing to exit).
                start_new_session=True,
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        old, self._wake_w = self._wake_w, write_fd
        if old is not None:
            os.close(old)
        self._wake_soon = False  # (a write left pending by a loop that stopped is void)
        self.wake()  # claim whatever became due while no child was listening
        self.started.set()
        log.info("delivery worker running in process %d", self._proc.pid)

    async def _supervise(self) -> None:
        failures = 0
        while True:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping.is_set():
                return
            delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
            failures += 1
            log.error("the worker process exited with %s; restarting it in %.0fs", code, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            await self._spawn()

    async def stop(self) -> None:
        """Ask the child to finish (end of file on its pipe, and SIGTERM), wait for it to
        write its results and release its leases, and kill it only past the grace period."""
        self._stopping.set()
        if self._wake_w is not None:
            os.close(self._wake_w)
            self._wake_w = None
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self._grace_s + 10)
            except TimeoutError:
                log.error("the worker process did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._supervisor is not None:
            await self._supervisor
        shutil.rmtree(self._dir, ignore_errors=True)


async def run_worker_child(hp: Hookpost, wake_fd: int | None, metrics_socket: str | None) -> None:
    """Child side: deliver until SIGTERM/SIGINT or until the parent's pipe closes."""
    from aiohttp import web

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = await hp.start_worker()

    if wake_fd is not None:
        os.set_blocking(wake_fd, False)

        def on_wake() -> None:
            try:
                data = os.read(wake_fd, 4096)
            except BlockingIOError:
                return
            if data:
                worker.wake()
                if hp.tasks is not None:  # a background task may be what was written
                    hp.tasks.wake()
            else:  # the parent is gone: nobody will stop us otherwise
                loop.remove_reader(wake_fd)
                stop.set()

        loop.add_reader(wake_fd, on_wake)

    runner: web.AppRunner | None = None
    if metrics_socket:

        async def metrics(_request: web.Request) -> web.Response:
            body = hp.services.metrics.child_exposition()
            return web.Response(body=body, content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.UnixSite(runner, metrics_socket).start()
    try:
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        if wake_fd is not None:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(wake_fd)
            os.close(wake_fd)
