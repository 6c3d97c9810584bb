"""Optional sampling profile of hookpost processes under load (``--profile``), with py-spy.

py-spy is not a hookpost dependency; install it into the venv by hand
(``.venv/bin/pip install py-spy``). It samples the process from outside (--nonblocking: the
target is never paused), so the profile costs the measured process almost nothing; the
bench still reports figures from profiled runs as they are, so compare like with like.
Only the thread holding the GIL is sampled (``--gil``): in a CPython process that is the
work that competes for the one interpreter, i.e. what limits throughput. The summary lists the
functions with the most samples, "self" (the frame on top of the stack) and "total" (anywhere
on it, start-up scaffolding such as runpy/cli/threading left out). The raw folded stacks are
kept in the temp dir with --keep.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.procs import HookpostProc


def find_py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


class Recording:
    def __init__(
        self,
        profiler: Profiler,
        key: str,
        procs: list[tuple[str, int, Path, subprocess.Popen[bytes]]],
    ) -> None:
        self.profiler = profiler
        self.key = key
        self.procs = procs

    def stop(self) -> None:
        for role, pid, out, spy in self.procs:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(5)
            if out.exists():
                self.profiler.results[f"{self.key}/{role}-{pid}"] = summarize(out)


class Profiler:
    def __init__(self, binary: str, outdir: Path, scenarios: set[str], rate: int = 100) -> None:
        self.binary = binary
        self.outdir = outdir
        self.scenarios = scenarios
        self.rate = rate
        self.results: dict[str, Any] = {}

    def start(
        self, backend: str, scenario: str, procs: list[HookpostProc], label: str | None = None
    ) -> Recording | None:
        """Profile ``procs`` if ``scenario`` was asked for; ``label`` names the recording when
        one scenario has several (isolation's clean and bad rounds)."""
        if scenario not in self.scenarios:
            return None
        name = label or scenario
        self.outdir.mkdir(parents=True, exist_ok=True)
        running = []
        for role, pid in (member for hp in procs for member in hp.family()):
            out = self.outdir / f"{backend}-{name}-{role}-{pid}.folded"
            spy = subprocess.Popen(
                [
                    self.binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                    "--rate",
                    str(self.rate),
                    "--nonblocking",
                    "--threads",
                    "--gil",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            running.append((role, pid, out, spy))
        return Recording(self, f"{backend}/{name}", running)


def _short(frame: str) -> str:
    """'fn (/path/to/hookpost/x/y.py:12)' -> 'hookpost/x/y.py:fn'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{name}" if path else name


# Where the GIL time goes, by the first matching marker anywhere on the sampled stack.
CATEGORIES = (
    ("signing", "sign_headers"),
    ("delivery: outbound HTTP (aiohttp client)", "HttpSender.post"),
    ("delivery: worker bookkeeping (attempt, retry decision, ids)", "Sending.attempt"),
    ("delivery: worker bookkeeping (attempt, retry decision, ids)", "DeliveryWorker._deliver"),
    ("delivery: claim loop", "DeliveryWorker._claim"),
    ("delivery: recording results", "ResultWriter.run"),
    ("store: SQLite writer thread", "hookpost-sqlite-write"),
    ("store: SQLite reader threads", "hookpost-sqlite-read"),
    ("API: create-message handler", "CreateMessageFrontDoor"),
    ("API: create-message handler", "create_message (hookpost/api"),
    ("API: ASGI stack (uvicorn, starlette, fastapi, middleware)", "run_asgi"),
    ("API: uvicorn protocol", "httptools_impl.py"),
    ("delivery: aiohttp response callbacks", "aiohttp/"),
    ("PostgreSQL client (asyncpg) outside the above", "asyncpg/"),
)

SCAFFOLD = (
    "<frozen runpy>",
    "hookpost/cli.py:",
    "asyncio/runners.py:",
    "uvloop/__init__.py:",
    "threading.py:",
    "asyncio/base_events.py:run_forever",
    "asyncio/events.py:_run",
)


def summarize(path: Path, top: int = 20) -> dict[str, Any]:
    categories: Counter[str] = Counter()
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else ""
        if thread:
            frames = frames[1:]
        frames = [f for f in frames if not f.startswith("process ")]
        if not frames:
            continue
        total += n
        threads[thread or "?"] += n
        for name, marker in CATEGORIES:
            if marker in line:
                categories[name] += n
                break
        else:
            categories["other (event loop, asyncio, ...)"] += n
        self_counts[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            if not f.startswith(SCAFFOLD):
                total_counts[f] += n
    if not total:
        return {"samples": 0}

    def pct(c: Counter[str]) -> list[list[Any]]:
        return [[k, round(100 * v / total, 1)] for k, v in c.most_common(top)]

    return {
        "samples": total,
        "threads_pct": pct(threads),
        "categories_pct": pct(categories),
        "self_pct": pct(self_counts),
        "total_pct": pct(total_counts),
        "folded": str(path),
    }
