"""The measured scenarios. Each one starts its own hookpost stack on a fresh database, offers a
bounded load, reads arrivals from the receiver's access log and returns a JSON-able dict."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import alert_rules, due_backlog
from bench import backlog as backlog_mod
from bench.common import EVENT_TYPE, LOOPBACK, ROOT, child_env, percentile, run
from bench.nginx import LogLine, Receiver, worker_pids
from bench.pg import PgDatabases
from bench.procs import Accounting, cpu_seconds, loadavg
from bench.stack import Stack


@dataclass
class Sizes:
    baseline_n: int
    baseline_max_s: float
    baseline_concurrency: int
    near_baseline_s: float  # the short baselines run next to each throughput measurement
    e2e_n: int
    e2e_endpoints: int  # e2e and drain: this many apps with one endpoint each, round-robin
    e2e_max_s: float  # the load generator stops at n messages or after this long
    ingest_n: int
    ingest_max_s: float
    latency_rate: float
    latency_s: float
    drain_n: int
    drain_max_s: float
    backlog_rows: int
    due_backlog: tuple[int, ...]  # `backlog`: due deliveries pre-loaded, per run
    due_endpoints: tuple[int, ...]  # `backlog`: over this many endpoints, per run
    due_measured: int  # `backlog`: the rate is taken over the first this many deliveries
    fair_backlog: int  # `fairness`: due on endpoint A before B's 10 are queued
    sustained_rate: float  # `sustained`: messages per second to an app with 2 endpoints
    sustained_s: float  # `sustained`: for this long
    iso_healthy: int
    iso_messages: int
    iso_max_s: float
    iso_repeats: int  # clean/bad pairs of rounds (the median of each is compared)
    fanout_endpoints: int
    fanout_repeats: int
    repeats: int  # rounds of drain / backlog / isolation (their median is reported)
    wait_s: float  # the longest the bench waits for deliveries to arrive, per scenario
    cleanup_old: int  # `cleanup`: old messages (x4 rows with their delivery and attempts)
    stats_attempts: int  # `stats`: attempts over 30 days (with half as many messages)

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            baseline_n=60_000,
            baseline_max_s=8.0,
            baseline_concurrency=256,
            near_baseline_s=3.0,
            e2e_n=15_000,
            e2e_endpoints=8,
            e2e_max_s=25.0,
            ingest_n=15_000,
            ingest_max_s=12.0,
            latency_rate=500.0,
            latency_s=10.0,
            drain_n=10_000,
            drain_max_s=20.0,
            backlog_rows=1_000_000,
            due_backlog=(20_000, 400_000),
            due_endpoints=(2,),
            due_measured=20_000,
            fair_backlog=500_000,
            sustained_rate=1_000.0,
            sustained_s=600.0,
            iso_healthy=20,
            # 30,000 healthy deliveries per round (~9 s): identical 3 s rounds spread +-15%,
            # and a longer round also sees the slow endpoint's first retries (5 s).
            iso_messages=1_500,
            iso_max_s=15.0,
            iso_repeats=5,
            fanout_endpoints=1000,
            fanout_repeats=3,
            # 4, not 2: identical drain rounds have differed by 65% (4,116 vs 2,499/s), and
            # target 4 compares two medians taken minutes apart
            repeats=4,
            wait_s=120.0,
            cleanup_old=300_000,  # 1.2 M rows: the cleanup outlasts the e2e load
            stats_attempts=5_000_000,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            baseline_n=2_000,
            baseline_max_s=3.0,
            baseline_concurrency=64,
            near_baseline_s=1.0,
            e2e_n=300,
            e2e_endpoints=8,
            e2e_max_s=10.0,
            ingest_n=300,
            ingest_max_s=10.0,
            latency_rate=100.0,
            latency_s=1.5,
            drain_n=300,
            drain_max_s=10.0,
            backlog_rows=10_000,
            due_backlog=(2_000, 20_000),
            due_endpoints=(2,),
            due_measured=2_000,
            fair_backlog=5_000,
            sustained_rate=100.0,
            sustained_s=3.0,
            iso_healthy=20,
            iso_messages=15,
            iso_max_s=10.0,
            iso_repeats=1,
            fanout_endpoints=50,
            fanout_repeats=1,
            repeats=1,
            wait_s=30.0,
            cleanup_old=5_000,
            stats_attempts=20_000,
        )


@dataclass
class Ctx:
    workdir: Path
    receiver: Receiver
    bad_port: int
    sizes: Sizes
    settings: dict[str, str]  # HOOKPOST_* for every process (lower-case keys, no prefix)
    pg: PgDatabases | None
    pg_workers: int
    payload_size: int
    log: Callable[[str], None] = print
    verbose: bool = False
    profile: Any = None  # a Profiler, when --profile is on
    notes: list[str] = field(default_factory=list)

    def step(self, what: str) -> None:
        if self.verbose:
            self.log(f"    {time.strftime('%H:%M:%S')} {what}")

    def stack(self, backend: str, label: str) -> Stack:
        return Stack(backend, label, self.workdir, self.settings, self.pg, self.pg_workers)

    @property
    def nginx(self) -> str:
        return self.receiver.base_url


# --------------------------------------------------------------------------- helpers


def child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m <args>`` (a bench child process) and return its JSON summary line."""
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def loadgen(ctx: Ctx, stack: Stack, mode: str, app: str, out: Path, **kw: Any) -> dict[str, Any]:
    ctx.step(f"load generator: {mode} {kw}")
    args = [
        "bench.loadgen",
        mode,
        "--base",
        stack.api.base,
        "--token",
        ctx.settings["admin_token"],
        "--app",
        app,
        "--out",
        str(out),
        "--size",
        str(ctx.payload_size),
    ]
    for k, v in kw.items():
        flag = f"--{k.replace('_', '-')}"
        if v is True:
            args.append(flag)
        elif v is not False:
            args += [flag, str(v)]
    return child(args, timeout=float(kw.get("max_s", 120)) + 60)


def read_accepts(path: Path) -> dict[str, float]:
    accepted: dict[str, float] = {}
    for line in path.read_text().splitlines():
        msg_id, at, _sent = line.split("\t")
        accepted[msg_id] = float(at)
    return accepted


