"""``hookpost listen``: forward an application's deliveries to a local URL, through a relay
endpoint in the hookpost server (docs/listen.md, docs/decisions/0042).

It creates (or reuses) the relay endpoint, holds the server's event stream for it, POSTs each
delivery, headers and signature untouched, to ``--forward``, prints a line per delivery and
reports the local answer back: that answer is the attempt's result. While it is away the
server answers the relay's deliveries 503 and they wait in the queue like any other.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp
import orjson

from hookpost.commands.options import default_token, default_url
from hookpost.domain.relay import DEFAULT_RELAY_UID

MAX_READ_BYTES = 64 * 1024  # of a local answer (the worker stores 4 KiB of it)
RECONNECT_S = (0.5, 1, 2, 5, 10)  # waits between attempts to reconnect
STREAM_IDLE_S = 45.0  # the server sends a keep-alive every 15 s: silence this long is a loss


class ListenError(Exception):
    """A refusal reconnecting cannot fix (bad token, unknown application, ...)."""


@dataclass
class Listen:
    server: str  # the hookpost API's base URL
    token: str
    app: str
    forward: str
    uid: str = DEFAULT_RELAY_UID
    event_types: list[str] | None = None
    out: TextIO = field(default=sys.stdout)
    delivered: int = 0

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _url(self, path: str) -> str:
        return f"{self.server.rstrip('/')}/api/v1/app/{self.app}/relay{path}"

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as api,
            aiohttp.ClientSession(auto_decompress=False) as local,
        ):
            relay = await self._relay(api)
            endpoint = relay["endpointId"]
            verb = "created" if relay["created"] else "reusing"
            self.say(f"{verb} relay endpoint {endpoint} (uid {relay['uid']}) of app {self.app}")
            if relay.get("secret"):
                self.say(f"signing secret: {relay['secret']}   (verify with it at {self.forward})")
            failures = 0
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await _until(stop, self._stream(api, local, endpoint))
                    if stop.is_set():
                        return
                    reason = "the server closed the stream"
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    reason = str(exc) or type(exc).__name__
                failures = 0 if time.monotonic() - started > 30 else failures + 1
                wait = RECONNECT_S[min(failures, len(RECONNECT_S) - 1)]
                self.say(f"connection lost ({reason}); reconnecting in {wait:g}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)

    async def _relay(self, api: aiohttp.ClientSession) -> dict[str, Any]:
        body: dict[str, Any] = {"uid": self.uid}
        if self.event_types:
            body["eventTypes"] = self.event_types
        async with api.post(self._url(""), json=body) as resp:
            if resp.status not in (200, 201):
                raise ListenError(f"cannot create the relay endpoint: {await _detail(resp)}")
            answer: dict[str, Any] = await resp.json()
            return answer

    async def _stream(
        self, api: aiohttp.ClientSession, local: aiohttp.ClientSession, endpoint: str
    ) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=STREAM_IDLE_S)
        tasks: set[asyncio.Task[None]] = set()
        local_timeout_s = 10.0  # until the ready event says
        async with api.get(self._url(f"/{endpoint}/events"), timeout=timeout) as resp:
            if resp.status in (401, 403, 404, 409):
                raise ListenError(f"the server refused to stream: {await _detail(resp)}")
            if resp.status != 200:
                raise aiohttp.ClientError(f"HTTP {resp.status}: {await _detail(resp)}")
            try:
                async for event, data in _events(resp.content):
                    if event == "ready":
                        self.say(f"listening: deliveries go to {self.forward}  (Ctrl-C stops)")
                        local_timeout_s = data["timeoutMs"] / 1000
                    elif event == "delivery":
                        task = asyncio.create_task(
                            self._deliver(api, local, endpoint, data, local_timeout_s)
                        )
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    elif event == "replaced":
                        raise ListenError("another `hookpost listen` took over this relay")
            finally:
                for task in list(tasks):
                    task.cancel()

    async def _deliver(
        self,
        api: aiohttp.ClientSession,
        local: aiohttp.ClientSession,
        endpoint: str,
        data: dict[str, Any],
        timeout_s: float,
    ) -> None:
        headers: dict[str, str] = data["headers"]
        headers.pop("accept-encoding", None)  # the answer goes back as it is: uncompressed
        msg_id = headers.get("webhook-id") or headers.get("svix-id") or "?"
        reply: dict[str, Any] = {"requestId": data["requestId"]}
        started = time.perf_counter()
        try:
            async with local.post(
                self.forward,
                data=base64.b64decode(data["body"]),
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                raw = await resp.content.read(MAX_READ_BYTES)
                reply |= {"status": resp.status, "body": base64.b64encode(raw).decode()}
                if "Retry-After" in resp.headers:
                    reply["retryAfter"] = resp.headers["Retry-After"][:64]
                outcome = str(resp.status)
        except Exception as exc:  # every local failure is reported as the attempt's result
            error = f"timeout after {timeout_s:g}s" if isinstance(exc, TimeoutError) else str(exc)
            reply["error"] = f"{self.forward}: {error or type(exc).__name__}"[:1024]
            outcome = "ERR " + reply["error"]
        ms = int((time.perf_counter() - started) * 1000)
        self.delivered += 1
        self.say(f"{time.strftime('%H:%M:%S')}  {msg_id}  {outcome}  ({ms} ms)")
        try:
            async with api.post(self._url(f"/{endpoint}/reply"), json=reply) as resp:
                if resp.status != 204:  # the relay gave up waiting: the delivery is retried
                    self.say(f"  the server did not take the answer: {await _detail(resp)}")
        except (aiohttp.ClientError, OSError) as exc:  # retried by the server all the same
            self.say(f"  could not report the answer: {exc}")


async def _until(stop: asyncio.Event, work: Any) -> None:
    """Run ``work`` until it ends or ``stop`` is set."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, stopper):
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
    if task.done() and not task.cancelled():
        task.result()
    else:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _events(content: aiohttp.StreamReader) -> Any:
    """The (event, data) pairs of a server-sent-events stream (comments skipped)."""
    buffer = b""
    async for chunk in content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            event, data = "message", b""
            for line in block.split(b"\n"):
                if line.startswith(b"event: "):
                    event = line[7:].decode()
                elif line.startswith(b"data: "):
                    data += line[6:]
            if data:
                yield event, orjson.loads(data)


