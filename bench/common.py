"""Small helpers shared by the bench's orchestrator and its child processes."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
LOOPBACK = "127.0.0.1"

# The payload every contender sends: one JSON object of about PAYLOAD_BYTES serialised bytes.
PAYLOAD_BYTES = 1024
EVENT_TYPE = "bench.event"


def payload(size: int = PAYLOAD_BYTES) -> dict[str, Any]:
    """A JSON object whose compact serialisation is exactly ``size`` bytes (size >= 64)."""
    base = {"type": EVENT_TYPE, "id": 1, "data": ""}
    overhead = len(json.dumps(base, separators=(",", ":")))
    base["data"] = "x" * max(0, size - overhead)
    return base


def payload_bytes(size: int = PAYLOAD_BYTES) -> bytes:
    return json.dumps(payload(size), separators=(",", ":")).encode()


# The bench's child processes cache bytecode here instead of recompiling every module at every
# start (this environment sets PYTHONDONTWRITEBYTECODE=1 and the venv ships no .pyc files, which
# makes each `hookpost` start-up take seconds). Nothing is written into the project or the venv.
PYCACHE = Path(os.environ.get("HOOKPOST_BENCH_PYCACHE", "/tmp/hookpost-bench-pycache"))


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, host: str = LOOPBACK) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def check_loopback(url: str) -> None:
    """The bench only ever talks to 127.0.0.1; refuse anything else outright."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname
    if host != LOOPBACK:
        raise SystemExit(f"bench: refusing to send traffic to {host!r}: only {LOOPBACK} is allowed")


def run(coro: Any) -> Any:
    """Run a coroutine on uvloop (as hookpost itself does), or asyncio if uvloop is missing."""
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def emit(obj: Any) -> None:
    """Child processes report one JSON object on the last line of stdout (with their CPU time)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    obj = {**obj, "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)}
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def clk_tck() -> int:
    return os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]
