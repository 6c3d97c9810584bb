"""Micro-benchmark: a bare uvicorn server answering small POSTs with uvicorn's own httptools
protocol (head and body in two socket writes) and with hookpost's coalescing one (one write),
alternating in the same run. Prints the server process's CPU-µs per request (user + system,
from /proc) and the rate, per round and as medians.

    .venv/bin/python -m bench.response_writes [--rounds 6] [--requests 40000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

import uvloop

from bench.common import free_port, wait_port
from bench.procs import cpu_seconds

CONCURRENCY = 64
BODY = b'{"eventType":"a.b"}'
REQUEST = (
    b"POST /api/v1/app/app_x/msg HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
)
REPLY = b'{"id":"msg_' + b"x" * 27 + b'","eventType":"a.b","payload":{},"timestamp":"2026"}'


async def _app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(REPLY))]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": REPLY})


def _serve(port: int, protocol: str) -> None:
    import uvicorn

    from hookpost.api.transport import CoalescingHttpToolsProtocol

    http = CoalescingHttpToolsProtocol if protocol == "coalescing" else "httptools"
    uvicorn.run(
        _app,
        host="127.0.0.1",
        port=port,
        http=http,  # type: ignore[arg-type]
        loop="uvloop",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


async def _client(port: int, n: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(n):
        writer.write(REQUEST)
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(len(REPLY))
    writer.close()


async def _load(port: int, requests: int) -> None:
    await asyncio.gather(*(_client(port, requests // CONCURRENCY) for _ in range(CONCURRENCY)))


def _round(protocol: str, requests: int) -> tuple[float, float]:
    port = free_port()
    code = f"from bench.response_writes import _serve; _serve({port}, {protocol!r})"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        if not wait_port(port, 15.0):
            raise SystemExit(f"server did not start (exit code {proc.poll()})")
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        uvloop.run(_load(port, requests))
        seconds, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait()
    return cpu / requests * 1e6, requests / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=40_000)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"httptools": [], "coalescing": []}
    for i in range(args.rounds):
        for protocol in results:
            cpu_us, rate = _round(protocol, args.requests)
            results[protocol].append(cpu_us)
            print(f"round {i + 1} {protocol:>10}: {cpu_us:5.1f} CPU-µs/request, {rate:,.0f}/s")
    base, new = (statistics.median(results[p]) for p in ("httptools", "coalescing"))
    print(f"median: httptools {base:.1f}, coalescing {new:.1f} CPU-µs/request ({new / base:.2f}x)")


if __name__ == "__main__":
    main()
