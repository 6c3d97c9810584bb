"""Running ``hookpost`` commands in this process, and a hookpost server (with a receiver) on
a thread of its own for them to talk to: the commands run their own event loops."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.support.receiver import Receiver

T = TypeVar("T")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def hookpost(*argv: str, out: io.StringIO | None = None) -> Result:
    """``hookpost ARGV`` run here (the parsed command, without main's logging set-up)."""
    from hookpost.cli import _parser

    args = _parser().parse_args(list(argv))
    stdout, stderr = out or io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            args.fn(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, stdout.getvalue(), stderr.getvalue())


@dataclass
class ThreadServer:
    """A running ``running_api`` server and a receiver, on their own loop and thread."""

    url: str
    token: str
    receiver: Receiver
    loop: asyncio.AbstractEventLoop
    hp: Any

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def cli(self, *argv: str, token: str | None = None) -> Result:
        return hookpost(*argv, "--url", self.url, "--token", token or self.token)


@contextmanager
def thread_server(database_url: str, **settings: Any) -> Iterator[ThreadServer]:
    from tests.integration.test_api_harness import running_api

    started: Future[ThreadServer] = Future()
    stop: list[asyncio.Event] = []

    async def serve() -> None:
        receiver = await Receiver().start()
        try:
            async with running_api(database_url, **settings) as api:
                stop.append(asyncio.Event())
                loop = asyncio.get_running_loop()
                started.set_result(ThreadServer(api.url, api.admin_token, receiver, loop, api.hp))
                await stop[0].wait()
        finally:
            await receiver.stop()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=main, name="cli-test-server", daemon=True)
    thread.start()
    server = started.result(60)
    try:
        yield server
    finally:
        server.loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)


def poll_until(
    probe: Callable[[], T], accept: Callable[[T], bool] = bool, timeout: float = 10.0
) -> T:
    """``probe()`` again until ``accept`` takes its result; fails at the deadline (for sync
    tests, whose commands must not run on the server's loop)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {result!r}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
