"""Receivers that are not nginx, each run as its own process.

``ok``: the --quick fallback when nginx is absent: an aiohttp server that answers 200 to every
POST and writes the same access-log format as the bench's nginx. It is slower than nginx and the
results say so (``receiver: python-fallback``); the full bench always uses nginx.

``bad``: the misbehaving endpoints of the isolation scenario, on one port:
  /never/...    reads the request and never answers (the client's timeout ends it)
  /slow500/...  answers 500 after --slow-s seconds
Both are plain asyncio protocols, so holding hundreds of connections costs almost nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from bench.common import LOOPBACK, run


async def serve_ok(port: int, log_path: str) -> None:
    from aiohttp import web

    log = open(log_path, "a", buffering=64 * 1024)  # noqa: ASYNC230 - opened once

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        wid = request.headers.get("webhook-id") or request.headers.get("svix-id") or "-"
        log.write(f"{time.time():.3f} {wid} {request.path_qs} 200\n")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, port, backlog=4096).start()

    async def flush() -> None:
        while True:
            await asyncio.sleep(0.1)
            log.flush()

    flusher = asyncio.create_task(flush())
    await _until_signal()
    flusher.cancel()
    log.flush()
    await runner.cleanup()


class BadProtocol(asyncio.Protocol):
    slow_s = 1.0

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if len(rest) < length:
                return
            self.buf = rest[length:]
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
            if path.startswith(b"/never"):
                continue  # never answer; the client times out and closes
            asyncio.get_running_loop().call_later(self.slow_s, self._answer_500)

    def _answer_500(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n"
                b"content-type: text/plain\r\n\r\nslow"
            )


async def serve_bad(port: int, slow_s: float) -> None:
    BadProtocol.slow_s = slow_s
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BadProtocol, LOOPBACK, port, backlog=4096)
    await _until_signal()
    server.close()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.receivers")
    p.add_argument("kind", choices=("ok", "bad"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", default="/dev/null")
    p.add_argument("--slow-s", type=float, default=1.0)
    a = p.parse_args()
    if a.kind == "ok":
        run(serve_ok(a.port, a.log))
    else:
        run(serve_bad(a.port, a.slow_s))


if __name__ == "__main__":
    main()
