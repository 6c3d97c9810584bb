"""The raw ceiling: one Python process (uvloop + aiohttp, one keep-alive session) firing the
same POSTs as hookpost (same body bytes, the same header names and value sizes) straight at the
same receiver. No storage, no signing, no SSRF guard.

    python -m bench.baseline --url http://127.0.0.1:PORT/base/ --n 50000 --concurrency 256
prints one JSON line: {"sent", "ok", "errors", "first_send", "last_done", "rate"}.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import time
from typing import Any

import aiohttp

from bench.common import PAYLOAD_BYTES, check_loopback, emit, payload_bytes, run


async def fire(url: str, n: int, concurrency: int, max_s: float, size: int) -> dict[str, Any]:
    check_loopback(url)
    body = payload_bytes(size)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, force_close=False)
    counter = iter(range(n))
    ok = errors = 0
    deadline = time.monotonic() + max_s
    sig = "v1," + base64.b64encode(os.urandom(32)).decode()
    async with aiohttp.ClientSession(
        connector=connector, skip_auto_headers=("User-Agent",), auto_decompress=False
    ) as session:

        async def worker(w: int) -> None:
            nonlocal ok, errors
            for i in counter:
                if time.monotonic() > deadline:
                    return
                headers = {
                    "content-type": "application/json",
                    "user-agent": "hookpost/0.1",
                    "webhook-id": f"msg_base{w:04d}{i:014d}",  # same length as a message id
                    "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": sig,
                }
                try:
                    async with session.post(
                        url, data=body, headers=headers, allow_redirects=False
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            ok += 1
                        else:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1

        cpu0 = time.process_time()
        first_send = time.time()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        last_done = time.time()
        fire_cpu_s = time.process_time() - cpu0
    return {
        "sent": ok + errors,
        "ok": ok,
        "errors": errors,
        "first_send": first_send,
        "last_done": last_done,
        "rate": ok / (last_done - first_send) if last_done > first_send else 0.0,
        "concurrency": concurrency,
        "body_bytes": len(body),
        # CPU of the sending loop alone (no interpreter start-up): the baseline's cost per request
        "fire_cpu_s": round(fire_cpu_s, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.baseline")
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--max-s", type=float, default=60.0)
    p.add_argument("--size", type=int, default=PAYLOAD_BYTES)
    a = p.parse_args()
    emit(run(fire(a.url, a.n, a.concurrency, a.max_s, a.size)))


if __name__ == "__main__":
    main()
