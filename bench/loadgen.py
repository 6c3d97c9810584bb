"""The load generator: a separate process that sends messages through hookpost's API.

    python -m bench.loadgen burst --base URL --token T --app APP_ID --n 20000 --concurrency 64
    python -m bench.loadgen paced --base URL --token T --app APP_ID --rate 500 --duration 10

Each message is ``POST /api/v1/app/{app}/msg`` with ``{"eventType", "payload"}`` (the
Svix-compatible single-message call). The time the client receives the 202 is the message's
"accepted" time; every accepted message is written to --out as ``<msg id>\t<accepted>\t<sent>``.
``burst`` is closed-loop: --concurrency clients (one connection each) send back to back.
``paced`` is open-loop: one request every 1/rate seconds whatever the latency, up to
--max-outstanding requests in flight. Both stop at --n / --duration or --max-s, whichever first.
Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

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
                at = time.time()
                self.codes[str(resp.status)] += 1
                if resp.status in (200, 201, 202):
                    self.accepted.append((orjson.loads(raw)["id"], at, sent))
                elif len(self.errors) < 5:
                    self.errors.append(f"{resp.status}: {raw[:200]!r}")
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
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


async def burst(a: argparse.Namespace) -> dict[str, Any]:
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
    a = p.parse_args()
    emit(run(burst(a) if a.mode == "burst" else paced(a)))


if __name__ == "__main__":
    main()
