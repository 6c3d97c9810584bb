"""``python -m bench run``: the whole benchmark, one command.

    .venv/bin/python -m bench run                      # full run, SQLite and PostgreSQL
    .venv/bin/python -m bench run --quick              # seconds, tiny load (the smoke test)
    .venv/bin/python -m bench run --backend sqlite --scenario e2e,latency

Starts nginx (the receiver) and a misbehaving-endpoint server, measures the raw aiohttp
baseline against nginx, then runs each scenario on each backend with its own hookpost processes
and a fresh database, prints a table of targets and writes bench/results/<timestamp>.json.
See BENCHMARKS.md for the method.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import report
from bench.common import PAYLOAD_BYTES, RESULTS_DIR, ROOT, child_env, free_port, wait_port
from bench.nginx import ReceiverUnavailable, ensure_nginx, start_nginx, start_python_receiver
from bench.pg import DEFAULT_SERVER, PgDatabases
from bench.procs import background_cpu, cpu_snapshot, loadavg
from bench.scenarios import (
    SCENARIOS,
    Ctx,
    Sizes,
    baseline,
    near_baseline,
    near_pair,
    wants_near_baseline,
)

ALL_SCENARIOS = [
    "e2e",
    "e2e1",
    "e2e-inline",
    "e2e-aiohttp",
    "e2e-sdk",
    "ingest",
    "ingest-strict",
    "ingest-alerts",
    "e2e-alerts",
    "latency",
    "drain",
    "future-backlog",
    "backlog",
    "fairness",
    "isolation",
    "throttled",
    "fanout",
    "fanout-filtered",
]


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_rev() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "hookpost"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def main_key() -> str:
    import base64

    return base64.b64encode(os.urandom(32)).decode()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the benchmark")
    r.add_argument("--quick", action="store_true", help="tiny load, runs in seconds")
    r.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    r.add_argument(
        "--scenario",
        default="all",
        help=f"comma-separated subset of: {', '.join(ALL_SCENARIOS)} (default all), or "
        "`sustained` (10 minutes at 1,000 msg/s per stack: on request only), or `cleanup` "
        "(e2e with and without a cleanup of 300,000 old messages: on request only), or `stats` "
        "(a 30-day stats report over 5 million attempts: on request only)",
    )
    r.add_argument("--out", help="JSON path (default bench/results/<timestamp>.json)")
    r.add_argument(
        "--pg-url",
        default=os.environ.get("HOOKPOST_BENCH_PG", DEFAULT_SERVER),
        help="a PostgreSQL server URL with rights to CREATE/DROP DATABASE; the bench"
        " creates a throwaway database per scenario and drops it",
    )
    r.add_argument(
        "--pg-workers",
        type=int,
        default=1,
        help="hookpost worker processes on PostgreSQL (one API process)",
    )
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra HOOKPOST_* setting for every hookpost process, e.g. "
        "claim_batch=256 (the results record it)",
    )
    r.add_argument("--payload-bytes", type=int, default=PAYLOAD_BYTES)
    r.add_argument(
        "--backlog-rows", type=int, help="future deliveries for `future-backlog` (1,000,000)"
    )
    r.add_argument("--due-backlog", help="`backlog`: due deliveries per run, e.g. 20000,400000")
    r.add_argument("--due-endpoints", help="`backlog`: endpoints per run, e.g. 2,1,1000")
    r.add_argument("--sustained-s", type=float, help="`sustained`: how long the load runs (600)")
    r.add_argument(
        "--repeats",
        type=int,
        help="rounds of drain / backlog (4) and clean/bad pairs of isolation (5); medians",
    )
    r.add_argument(
        "--profile",
        default="",
        help="py-spy the hookpost processes in these scenarios (e.g. e2e,drain,isolation)",
    )
    r.add_argument(
        "--profile-rate",
        type=int,
        default=100,
        metavar="HZ",
        help="py-spy samples per second with --profile (100)",
    )
    r.add_argument("--no-install", action="store_true", help="never apt-get install nginx")
    r.add_argument(
        "--install",
        action="store_true",
        help="with --quick: apt-get install nginx if missing (instead of falling back)",
    )
    r.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    r.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement, wait (up to this many seconds in total over "
        "the run) until other processes use less than 0.3 CPU cores",
    )
    rep = sub.add_parser("report", help="print a results JSON as tables")
    rep.add_argument("file", help="a bench/results/*.json file")
    rep.add_argument("--markdown", action="store_true", help="Markdown (for BENCHMARKS.md)")
    r.add_argument("-v", "--verbose", action="store_true", help="log each step with the time")
    return p.parse_args(argv)


QUIET_CORES = 0.3


class Quiet:
    """Waits for other people's work on the machine to calm down, within a time budget."""

    def __init__(self, budget_s: float, log: Any) -> None:
        self.budget = budget_s
        self.log = log
        self.waited = 0.0

    def wait(self) -> float:
        bg = background_cores(1.0)
        while bg > QUIET_CORES and self.waited < self.budget:
            self.log(f"  (other processes use {bg:.1f} cores; waiting for a quieter moment)")
            time.sleep(2.0)
            self.waited += 3.0
            bg = background_cores(1.0)
        return bg


