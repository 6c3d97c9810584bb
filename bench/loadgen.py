"""The load generator: a separate process that sends messages through hookpost's API.

    python -m bench.loadgen burst --base URL --token T --app APP_ID --n 20000 --concurrency 64
    python -m bench.loadgen paced --base URL --token T --app APP_ID --rate 500 --duration 10

Each message is ``POST /api/v1/app/{app}/msg`` with ``{"eventType", "payload"}`` (the
Svix-compatible single-message call). The time the client receives the 202 is the message's
"accepted" time; every accepted message is written to --out as ``<msg id>\t<accepted>\t<sent>``.
``burst`` is closed-loop: --concurrency clients (one connection each) send back to back. Its
default client (``--client raw``) is a minimal HTTP/1.1 keep-alive client on asyncio streams:
on a 2-core machine the load generator competes with hookpost for the CPU, and aiohttp's client
costs about three times as much per request (``--client aiohttp`` keeps it for comparison).
``paced`` is open-loop: one request every 1/rate seconds whatever the latency, up to
--max-outstanding requests in flight. Both stop at --n / --duration or --max-s, whichever first.
Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from bench.common import EVENT_TYPE, PAYLOAD_BYTES, check_loopback, emit, payload, run


class Recorder:
    def __init__(self) -> None:
        self.accepted: list[tuple[str, float, float]] = []
        self.codes: Counter[str] = Counter()
        self.errors: list[str] = []

    async def send(
        self, session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
    ) -> None:
        sent = time.time()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                raw = await resp.read()
                self.answered(resp.status, raw, time.time(), sent)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            self.failed(exc)

    def answered(self, status: int, raw: bytes, at: float, sent: float) -> None:
        self.codes[str(status)] += 1
        if status in (200, 201, 202):
            try:
                self.accepted.append((orjson.loads(raw)["id"], at, sent))
            except (ValueError, KeyError) as exc:
                self.failed(exc)
        elif len(self.errors) < 5:
            self.errors.append(f"{status}: {raw[:200]!r}")

    def failed(self, exc: BaseException) -> None:
        self.codes[type(exc).__name__] += 1
        if len(self.errors) < 5:
            self.errors.append(repr(exc))

    def summary(self, started: float, out: str | None) -> dict[str, Any]:
        if out:
            with open(out, "w") as fh:
                fh.writelines(f"{m}\t{a:.6f}\t{s:.6f}\n" for m, a, s in self.accepted)
        acc = [a for _, a, _ in self.accepted]
        first, last = (min(acc), max(acc)) if acc else (started, started)
        return {
            "accepted": len(self.accepted),
            "codes": dict(self.codes),
            "errors": self.errors,
            "started": started,
            "first_accept": first,
            "last_accept": last,
            # accepted messages per second from the first request sent to the last 202
            "rate": len(acc) / (last - started) if acc and last > started else 0.0,
        }


def _message_body(size: int) -> bytes:
    return orjson.dumps({"eventType": EVENT_TYPE, "payload": payload(size)})


class RawConnection:
    """One keep-alive HTTP/1.1 connection that POSTs prepared requests (loopback only)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"connection":
                close = value.strip().lower() == b"close"
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def burst_raw(a: argparse.Namespace) -> dict[str, Any]:
    check_loopback(a.base)
    url = urlsplit(a.base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    apps = a.app.split(",")
    body = _message_body(a.size)
    heads = [
        (
            f"POST /api/v1/app/{app}/msg HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"authorization: Bearer {a.token}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
        ).encode()
        for app in apps
    ]
    requests = [head + b"\r\n" + body for head in heads]

    def request(i: int) -> bytes:
        if not a.idempotency_keys:
            return requests[i % len(apps)]
        # What the official svix SDKs send with every POST: a fresh key.
        key = f"idempotency-key: auto_{uuid.uuid4()}\r\n\r\n".encode()
        return heads[i % len(apps)] + key + body

    rec = Recorder()
    deadline = time.monotonic() + a.max_s
    counter = iter(range(a.n))

    async def client() -> None:
        conn = RawConnection(host, port)
        try:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                sent = time.time()
                try:
                    status, raw = await asyncio.wait_for(conn.post(request(i)), 30)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    conn.close()
                    rec.failed(exc)
                    continue
                rec.answered(status, raw, time.time(), sent)
        finally:
            conn.close()

    started = time.time()
    await asyncio.gather(*(client() for _ in range(a.concurrency)))
    return rec.summary(started, a.out)


async def burst(a: argparse.Namespace) -> dict[str, Any]:
    if a.client == "raw":
        return await burst_raw(a)
    check_loopback(a.base)
    apps = a.app.split(",")
    body = _message_body(a.size)
    headers = {"authorization": f"Bearer {a.token}", "content-type": "application/json"}
    rec = Recorder()
    connector = aiohttp.TCPConnector(limit=a.concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=30)
    deadline = time.monotonic() + a.max_s
    counter = iter(range(a.n))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                url = f"{a.base}/api/v1/app/{apps[i % len(apps)]}/msg"
                await rec.send(session, url, body, headers)

        started = time.time()
        await asyncio.gather(*(client() for _ in range(a.concurrency)))
    return rec.summary(started, a.out)


async def paced(a: argparse.Namespace) -> dict[str, Any]:
    check_loopback(a.base)
    apps = a.app.split(",")
    body = _message_body(a.size)
    headers = {"authorization": f"Bearer {a.token}", "content-type": "application/json"}
    rec = Recorder()
    connector = aiohttp.TCPConnector(limit=a.max_outstanding, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=30)
    n = min(a.n, int(a.rate * a.duration)) if a.n else int(a.rate * a.duration)
    interval = 1.0 / a.rate
    tasks: set[asyncio.Task[None]] = set()
    skipped = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        started = time.time()
        for i in range(n):
            if loop.time() - t0 > a.max_s:
                break
            delay = t0 + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= a.max_outstanding:
                skipped += 1  # the open loop never queues; a send it cannot start is counted
                continue
            url = f"{a.base}/api/v1/app/{apps[i % len(apps)]}/msg"
            task = asyncio.create_task(rec.send(session, url, body, headers))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        offered_s = loop.time() - t0
        if tasks:
            await asyncio.wait(tasks, timeout=30)
    out = rec.summary(started, a.out)
    out.update(
        {
            "offered": n,
            "offered_rate": n / offered_s if offered_s else 0.0,
            "skipped_over_outstanding": skipped,
        }
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen")
    p.add_argument("mode", choices=("burst", "paced"))
    p.add_argument("--base", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--app", required=True, help="app id(s), comma-separated: round-robin")
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--max-outstanding", type=int, default=1024)
    p.add_argument("--max-s", type=float, default=120.0)
    p.add_argument("--size", type=int, default=PAYLOAD_BYTES)
    p.add_argument("--out")
    p.add_argument("--client", choices=("raw", "aiohttp"), default="raw", help="burst only")
    p.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="burst, raw client: a fresh idempotency-key per request, as the svix SDKs send",
    )
    a = p.parse_args()
    emit(run(burst(a) if a.mode == "burst" else paced(a)))


if __name__ == "__main__":
    main()