def api_response_times(path: Path) -> dict[str, Any]:
    """How long the API took to answer 202 (request sent -> response read), in ms."""
    values = sorted(
        (float(at) - float(sent)) * 1000
        for _m, at, sent in (line.split("\t") for line in path.read_text().splitlines())
    )
    if not values:
        return {"n": 0}
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(values[-1], 1),
    }


def latency_stats(lines: list[LogLine], accepted: dict[str, float]) -> dict[str, Any]:
    """Receipt ($msec) minus the time the API's 202 reached the client, in milliseconds."""
    values = sorted(
        (ln.at - accepted[ln.webhook_id]) * 1000 for ln in lines if ln.webhook_id in accepted
    )
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(values[-1], 1),
        "mean_ms": round(statistics.fmean(values), 1),
        # nginx logs with millisecond resolution, and a delivery can land before the 202
        # reaches the client; these show up as small negative values
        "negative": sum(v < 0 for v in values),
    }


def duplicates(lines: list[LogLine]) -> int:
    return len(lines) - len({(ln.uri, ln.webhook_id) for ln in lines})


class ReceiverCpu:
    def __init__(self, receiver: Receiver) -> None:
        self.pids = worker_pids(receiver)
        self.start = sum(cpu_seconds(p) for p in self.pids)
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        used = sum(cpu_seconds(p) for p in self.pids) - self.start
        wall = time.monotonic() - self.t0
        return {
            "receiver_cpu_s": round(used, 3),
            "receiver_cpu_util": round(used / wall, 3) if wall > 0 else 0.0,
        }


def med(values: Any) -> Any:
    """The median of the non-None values (None if there are none)."""
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 3) if vals else None


def with_db(usage: dict[str, Any]) -> float:
    """hookpost's CPU plus, on PostgreSQL, the CPU of the database backends serving it."""
    return float(usage["hookpost_cpu_s"]) + float(usage.get("postgres_cpu_s") or 0.0)


def per_1k(cpu_s: float, deliveries: int) -> float | None:
    return round(cpu_s / (deliveries / 1000), 3) if deliveries else None


def idle_cores(procs: list[Any], stack: Stack, seconds: float) -> dict[str, float]:
    """hookpost's CPU (and with its PostgreSQL backends) while it has nothing to do, in
    cores: what any wait costs, whatever is waited for."""
    acct = Accounting(procs, db_name=stack.pg_db_name)
    acct.start()
    time.sleep(seconds)
    usage = acct.stop()
    wall = usage["wall_s"]
    return {
        "hookpost": round(usage["hookpost_cpu_s"] / wall, 4),
        "with_db": round(with_db(usage) / wall, 4),
    }