def background_cores(seconds: float) -> float:
    before = cpu_snapshot()
    time.sleep(seconds)
    return background_cpu(before, cpu_snapshot()) / seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "report":
        results = json.loads(Path(args.file).read_text())
        print(report.markdown(results) if args.markdown else report.table(results))
        if not args.markdown and results.get("profiles"):
            print(report.profile_table(results))
        return 0
    return run_bench(args)


def _stop_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: processes, databases


def run_bench(args: argparse.Namespace) -> int:
    # SIGTERM and SIGINT stop the run cleanly (the uvloop runs in between may leave SIGINT
    # without Python's default handler, so set both explicitly)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    started = time.time()

    def log(msg: str) -> None:
        print(msg, flush=True)

    scenarios = (
        ALL_SCENARIOS
        if args.scenario == "all"
        else [s.strip() for s in args.scenario.split(",") if s.strip()]
    )
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        log(f"bench: unknown scenario(s) {unknown}; choose from {ALL_SCENARIOS}")
        return 2
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    sizes = Sizes.quick() if args.quick else Sizes.full()
    if args.backlog_rows is not None:
        sizes.backlog_rows = args.backlog_rows
    if args.sustained_s is not None:
        sizes.sustained_s = args.sustained_s
    if args.due_backlog:
        sizes.due_backlog = tuple(int(n) for n in args.due_backlog.split(","))
    if args.due_endpoints:
        sizes.due_endpoints = tuple(int(n) for n in args.due_endpoints.split(","))
    if args.repeats is not None:
        sizes.repeats = sizes.iso_repeats = max(1, args.repeats)

    pg = None
    notes: list[str] = []
    if "postgres" in backends:
        pg = PgDatabases(args.pg_url)
        why = pg.check()
        if why is not None:
            msg = f"PostgreSQL not reachable at {args.pg_url}: {why}"
            if args.backend == "postgres":
                log(f"bench: {msg}")
                return 2
            log(f"bench: {msg}; skipping the PostgreSQL backend")
            notes.append(msg + " (PostgreSQL backend skipped)")
            backends.remove("postgres")
            pg = None

    workdir = Path(tempfile.mkdtemp(prefix="hookpost-bench-"))
    receiver = None
    bad = None
    try:
        try:
            # --quick (the CI smoke test) never runs apt-get: without nginx it falls back
            install = not args.no_install and (not args.quick or args.install)
            receiver = start_nginx(ensure_nginx(install, log), workdir)
        except ReceiverUnavailable as exc:
            if not args.quick:
                log(f"bench: {exc}")
                return 2
            log(
                f"bench: {exc}\nbench: --quick falls back to a Python aiohttp receiver "
                "(results are labelled receiver=python-fallback)"
            )
            notes.append(f"receiver: python-fallback ({exc})")
            receiver = start_python_receiver(workdir)
        bad_port = free_port()
        bad = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.receivers",
                "bad",
                "--port",
                str(bad_port),
                "--slow-s",
                "1.0",
            ],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "bad.log", "wb"),
            start_new_session=True,
        )
        if not wait_port(bad_port, 10):
            raise RuntimeError("the misbehaving-endpoint server did not start")

        settings = {
            "admin_token": "hpk_bench_" + secrets.token_hex(16),
            "main_key": main_key(),
            "allow_subnets": "127.0.0.0/8",
        }
        for item in args.set:
            key, _, value = item.partition("=")
            settings[key.strip().lower().removeprefix("hookpost_")] = value.strip()

        profiler = None
        if args.profile:
            from bench.profile import Profiler, find_py_spy

            spy = find_py_spy()
            if spy is None:
                log("bench: --profile needs py-spy (.venv/bin/pip install py-spy); not profiling")
            else:
                profiler = Profiler(
                    spy, workdir / "profiles", set(args.profile.split(",")), args.profile_rate
                )

        ctx = Ctx(
            workdir=workdir,
            receiver=receiver,
            bad_port=bad_port,
            sizes=sizes,
            settings=settings,
            pg=pg,
            pg_workers=args.pg_workers,
            payload_size=args.payload_bytes,
            log=log,
            profile=profiler,
            notes=notes,
            verbose=args.verbose,
        )
        results: dict[str, Any] = {
            "meta": {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "command": " ".join([".venv/bin/python -m bench", *(argv_of(args))]),
                "quick": args.quick,
                "machine": machine_info(),
                "receiver": {"kind": receiver.kind, "version": receiver.version},
                "hookpost_git": git_rev(),
                "hookpost_settings": {
                    k: v for k, v in settings.items() if k not in ("admin_token", "main_key")
                },
                "payload_bytes": args.payload_bytes,
                "sizes": sizes.__dict__,
                "loadavg_at_start": loadavg(),
                "backends": backends,
                "scenarios": scenarios,
            },
            "baseline": {"runs": []},
            "backends": {b: {} for b in backends},
            "notes": notes,
        }

        quiet = Quiet(args.wait_quiet, log)
        bg = background_cores(2.0)
        results["meta"]["background_cores_at_start"] = round(bg, 2)
        log(f"bench: receiver {receiver.kind} on :{receiver.port}; workdir {workdir}")
        if bg > QUIET_CORES:
            log(
                f"bench: WARNING: other processes are using {bg:.1f} CPU cores; the figures will "
                "be lower and noisier than on a quiet machine (see the bg column)"
            )
            notes.append(f"other processes used {bg:.1f} cores when the bench started")
        quiet.wait()
        log("bench: baseline (raw aiohttp -> nginx) ...")
        results["baseline"]["runs"].append(baseline(ctx, "start"))
        log(f"  {results['baseline']['runs'][-1]['rate']:.0f} req/s")

        for backend in backends:
            for name in scenarios:
                quiet.wait()
                log(f"bench: {backend} / {name} (load avg {loadavg():.2f}) ...")
                t0 = time.monotonic()
                near = wants_near_baseline(name, backend)
                try:
                    before = near_baseline(ctx, f"{backend}-{name}-before") if near else 0.0
                    out = SCENARIOS[name](ctx, backend)
                    if near and "error" not in out:
                        after = near_baseline(ctx, f"{backend}-{name}-after")
                        out["near_baseline"] = near_pair(before, after)
                except Exception as exc:  # one broken scenario must not lose the others
                    traceback.print_exc()
                    out = {"error": f"{type(exc).__name__}: {exc}"}
                    notes.append(f"{backend}/{name} failed: {out['error'][:300]}")
                out["seconds"] = round(time.monotonic() - t0, 1)
                results["backends"][backend][name] = out
                log(f"  {report.one_line(name, out)}")

        quiet.wait()
        log("bench: baseline again (drift check) ...")
        results["baseline"]["runs"].append(baseline(ctx, "end"))
        rates = [r["rate"] for r in results["baseline"]["runs"]]
        results["baseline"]["rate"] = max(rates)
        results["baseline"]["spread"] = round(1 - min(rates) / max(rates), 3) if max(rates) else 0
        if profiler is not None:
            results["profiles"] = profiler.results
        results["targets"] = report.targets(results)
        results["measures"] = report.measures(results)
        results["meta"]["duration_s"] = round(time.time() - started, 1)
        results["meta"]["loadavg_at_end"] = loadavg()

        out_path = (
            Path(args.out)
            if args.out
            else RESULTS_DIR
            / (
                dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                + ("-quick" if args.quick else "")
                + ".json"
            )
        )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2))
        print()
        print(report.table(results))
        if profiler is not None:
            print(report.profile_table(results))
        log(f"\nbench: results written to {out_path} ({results['meta']['duration_s']:.0f}s)")
        return 0
    finally:
        if bad is not None and bad.poll() is None:
            bad.terminate()
            bad.wait(5)
        if receiver is not None:
            receiver.stop()
        if pg is not None:
            pg.drop_all()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"bench: kept {workdir}")


def argv_of(args: argparse.Namespace) -> list[str]:
    out = ["run"]
    if args.quick:
        out.append("--quick")
    if args.backend != "both":
        out += ["--backend", args.backend]
    if args.scenario != "all":
        out += ["--scenario", args.scenario]
    for item in args.set:
        out += ["--set", item]
    if args.profile:
        out += ["--profile", args.profile]
        if args.profile_rate != 100:
            out += ["--profile-rate", str(args.profile_rate)]
    if args.repeats is not None:
        out += ["--repeats", str(args.repeats)]
    if args.wait_quiet:
        out += ["--wait-quiet", f"{args.wait_quiet:g}"]
    return out