async def _detail(resp: aiohttp.ClientResponse) -> str:
    text = (await resp.text(errors="replace"))[:500]
    try:
        text = str(orjson.loads(text).get("detail", text))
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return f"HTTP {resp.status}: {text}"


# --------------------------------------------------------------------------- the command


def add_parser(sub: Any) -> None:
    """Register ``hookpost listen`` on the CLI's subparsers."""
    p = sub.add_parser(
        "listen",
        help="forward an application's deliveries to a local URL (a self-hosted relay)",
        description="Forward an application's deliveries to a local URL, through a relay "
        "endpoint in the hookpost server (docs/listen.md). Ctrl-C stops; deliveries then wait.",
    )
    p.add_argument("--app", required=True, help="the application (id or uid)")
    p.add_argument(
        "--forward", required=True, help="the local URL, e.g. http://localhost:3000/hook"
    )
    p.add_argument("--url", help="the hookpost API (HOOKPOST_URL; http://HOST:PORT)")
    p.add_argument("--token", help="an admin or app-scoped token (HOOKPOST_TOKEN)")
    p.add_argument(
        "--endpoint",
        default=DEFAULT_RELAY_UID,
        help=f"the relay endpoint's uid, reused if it exists (default {DEFAULT_RELAY_UID})",
    )
    p.add_argument("--event-types", help="comma-separated event types (when it is created)")
    p.set_defaults(fn=cmd_listen)


def cmd_listen(args: argparse.Namespace) -> None:
    token = args.token or default_token()
    if not token:
        print("hookpost listen: give --token or set HOOKPOST_TOKEN", file=sys.stderr)
        sys.exit(2)
    types = [t.strip() for t in (args.event_types or "").split(",") if t.strip()] or None
    listen = Listen(args.url or default_url(), token, args.app, args.forward, args.endpoint, types)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await listen.run(stop)

    try:
        asyncio.run(main())
    except ListenError as exc:
        print(f"hookpost listen: {exc}", file=sys.stderr)
        sys.exit(1)
    except (aiohttp.ClientError, OSError) as exc:
        print(f"hookpost listen: cannot reach {listen.server}: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"hookpost listen stopped ({listen.delivered} deliveries forwarded)", flush=True)
