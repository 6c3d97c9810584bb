"""Starting hookpost processes and accounting for their CPU time and peak memory via /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, child_env, clk_tck


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds; 0 if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / clk_tck()


def child_pids(pid: int) -> list[int]:
    """Live children of ``pid`` (``hookpost serve`` runs its worker as a child process)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat. Steal is
    time the hypervisor gave this VM's CPUs to someone else."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts[:8]]
    idle = values[3] + values[4]
    steal = values[7]
    return (sum(values[:7]) - idle) / clk_tck(), steal / clk_tck()


BENCH_DB_MARK = b"hookpost_bench_"  # every database the bench creates starts with this


def cpu_snapshot() -> dict[int, tuple[str, int, float]]:
    """pid -> (command name, parent pid, CPU seconds) for every process on the machine."""
    snap: dict[int, tuple[str, int, float]] = {}
    tck = clk_tck()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        if comm == "postgres":  # a backend serving one of the bench's databases is ours
            try:
                title = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            except OSError:
                title = b""
            if BENCH_DB_MARK in title:
                comm = "postgres:bench"
        fields = raw.rsplit(")", 1)[1].split()
        snap[int(entry.name)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / tck)
    return snap


def background_cpu(
    before: dict[int, tuple[str, int, float]], after: dict[int, tuple[str, int, float]]
) -> float:
    """CPU seconds used between two snapshots by processes that are not the bench's own (its
    descendants: hookpost, nginx, load generators) nor PostgreSQL backends serving the bench's
    databases: other people's work on the machine, which the bench cannot control but reports.
    (PostgreSQL's shared processes - checkpointer, WAL writer, autovacuum - count as other.)"""
    me = os.getpid()

    def ours(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            if pid == me:
                return True
            pid = after.get(pid, before.get(pid, ("", 0, 0.0)))[1]
            seen += 1
        return False

    total = 0.0
    for pid, (comm, _ppid, cpu) in after.items():
        if ours(pid) or comm == "postgres:bench" or comm.startswith("kworker"):
            continue
        total += cpu - before.get(pid, (comm, 0, 0.0))[2] if pid in before else cpu
    return max(0.0, total)


def postgres_backends_cpu(db_name: str) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backend processes connected to ``db_name`` (found by
    their process title, ``postgres: 15/main: <user> <db> <client> <state>``)."""
    out: dict[int, float] = {}
    needle = f" {db_name} "
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(b"postgres:") and needle.encode() in title:
            out[int(entry.name)] = cpu_seconds(int(entry.name))
    return out


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass
class HookpostProc:
    role: str  # serve | api | worker
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    cpu_mark: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def family(self) -> list[tuple[str, int]]:
        """(role, pid) of this process and its children (``serve``'s worker process)."""
        kids = child_pids(self.pid) if self.role == "serve" else []
        return [(self.role, self.pid)] + [(f"{self.role}:worker", pid) for pid in kids]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for _, pid in self.family())

    def peak_rss_mb(self) -> float:
        """The largest peak RSS of any one process of the family."""
        return max(status_kb(pid, "VmHWM") / 1024 for _, pid in self.family())

    def rss_mb(self) -> float:
        return status_kb(self.pid, "VmRSS") / 1024

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def hookpost_env(settings: dict[str, str]) -> dict[str, str]:
    env = child_env({k: v for k, v in os.environ.items() if not k.startswith("HOOKPOST_")})
    env.update({f"HOOKPOST_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def spawn(
    role: str, settings: dict[str, str], log_path: Path, port: int | None = None
) -> HookpostProc:
    """``hookpost <role>`` (serve | api | worker) as a child process of the bench."""
    args = [sys.executable, "-m", "hookpost.cli", role]
    s = dict(settings)
    if port is not None:
        s["port"] = str(port)
        s["host"] = "127.0.0.1"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=hookpost_env(s),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return HookpostProc(role, proc, log_path, port)


class StartupFailed(RuntimeError):
    pass


def wait_banner(p: HookpostProc, timeout: float = 60.0) -> None:
    """Wait for hookpost's start-up banner (printed once the store is open and migrated)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not p.alive():
            raise StartupFailed(
                f"hookpost {p.role} exited with {p.proc.returncode}:\n{p.log_tail()}"
            )
        try:
            text = p.log_path.read_text(errors="replace")
        except OSError:
            text = ""
        if "admin token" in text:
            return
        time.sleep(0.05)
    raise StartupFailed(f"hookpost {p.role} did not start within {timeout:.0f}s:\n{p.log_tail()}")


@dataclass
class Accounting:
    """CPU and peak memory of a group of processes over one measured interval."""

    procs: list[HookpostProc] = field(default_factory=list)
    start_cpu: dict[int, float] = field(default_factory=dict)
    start_machine: tuple[float, float] = (0.0, 0.0)
    started_at: float = 0.0
    snapshot: dict[int, tuple[str, int, float]] = field(default_factory=dict)
    db_name: str | None = None  # PostgreSQL: also count the backends serving this database
    start_pg: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        self.start_cpu = {pid: cpu_seconds(pid) for p in self.procs for _, pid in p.family()}
        if self.db_name:
            self.start_pg = postgres_backends_cpu(self.db_name)
        self.start_machine = machine_cpu()
        self.snapshot = cpu_snapshot()
        self.started_at = time.monotonic()

    def stop(self) -> dict[str, Any]:
        members = [(role, pid) for p in self.procs for role, pid in p.family()]
        cpu = {pid: cpu_seconds(pid) - self.start_cpu.get(pid, 0.0) for _, pid in members}
        busy, steal = machine_cpu()
        wall = time.monotonic() - self.started_at
        other = background_cpu(self.snapshot, cpu_snapshot())
        pg_cpu = None
        if self.db_name:
            now = postgres_backends_cpu(self.db_name)
            pg_cpu = round(sum(c - self.start_pg.get(pid, 0.0) for pid, c in now.items()), 3)
        return {
            "wall_s": round(wall, 3),
            "hookpost_cpu_s": round(sum(cpu.values()), 3),
            "machine_busy_cpu_s": round(busy - self.start_machine[0], 3),
            "steal_cores": round((steal - self.start_machine[1]) / wall, 2) if wall >= 1 else None,
            # PostgreSQL backends serving this scenario's database (None for SQLite)
            "postgres_cpu_s": pg_cpu,
            # CPU used by processes that are neither the bench's nor PostgreSQL's, in cores
            # (not meaningful over intervals shorter than a second)
            "background_cores": round(other / wall, 2) if wall >= 1.0 else None,
            "per_process": [
                {
                    "role": role,
                    "pid": pid,
                    "cpu_s": round(cpu[pid], 3),
                    "peak_rss_mb": round(status_kb(pid, "VmHWM") / 1024, 1),
                }
                for role, pid in members
            ],
            "peak_rss_mb": max((p.peak_rss_mb() for p in self.procs), default=0.0),
        }