def alert_catch_up(
    ctx: Ctx,
    stack: Stack,
    acct: Accounting,
    app_ids: list[str],
    load: dict[str, Any],
    idle: dict[str, float],
    count: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Issue 22: after the load (``load``: its usage), wait until the alert evaluator has
    counted every message, so that its work is in the cost (bench.alert_rules). The usage
    until then, and the evaluator's figures: how long it took, and the CPU per 1,000 (hookpost;
    with its PostgreSQL backends) less what hookpost uses idle over that wait."""
    ctx.step("waiting for the alert evaluator to count every message")
    waited = alert_rules.wait_counted(stack, app_ids, ctx.sizes.wait_s)
    usage = acct.stop()
    if waited is None:
        ctx.notes.append(
            f"{stack.label}/{stack.backend}: the alert evaluator had not counted every message"
            f" within {ctx.sizes.wait_s:.0f}s after the load"
        )
    tail_s = usage["wall_s"] - load["wall_s"]
    return usage, {
        "caught_up_s": waited,  # from the end of the load (the last delivery, in e2e)
        "tail_s": round(tail_s, 2),
        "tail_cpu_s": round(usage["hookpost_cpu_s"] - load["hookpost_cpu_s"], 3),
        "idle_cores": idle,
        "cpu_s_per_1k_less_idle": per_1k(
            usage["hookpost_cpu_s"] - idle["hookpost"] * tail_s, count
        ),
        "cpu_s_per_1k_with_db_less_idle": per_1k(with_db(usage) - idle["with_db"] * tail_s, count),
    }


def one_app(
    ctx: Ctx,
    stack: Stack,
    prefix: str,
    n_endpoints: int = 1,
    extra: list[dict[str, Any]] | None = None,
) -> str:
    """An app with ``n_endpoints`` endpoints (every message goes to all of them, unless
    ``extra`` gives them filters)."""
    app: str = run(stack.api.create_app(f"bench {prefix}"))
    urls = [f"{ctx.nginx}{prefix}{i}" for i in range(n_endpoints)]
    run(stack.api.create_endpoints(app, urls, extra=extra))
    return app


def fanout_filters(n: int) -> list[dict[str, Any]]:
    """``fanout-filtered``: a payload filter per endpoint, each a different one (so each is
    compiled), as a subscriber would write it; the even-numbered endpoints' filters match the
    bench's payload (``bench.common.payload``: type, id 1, data), the odd ones' do not."""
    return [
        {
            "payloadFilter": {
                "type": {"$in": [EVENT_TYPE, f"other.{i}"]},
                "id": {"$gte": 1} if i % 2 == 0 else {"$gt": 1},
                "$or": [{"data": {"$exists": True}}, {"customer.tier": f"tier-{i}"}],
            }
        }
        for i in range(n)
    ]


def apps_one_endpoint_each(ctx: Ctx, stack: Stack, prefix: str, n_apps: int) -> str:
    """``n_apps`` apps with one endpoint each; returns the ids comma-separated for the load
    generator, which sends to them round-robin (one message = one delivery)."""
    apps = []
    for i in range(n_apps):
        app = run(stack.api.create_app(f"bench {prefix}{i}"))
        run(stack.api.create_endpoints(app, [f"{ctx.nginx}{prefix}{i}"]))
        apps.append(app)
    return ",".join(apps)


def wait_delivered(ctx: Ctx, mark: int, prefix: str, count: int) -> list[LogLine]:
    timeout = ctx.sizes.wait_s
    ctx.step(f"waiting for {count} deliveries under {prefix}")
    got = ctx.receiver.wait_for(mark, prefix, count, timeout)
    ctx.step(f"got {len(got)}")
    if len(got) < count:
        ctx.notes.append(f"{prefix}: only {len(got)} of {count} deliveries within {timeout:.0f}s")
    return got


# --------------------------------------------------------------------------- baseline


def baseline(ctx: Ctx, label: str, max_s: float | None = None) -> dict[str, Any]:
    s = ctx.sizes
    max_s = s.baseline_max_s if max_s is None else max_s
    prefix = f"/base/{label}/"
    mark = ctx.receiver.mark()
    rcpu = ReceiverCpu(ctx.receiver)
    out = child(
        [
            "bench.baseline",
            "--url",
            f"{ctx.nginx}{prefix}",
            "--n",
            str(s.baseline_n),
            "--concurrency",
            str(s.baseline_concurrency),
            "--max-s",
            str(max_s),
            "--size",
            str(ctx.payload_size),
        ],
        timeout=max_s + 60,
    )
    lines = ctx.receiver.wait_for(mark, prefix, out["ok"], 10)
    rate = 0.0
    if lines:
        rate = len(lines) / (max(ln.at for ln in lines) - out["first_send"])
    return {
        "requests": out["ok"],
        "errors": out["errors"],
        "concurrency": out["concurrency"],
        "body_bytes": out["body_bytes"],
        "client_rate": round(out["rate"], 1),
        # the same clock as hookpost's figures: first request sent -> last receipt in the log
        "rate": round(rate, 1),
        "client_cpu_s": out["cpu_s"],
        "cpu_ms_per_request": round(1000 * out["fire_cpu_s"] / out["ok"], 4) if out["ok"] else None,
        **rcpu.stop(),
    }


# The machine's speed drifts by up to 2x within minutes (BENCHMARKS.md), so a throughput is
# also divided by short baselines run right before and right after it: the same machine phase.
NEAR_BASELINE_SCENARIOS = (
    "e2e",
    "e2e1",
    "e2e-inline",
    "e2e-aiohttp",
    "e2e-sdk",
    "drain",
    "fanout",
    "fanout-filtered",
)


def wants_near_baseline(name: str, backend: str) -> bool:
    return name in NEAR_BASELINE_SCENARIOS and not (name == "e2e-inline" and backend != "sqlite")


def near_baseline(ctx: Ctx, label: str) -> float:
    """A short baseline (req/s) for the measurement about to run or just run."""
    return float(baseline(ctx, f"near-{label}", ctx.sizes.near_baseline_s)["rate"])


def near_pair(before: float, after: float) -> dict[str, float]:
    return {"before": before, "after": after, "rate": round((before + after) / 2, 1)}


# --------------------------------------------------------------------------- end to end


def e2e(
    ctx: Ctx,
    backend: str,
    endpoints: int | None = None,
    extra: dict[str, str] | None = None,
    label: str | None = None,
    client: str = "raw",
    idempotency_keys: bool = False,
    alongside: Callable[[Stack], Callable[[], dict[str, Any]]] | None = None,
    rules: int = 0,
) -> dict[str, Any]:
    """Targets 1 and 3: N messages at max rate (64 API clients), round-robin over 8 apps with
    one endpoint each (one message = one delivery; 8 endpoints so that the per-endpoint
    in-flight limit, 32 by default, is not what caps the total of 256);
    deliveries/s = N / (first 202 -> last receipt). The API ingest rate comes from the same
    run (real configuration: the worker delivers while the API ingests). ``alongside(stack)``
    starts something that runs during the load, and returns what collects its result.
    ``rules``: that many alert rules over the apps, and the CPU counted until the alert
    evaluator has counted every message (alert_catch_up)."""
    s = ctx.sizes
    n_endpoints = endpoints or s.e2e_endpoints
    label = label or ("e2e" if endpoints is None else f"e2e{endpoints}")
    stack = ctx.stack(backend, label)
    try:
        ctx.step("starting hookpost")
        procs = stack.start(stack.full_roles(), extra)
        ctx.step("started")
        prefix = f"/{label}/{backend}/"
        app = apps_one_endpoint_each(ctx, stack, prefix, n_endpoints)
        idle: dict[str, float] = {}
        if rules:  # issue 22: alert rules spread over the apps (bench.alert_rules)
            idle = idle_cores(procs, stack, alert_rules.IDLE_PROBE_S)
            run(alert_rules.create_rules(stack.api, app.split(","), rules))
        mark = ctx.receiver.mark()
        acct = Accounting(procs, db_name=stack.pg_db_name)
        acct.start()
        rcpu = ReceiverCpu(ctx.receiver)
        prof = ctx.profile.start(backend, label, procs) if ctx.profile else None
        # one endpoint is slower (it is capped at MAX_IN_FLIGHT_PER_ENDPOINT): offer less
        n = s.e2e_n if endpoints is None else max(1, s.e2e_n // 3)
        collect = alongside(stack) if alongside is not None else None
        gen = loadgen(
            ctx,
            stack,
            "burst",
            app,
            stack.dir / "accepts.tsv",
            n=n,
            concurrency=64,
            max_s=s.e2e_max_s,
            client=client,
            idempotency_keys=idempotency_keys,
        )
        lines = wait_delivered(ctx, mark, prefix, gen["accepted"])
        usage = acct.stop()
        rc = rcpu.stop()
        delivered = len({ln.webhook_id for ln in lines})
        alerts: dict[str, Any] = {}
        if rules:  # the CPU counted until the evaluator has counted every message
            load = usage
            usage, evaluator = alert_catch_up(
                ctx, stack, acct, app.split(","), load, idle, delivered
            )
            alerts = {
                "evaluator": evaluator,
                "cpu_s_per_1k_load": per_1k(load["hookpost_cpu_s"], delivered),
                "cpu_s_per_1k_with_db_load": per_1k(with_db(load), delivered),
                "usage_load": load,
            }
        beside = {"alongside": collect()} if collect is not None else {}
        if prof:
            prof.stop()
        accepted = read_accepts(stack.dir / "accepts.tsv")
        last = max((ln.at for ln in lines), default=gen["first_accept"])
        span = last - gen["first_accept"]
        return {
            "messages": gen["accepted"],
            "endpoints": n_endpoints,
            "settings": extra or {},
            "loadgen_client": client,
            "idempotency_keys": idempotency_keys,
            "api_codes": gen["codes"],
            "api_errors": gen["errors"],
            "delivered": delivered,
            "duplicates": duplicates(lines),
            "deliveries_per_s": round(delivered / span, 1) if span > 0 else 0.0,
            "ingest_per_s": round(gen["rate"], 1),
            "latency_under_saturation": latency_stats(lines, accepted),
            "cpu_s_per_1k": per_1k(usage["hookpost_cpu_s"], delivered),
            "cpu_s_per_1k_with_db": per_1k(with_db(usage), delivered),
            "loadgen_cpu_s": gen["cpu_s"],
            **rc,
            "usage": usage,
            **alerts,
            **beside,
        }
    finally:
        stack.close()


def cleanup(ctx: Ctx, backend: str) -> dict[str, Any]:
    """Issue 21: e2e with and without a cleanup deleting an old backlog meanwhile. The backlog
    (bench.cleanup fill: cleanup_old messages over 120 days, a delivery and two attempts each)
    is written before the load starts, in both runs; in the second, `bench.cleanup run`
    (RetentionService, as `hookpost cleanup --older-than 30d` runs it) starts with the load.
    Reported beside the two throughputs: its longest batch (on SQLite, one write transaction:
    the longest write-lock hold) and, on PostgreSQL, the latency of claims made meanwhile."""
    old = ctx.sizes.cleanup_old

    def fill(stack: Stack) -> None:
        ctx.step(f"writing {old:,} old messages")
        child(["bench.cleanup", "fill", "--db", stack.db_url, "--messages", str(old)], 1800)

    def with_backlog(run_cleanup: bool) -> Callable[[Stack], Callable[[], dict[str, Any]]]:
        def start(stack: Stack) -> Callable[[], dict[str, Any]]:
            fill(stack)
            if not run_cleanup:
                return lambda: {}
            env = child_env(
                {
                    **os.environ,
                    **{f"HOOKPOST_{k.upper()}": str(v) for k, v in stack.settings.items()},
                }
            )
            # stderr to a file, not a pipe: a pipe nobody reads until the end fills up, and
            # the child then blocks on a log line (once seen as a "4-s claim stall").
            errors = tempfile.TemporaryFile(mode="w+")
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.cleanup", "run", "--db", stack.db_url],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )

            def collect() -> dict[str, Any]:
                out, _ = proc.communicate(timeout=1800)
                errors.seek(0)
                err = errors.read()
                errors.close()
                lines = out.strip().splitlines()
                if err.strip():
                    print(f"bench.cleanup run stderr: {err.strip()[-800:]}", file=sys.stderr)
                if proc.returncode != 0 or not lines:
                    raise RuntimeError(f"bench.cleanup run failed: {err.strip()[-800:]}")
                result: dict[str, Any] = json.loads(lines[-1])
                return result

            return collect

        return start

    # The workers' own cleanup ran at their start, before the backlog: not again during a run.
    quiet = {"cleanup_every_s": "86400"}
    without = e2e(ctx, backend, extra=quiet, label="cleanup-off", alongside=with_backlog(False))
    during = e2e(ctx, backend, extra=quiet, label="cleanup-on", alongside=with_backlog(True))
    done = during.get("alongside", {})
    return {
        "old_messages": old,
        "deliveries_per_s_without": without["deliveries_per_s"],
        "deliveries_per_s_with": during["deliveries_per_s"],
        "cpu_s_per_1k_without": without["cpu_s_per_1k_with_db"],
        "cpu_s_per_1k_with": during["cpu_s_per_1k_with_db"],
        "cleanup": done,
        "delivered": during["delivered"],
        "messages": during["messages"],
        "duplicates": during["duplicates"],
        "runs": {"without": without, "with": during},
    }


# The bench payload's JSON Schema (bench.common.payload), for `ingest-strict`.
BENCH_SCHEMA = {
    "type": "object",
    "required": ["type", "id", "data"],
    "properties": {
        "type": {"const": EVENT_TYPE},
        "id": {"type": "integer", "minimum": 0},
        "data": {"type": "string", "maxLength": 1_048_576},
    },
}


def ingest(ctx: Ctx, backend: str, strict: bool = False, rules: int = 0) -> dict[str, Any]:
    """API ingest alone: an app with no endpoints, so no deliveries are created. ``strict``:
    with HOOKPOST_STRICT_EVENT_TYPES=1 and the event type's JSON Schema (issue 19's cost).
    ``rules``: that many alert rules on the app (issue 22's cost, bench.alert_rules), and the
    CPU counted until the alert evaluator has counted every message (alert_catch_up)."""
    s = ctx.sizes
    label = "ingest-strict" if strict else "ingest-alerts" if rules else "ingest"
    stack = ctx.stack(backend, label)
    try:
        ctx.step("starting hookpost")
        extra = {"strict_event_types": "1"} if strict else None
        procs = stack.start(stack.full_roles(), extra)
        ctx.step("started")
        if strict:
            run(stack.api.create_event_type(EVENT_TYPE, {"1": BENCH_SCHEMA}))
        app = run(stack.api.create_app("bench ingest"))
        idle: dict[str, float] = {}
        if rules:
            idle = idle_cores(procs, stack, alert_rules.IDLE_PROBE_S)
            run(alert_rules.create_rules(stack.api, [app], rules))
        acct = Accounting(procs, db_name=stack.pg_db_name)
        acct.start()
        gen = loadgen(
            ctx,
            stack,
            "burst",
            app,
            stack.dir / "accepts.tsv",
            n=s.ingest_n,
            concurrency=64,
            max_s=s.ingest_max_s,
        )
        usage = acct.stop()
        n = gen["accepted"]
        alerts: dict[str, Any] = {}
        if rules:  # the CPU counted until the evaluator has counted every message
            load = usage
            usage, evaluator = alert_catch_up(ctx, stack, acct, [app], load, idle, n)
            alerts = {
                "evaluator": evaluator,
                "cpu_s_per_1k_messages_load": per_1k(load["hookpost_cpu_s"], n),
                "cpu_s_per_1k_messages_with_db_load": per_1k(with_db(load), n),
                "usage_load": load,
            }
        return {
            "messages": n,
            "api_codes": gen["codes"],
            "api_errors": gen["errors"],
            "ingest_per_s": round(gen["rate"], 1),
            "cpu_s_per_1k_messages": per_1k(usage["hookpost_cpu_s"], n),
            "cpu_s_per_1k_messages_with_db": per_1k(with_db(usage), n),
            "loadgen_cpu_s": gen["cpu_s"],
            "usage": usage,
            **alerts,
        }
    finally:
        stack.close()


def latency(ctx: Ctx, backend: str) -> dict[str, Any]:
    """Target 2: open-loop 500 msg/s to an app with one endpoint."""
    s = ctx.sizes
    stack = ctx.stack(backend, "latency")
    try:
        ctx.step("starting hookpost")
        procs = stack.start(stack.full_roles())
        ctx.step("started")
        prefix = f"/lat/{backend}/"
        app = one_app(ctx, stack, prefix)
        mark = ctx.receiver.mark()
        acct = Accounting(procs, db_name=stack.pg_db_name)
        acct.start()
        gen = loadgen(
            ctx,
            stack,
            "paced",
            app,
            stack.dir / "accepts.tsv",
            rate=s.latency_rate,
            duration=s.latency_s,
            max_s=s.latency_s + 30,
        )
        lines = wait_delivered(ctx, mark, prefix, gen["accepted"])
        usage = acct.stop()
        accepted = read_accepts(stack.dir / "accepts.tsv")
        return {
            "offered_rate": round(gen["offered_rate"], 1),
            "offered": gen["offered"],
            "accepted": gen["accepted"],
            "api_codes": gen["codes"],
            "skipped": gen["skipped_over_outstanding"],
            "delivered": len({ln.webhook_id for ln in lines}),
            "duplicates": duplicates(lines),
            **latency_stats(lines, accepted),
            "api_response": api_response_times(stack.dir / "accepts.tsv"),
            "cpu_s_per_1k": per_1k(usage["hookpost_cpu_s"], len(lines)),
            "usage": usage,
        }
    finally:
        stack.close()


# --------------------------------------------------------------------------- drain / backlog


def drain(ctx: Ctx, backend: str, backlog_rows: int = 0) -> dict[str, Any]:
    """The worker draining a pre-loaded queue (target 4 compares this with and without a
    backlog of deliveries scheduled for later). Each round: messages go in through
    `hookpost api` with no worker running; the API stops; `hookpost serve` (SQLite) or
    `hookpost worker` (PostgreSQL) starts, drains them and stops. Rate = deliveries / (first
    receipt -> last receipt); CPU is counted from the first receipt, so start-up is excluded.
    The backlog, if any, is inserted once, before the first round. The result is the median
    round (the rate varies from run to run by more than the effects measured here)."""
    s = ctx.sizes
    label = "future-backlog" if backlog_rows else "drain"
    stack = ctx.stack(backend, label)
    try:
        inserted = None
        rounds = []
        apps = ""
        for rnd in range(s.repeats):
            prefix = f"/{label}/{backend}/r{rnd}/"
            ctx.step(f"round {rnd}: starting the API only")
            [api_proc] = stack.start(["api"])
            # the same apps every round; each round's endpoints get a fresh URL prefix
            apps = apps_one_endpoint_each(ctx, stack, prefix, s.e2e_endpoints)
            gen = loadgen(
                ctx,
                stack,
                "burst",
                apps,
                stack.dir / f"accepts-{rnd}.tsv",
                n=s.drain_n,
                concurrency=64,
                max_s=s.drain_max_s,
            )
            ctx.step(f"pre-loaded {gen['accepted']} messages; stopping the API")
            stack.stop([api_proc])
            if backlog_rows and inserted is None:
                ctx.log(f"  inserting {backlog_rows:,} future deliveries ...")
                if backend == "sqlite":
                    inserted = backlog_mod.insert_sqlite(
                        stack.sqlite_path or "", backlog_rows, ctx.nginx, ctx.payload_size
                    )
                else:
                    inserted = backlog_mod.insert_postgres(
                        stack.db_url, backlog_rows, ctx.nginx, ctx.payload_size
                    )
            rounds.append(drain_round(ctx, stack, label, prefix, gen["accepted"]))
        return {
            **rounds[0],
            "deliveries_per_s": med(r["deliveries_per_s"] for r in rounds),
            "cpu_s_per_1k": med(r["cpu_s_per_1k"] for r in rounds),
            "cpu_s_per_1k_with_db": med(r["cpu_s_per_1k_with_db"] for r in rounds),
            "rounds": [r["deliveries_per_s"] for r in rounds],
            "round_details": rounds,
            "endpoints": s.e2e_endpoints,
            "backlog": inserted,
            "backlog_delivered_early": sum(r["backlog_delivered_early"] for r in rounds),
            "delivered": min(r["delivered"] for r in rounds),
            "messages": min(r["messages"] for r in rounds),
            "duplicates": sum(r["duplicates"] for r in rounds),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        }
    finally:
        stack.close()


def drain_round(ctx: Ctx, stack: Stack, label: str, prefix: str, messages: int) -> dict[str, Any]:
    mark = ctx.receiver.mark()
    ctx.step("starting the worker")
    procs = stack.start(stack.worker_roles())
    acct = Accounting(procs, db_name=stack.pg_db_name)
    # the CPU clock starts at the first delivery, so start-up is not counted
    ctx.receiver.wait_for(mark, prefix, 1, 60)
    acct.start()
    seen_at_start = len(ctx.receiver.since(mark, prefix))
    prof = ctx.profile.start(stack.backend, label, procs) if ctx.profile else None
    ctx.step("draining")
    lines = wait_delivered(ctx, mark, prefix, messages)
    usage = acct.stop()
    if prof:
        prof.stop()
    counted = len(lines) - seen_at_start
    cpu_note = "from the first delivery"
    if counted < len(lines) / 2:  # tiny loads (--quick) drain before the bench can look
        usage["hookpost_cpu_s"] = sum(p.cpu() for p in procs)
        counted, cpu_note = len(lines), "since process start (includes start-up)"
    stack.stop(procs)
    times = sorted(ln.at for ln in lines)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "messages": messages,
        "delivered": len({ln.webhook_id for ln in lines}),
        "duplicates": duplicates(lines),
        "deliveries_per_s": round((len(times) - 1) / span, 1) if span > 0 else 0.0,
        "cpu_s_per_1k": per_1k(usage["hookpost_cpu_s"], counted),
        "cpu_s_per_1k_with_db": per_1k(with_db(usage), counted),
        "cpu_counted": cpu_note,
        "backlog_delivered_early": len(ctx.receiver.since(mark, "/future/")),
        "peak_rss_mb": round(usage["peak_rss_mb"], 1),
        "usage": usage,
    }


def backlog(ctx: Ctx, backend: str) -> dict[str, Any]:
    """Burst recovery (issue 26): a DUE backlog pre-loaded with no worker running, then the
    worker's drain rate, for each size in ``due_backlog`` and endpoint count in
    ``due_endpoints``. The rate is taken over the first ``due_measured`` deliveries (first to
    last receipt), so a 400,000 backlog is timed while it is still 95% there; the worker
    then stops, the rest is not drained. A fresh database per run."""
    s = ctx.sizes
    runs: dict[str, Any] = {}
    for n_ep in s.due_endpoints:
        for rows in s.due_backlog:
            key = f"{rows}x{n_ep}"
            stack = ctx.stack(backend, f"due-{key}")
            try:
                prefix = f"/due/{backend}/{key}/"
                [api_proc] = stack.start(["api"])  # migrates the database
                stack.stop([api_proc])
                ctx.log(f"  inserting {rows:,} due deliveries on {n_ep} endpoint(s) ...")
                insert = (
                    due_backlog.insert_sqlite
                    if backend == "sqlite"
                    else due_backlog.insert_postgres
                )
                where = stack.sqlite_path or "" if backend == "sqlite" else stack.db_url
                url = f"{ctx.nginx}{prefix}"
                inserted = insert(
                    where, rows, n_ep, url, ctx.payload_size, ctx.settings["main_key"]
                )
                measured = min(s.due_measured, inserted["rows"])
                mark = ctx.receiver.mark()
                procs = stack.start(stack.worker_roles())
                lines = wait_delivered(ctx, mark, prefix, measured)
                stack.stop(procs)
                times = sorted(ln.at for ln in lines)[:measured]
                span = times[-1] - times[0] if len(times) > 1 else 0.0
                rate = round((len(times) - 1) / span, 1) if span > 0 else 0.0
                ctx.log(f"  {backend} {rows:,} due x {n_ep} endpoint(s): {rate:,.0f}/s")
                runs[key] = {
                    "due": inserted["rows"],
                    "endpoints": n_ep,
                    "insert_s": inserted["seconds"],
                    "measured": len(times),
                    "deliveries_per_s": rate,
                    "duplicates": duplicates(lines),
                }
            finally:
                stack.close()
    return {"runs": runs}


def fairness(ctx: Ctx, backend: str) -> dict[str, Any]:
    """Issue 26: ``fair_backlog`` due on endpoint A, then 10 on endpoint B (queued after A's,
    so behind all of them in due order), no worker running; then the worker starts. Reports
    when B's 10 arrive: after the worker's start and after the first delivery of all."""
    s = ctx.sizes
    stack = ctx.stack(backend, "fairness")
    try:
        prefix = f"/fair/{backend}/"
        [api_proc] = stack.start(["api"])  # migrates the database
        stack.stop([api_proc])
        insert = due_backlog.insert_sqlite if backend == "sqlite" else due_backlog.insert_postgres
        where = stack.sqlite_path or "" if backend == "sqlite" else stack.db_url
        ctx.log(f"  inserting {s.fair_backlog:,} due deliveries on A, then 10 on B ...")
        key = ctx.settings["main_key"]
        insert(where, s.fair_backlog, 1, f"{ctx.nginx}{prefix}a", ctx.payload_size, key)
        insert(where, 10, 1, f"{ctx.nginx}{prefix}b", ctx.payload_size, key)
        mark = ctx.receiver.mark()
        started = time.time()
        procs = stack.start(stack.worker_roles())
        ready = time.time()
        small = ctx.receiver.wait_for(mark, f"{prefix}b", 10, s.wait_s)
        first = ctx.receiver.since(mark, prefix)
        stack.stop(procs)
        first_at = min(ln.at for ln in first)
        last_b = max(ln.at for ln in small) if small else float("nan")
        out = {
            "backlog_on_a": s.fair_backlog,
            "b_delivered": len(small),
            "b_last_after_spawn_s": round(last_b - started, 3),
            "b_last_after_ready_s": round(last_b - ready, 3),
            "b_last_after_first_delivery_s": round(last_b - first_at, 3),
            "a_delivered_before_b_done": sum(
                1 for ln in first if ln.uri.startswith(f"{prefix}a") and ln.at <= last_b
            ),
        }
        ctx.log(f"  {backend} fairness: {out}")
        return out
    finally:
        stack.close()


def sustained(ctx: Ctx, backend: str) -> dict[str, Any]:
    """Issue 26: open-loop ``sustained_rate`` msg/s for ``sustained_s`` to an app with 2
    endpoints. Reports the deliveries still owed when the load stops (kept up: under one
    second's worth) and how long the rest took. SQLite: `serve`; PostgreSQL: `serve`, then
    `api` + 2 `worker`s."""
    variants = [["serve"]] if backend == "sqlite" else [["serve"], ["api", "worker", "worker"]]
    out: dict[str, Any] = {}
    for roles in variants:
        name = "+".join(roles)
        stack = ctx.stack(backend, f"sustained-{len(roles)}")
        try:
            prefix = f"/sus/{backend}/{len(roles)}/"
            procs = stack.start(roles)
            app = one_app(ctx, stack, prefix, n_endpoints=2)
            mark = ctx.receiver.mark()
            acct = Accounting(procs, db_name=stack.pg_db_name)
            acct.start()
            gen = loadgen(
                ctx,
                stack,
                "paced",
                app,
                stack.dir / "accepts.tsv",
                rate=ctx.sizes.sustained_rate,
                duration=ctx.sizes.sustained_s,
                max_s=ctx.sizes.sustained_s + 30,
            )
            stopped = time.time()
            at_end = len(ctx.receiver.since(mark, prefix))
            owed = 2 * gen["accepted"] - at_end
            lines = wait_delivered(ctx, mark, prefix, 2 * gen["accepted"])
            usage = acct.stop()
            last = max((ln.at for ln in lines), default=stopped)
            out[name] = {
                "offered_rate": round(gen["offered_rate"], 1),
                "accepted": gen["accepted"],
                "skipped": gen["skipped_over_outstanding"],
                "deliveries_owed_at_end": owed,
                "seconds_owed_at_end": round(owed / (2 * ctx.sizes.sustained_rate), 2),
                "delivered": len({(ln.webhook_id, ln.uri) for ln in lines}),
                "drained_after_end_s": round(max(0.0, last - stopped), 2),
                "duplicates": duplicates(lines),
                "usage": usage,
            }
            ctx.log(f"  {backend} sustained {name}: {out[name]}")
        finally:
            stack.close()
    return out


# --------------------------------------------------------------------------- isolation


THROTTLED_RATE = 50  # deliveries/s of the `throttled` scenario's throttled endpoint


def isolation_run(ctx: Ctx, backend: str, variant: str, round_no: int = 0) -> dict[str, Any]:
    """One round: 20 healthy endpoints alone (``clean``), or beside one never-answering and
    one slow 500 endpoint (``bad``), or beside one endpoint throttled to THROTTLED_RATE
    (``throttled``, issue 20) that every message also goes to."""
    s = ctx.sizes
    label = f"iso-{variant}"
    # A stack of its own per round: on SQLite a reused label would reuse the database file,
    # and the previous bad round's never-answering deliveries would still be due in it.
    stack = ctx.stack(backend, f"{label}-{round_no}")
    try:
        ctx.step("starting hookpost")
        procs = stack.start(stack.full_roles())
        ctx.step("started")
        prefix = f"/{label}/{backend}/"
        paced_prefix = f"/{label}-paced/{backend}/"
        app = run(stack.api.create_app(f"bench {label}"))
        urls = [f"{ctx.nginx}{prefix}h{i}" for i in range(s.iso_healthy)]
        extra: list[dict[str, Any]] = [{} for _ in urls]
        if variant == "bad":
            bad = f"http://{LOOPBACK}:{ctx.bad_port}"
            urls += [f"{bad}/never/{backend}", f"{bad}/slow500/{backend}"]
            extra += [{}, {}]
        elif variant == "throttled":
            urls.append(f"{ctx.nginx}{paced_prefix}t")
            extra.append({"throttleRate": THROTTLED_RATE})
        run(stack.api.create_endpoints(app, urls, extra=extra))
        mark = ctx.receiver.mark()
        acct = Accounting(procs, db_name=stack.pg_db_name)
        acct.start()
        prof = (
            ctx.profile.start(backend, "isolation", procs, label=f"{label}-{round_no}")
            if ctx.profile
            else None
        )
        gen = loadgen(
            ctx,
            stack,
            "burst",
            app,
            stack.dir / "accepts.tsv",
            n=s.iso_messages,
            concurrency=64,
            max_s=s.iso_max_s,
        )
        want = gen["accepted"] * s.iso_healthy
        lines = wait_delivered(ctx, mark, prefix, want)
        usage = acct.stop()
        if prof:
            prof.stop()
        last = max((ln.at for ln in lines), default=gen["first_accept"])
        span = last - gen["first_accept"]
        out = {
            "messages": gen["accepted"],
            "healthy_endpoints": s.iso_healthy,
            "bad_endpoints": 2 if variant == "bad" else 0,
            "healthy_delivered": len(lines),
            "healthy_expected": want,
            "healthy_deliveries_per_s": round(len(lines) / span, 1) if span > 0 else 0.0,
            "usage": usage,
        }
        if variant == "throttled":
            # its rate while the healthy ones were delivered (it has a backlog throughout)
            paced = sorted(ln.at for ln in ctx.receiver.since(mark, paced_prefix))
            window = (paced[-1] - paced[0]) if len(paced) > 1 else 0.0
            out["throttled_rate_limit"] = THROTTLED_RATE
            out["throttled_deliveries"] = len(paced)
            out["throttled_rate"] = round((len(paced) - 1) / window, 2) if window else None
        return out
    finally:
        # the never-answering endpoint holds requests open until the request timeout, and a
        # graceful stop would wait for them: the result is already measured, so do not wait
        stack.close(timeout=15.0 if variant == "clean" else 3.0)


def isolation(ctx: Ctx, backend: str, variant: str = "bad") -> dict[str, Any]:
    """Target 5: 20 healthy endpoints, with and without one never-answering endpoint and one
    that answers 500 slowly (``throttled``: one endpoint throttled to THROTTLED_RATE instead),
    every message going to every endpoint of the app. The two variants alternate (clean,
    other, clean, other, ...) on fresh stacks; the drop compares the medians."""
    clean_runs: list[dict[str, Any]] = []
    bad_runs: list[dict[str, Any]] = []
    # A short baseline between rounds: each round is also divided by the two around it.
    before = near_baseline(ctx, f"{backend}-iso-0")
    for i in range(ctx.sizes.iso_repeats):
        for kind, runs in (("clean", clean_runs), (variant, bad_runs)):
            out = isolation_run(ctx, backend, kind, round_no=i)
            after = near_baseline(ctx, f"{backend}-iso-{2 * i + 1 + (kind != 'clean')}")
            out["near_baseline"] = near_pair(before, after)
            rate = out["near_baseline"]["rate"]
            out["ratio_to_near_baseline"] = (
                round(out["healthy_deliveries_per_s"] / rate, 4) if rate else None
            )
            runs.append(out)
            before = after

    def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
        rates = [r["healthy_deliveries_per_s"] for r in runs]
        ratios = [r["ratio_to_near_baseline"] for r in runs]
        return {
            **runs[0],
            "healthy_deliveries_per_s": med(rates),
            "rounds": rates,
            "ratio_to_near_baseline": med(ratios),
            "round_ratios": ratios,
            "round_near_baselines": [r["near_baseline"] for r in runs],
            "round_usage": [r["usage"] for r in runs],
        }

    clean, bad = median(clean_runs), median(bad_runs)
    a, b = clean["healthy_deliveries_per_s"], bad["healthy_deliveries_per_s"]
    na, nb = clean["ratio_to_near_baseline"], bad["ratio_to_near_baseline"]
    complete = all(r["healthy_delivered"] == r["healthy_expected"] for r in clean_runs + bad_runs)
    result = {
        "clean": clean,
        "with_bad" if variant == "bad" else "with_throttled": bad,
        "complete": complete,
        "drop_raw": round(1 - b / a, 3) if a else None,
        # the verdict's figure: each round as a share of the baselines around it
        "drop": round(1 - nb / na, 3) if na and nb is not None else None,
    }
    if variant == "throttled":
        result["throttled_rate"] = med([r["throttled_rate"] for r in bad_runs])
        result["throttled_rate_limit"] = THROTTLED_RATE
    return result


# --------------------------------------------------------------------------- fan-out


def fanout(ctx: Ctx, backend: str, filtered: bool = False) -> dict[str, Any]:
    """Target 6: one message to 1,000 endpoints; deliveries/s = 1000 / (202 -> last receipt).
    ``filtered`` (``fanout-filtered``, issue 19): each endpoint has a payload filter, and half
    of them match (deliveries/s counts the 500 deliveries made)."""
    s = ctx.sizes
    label = "fanout-filtered" if filtered else "fanout"
    stack = ctx.stack(backend, label)
    try:
        ctx.step("starting hookpost")
        # 1,000 endpoints in one app: over the default quota (HOOKPOST_MAX_ENDPOINTS_PER_APP)
        procs = stack.start(stack.full_roles(), extra={"max_endpoints_per_app": "0"})
        ctx.step("started")
        prefix = f"/{label}/{backend}/"
        t0 = time.monotonic()
        extra = fanout_filters(s.fanout_endpoints) if filtered else None
        app = one_app(ctx, stack, prefix, s.fanout_endpoints, extra)
        setup_s = time.monotonic() - t0
        matching = (s.fanout_endpoints + 1) // 2 if filtered else s.fanout_endpoints
        wanted = {f"{prefix}{i}" for i in range(0, s.fanout_endpoints, 2 if filtered else 1)}
        runs = []
        acct = Accounting(procs, db_name=stack.pg_db_name)
        acct.start()
        for _ in range(s.fanout_repeats):
            mark = ctx.receiver.mark()
            msg_id, accepted_at = run(stack.api.send(app, ctx.payload_size))
            lines = wait_delivered(ctx, mark, prefix, matching)
            lines = [ln for ln in lines if ln.webhook_id == msg_id]
            strays = [ln.uri for ln in lines if ln.uri not in wanted]
            if strays:  # a filter that should not have matched did
                ctx.notes.append(f"{label}: {len(strays)} deliveries to filtered-out endpoints")
            last = max((ln.at for ln in lines), default=accepted_at)
            span = last - accepted_at
            runs.append(
                {
                    "delivered": len(lines),
                    "seconds": round(span, 3),
                    "deliveries_per_s": round(len(lines) / span, 1) if span > 0 else 0.0,
                    **latency_stats(lines, {msg_id: accepted_at}),
                }
            )
        usage = acct.stop()
        rates = sorted(r["deliveries_per_s"] for r in runs)
        return {
            "endpoints": s.fanout_endpoints,
            "matching_endpoints": matching,
            "endpoint_setup_s": round(setup_s, 2),
            "runs": runs,
            "deliveries_per_s": rates[len(rates) // 2],
            "cpu_s_per_1k": per_1k(usage["hookpost_cpu_s"], sum(r["delivered"] for r in runs)),
            "usage": usage,
        }
    finally:
        stack.close()


def e2e_inline(ctx: Ctx, backend: str) -> dict[str, Any]:
    if backend != "sqlite":
        return {"skipped": "`serve` is the SQLite configuration"}
    return e2e(ctx, backend, extra={"serve_worker": "inline"}, label="e2e-inline")


def stats(ctx: Ctx, backend: str) -> dict[str, Any]:
    """Issue 21: a 30-day application stats report over `stats_attempts` attempts written
    straight into a fresh database (bench/stats.py): the rollup pass's catch-up, then the
    report's time (first and median of five), beside the raw read the rollups replace."""
    stack = ctx.stack(backend, "stats")
    try:
        n = ctx.sizes.stats_attempts
        ctx.step(f"writing {n:,} attempts, rolling them up, timing the 30-day report")
        return child(["bench.stats", "--db", stack.db_url, "--attempts", str(n)], 3600)
    finally:
        stack.close()


SCENARIOS: dict[str, Callable[[Ctx, str], dict[str, Any]]] = {
    "e2e": e2e,
    # the same with ONE endpoint: capped by MAX_IN_FLIGHT_PER_ENDPOINT rather than the total
    "e2e1": lambda ctx, backend: e2e(ctx, backend, 1),
    # `serve` with the worker in the API's process (one core for both), as before the split
    "e2e-inline": e2e_inline,
    # the load generator on aiohttp's client (3x the CPU per request of the raw client)
    "e2e-aiohttp": lambda ctx, backend: e2e(ctx, backend, label="e2e-aiohttp", client="aiohttp"),
    # every request with a fresh idempotency-key, as the official svix SDKs send them
    "e2e-sdk": lambda ctx, backend: e2e(ctx, backend, label="e2e-sdk", idempotency_keys=True),
    "ingest": ingest,
    # issue 19: the same with the strict catalog and a JSON Schema checked per message
    "ingest-strict": lambda ctx, backend: ingest(ctx, backend, strict=True),
    # issue 22: the same two with 1,000 active alert rules on their apps
    "ingest-alerts": lambda ctx, backend: ingest(ctx, backend, rules=alert_rules.RULES),
    "e2e-alerts": lambda ctx, backend: e2e(
        ctx, backend, label="e2e-alerts", rules=alert_rules.RULES
    ),
    "latency": latency,
    "drain": lambda ctx, backend: drain(ctx, backend, 0),
    # target 4: the drain with a million deliveries scheduled for later
    "future-backlog": lambda ctx, backend: drain(ctx, backend, ctx.sizes.backlog_rows),
    # issue 26: the drain of a due backlog (burst recovery)
    "backlog": backlog,
    "fairness": fairness,
    "sustained": sustained,
    "isolation": isolation,
    # issue 20: the same beside one throttled endpoint instead of two bad ones
    "throttled": lambda ctx, backend: isolation(ctx, backend, "throttled"),
    "fanout": fanout,
    # issue 19: the same with a payload filter on every endpoint, half of them matching
    "fanout-filtered": lambda ctx, backend: fanout(ctx, backend, filtered=True),
    # issue 21: e2e while a cleanup deletes an old backlog (bench/cleanup.py)
    "cleanup": cleanup,
    # issue 21: a 30-day stats report over 5 million attempts (bench/stats.py)
    "stats": stats,
}


def machine_load() -> float:
    return loadavg()
