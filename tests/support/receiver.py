"""A real webhook receiver on 127.0.0.1 for tests: records every request, answers as told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id") or self.headers.get("svix-id", "")


# A responder gets the request number for its path (1-based) and returns (status, body, headers).
Responder = Callable[[int], tuple[int, str, dict[str, str]]]


def always(status: int, body: str = "ok") -> Responder:
    return lambda n: (status, body, {})


def fail_then_ok(failures: int, status: int = 500) -> Responder:
    return lambda n: (status, "nope", {}) if n <= failures else (200, "ok", {})


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._responders: dict[str, Responder] = {}
        self._counts: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        # While ``gate`` is set to an unset Event, requests are recorded on arrival and then
        # held open (in flight) until the gate opens.
        self.gate: asyncio.Event | None = None
        self.delay_s = 0.0  # a slow receiver: each answer waits this long after its request

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def respond(self, path: str, responder: Responder) -> None:
        self._responders["/" + path.lstrip("/")] = responder

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        self._counts[path] = self._counts.get(path, 0) + 1
        status, text, headers = self._responders.get(path, always(200))(self._counts[path])
        async with self._changed:
            self.requests.append(Received(path, dict(request.headers), body))
            self._changed.notify_all()
        if self.gate is not None:
            await self.gate.wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=status, text=text, headers=headers)

    def on(self, path: str) -> list[Received]:
        path = "/" + path.lstrip("/")
        return [r for r in self.requests if r.path == path]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (on request arrival, no polling) until ``predicate()`` holds, or fail."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> None:
        def enough() -> bool:
            got = self.requests if path is None else self.on(path)
            return len(got) >= count

        await self.wait_until(enough, timeout)
