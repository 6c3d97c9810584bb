"""Turning scenario results into the targets table, the summary measures and console output."""

from __future__ import annotations

from typing import Any

BACKEND_LABEL = {"sqlite": "SQLite (serve)", "postgres": "PostgreSQL (api+worker)"}
E2E_RATIO = {"sqlite": 0.50, "postgres": 0.40}
P99_MS = {"sqlite": 50.0, "postgres": 100.0}
INGEST_MIN = 2000.0
BACKLOG_MIN_RATIO = 0.80
BACKLOG_RSS_MB = 300.0
ISOLATION_MAX_DROP = 0.10
ALERT_RULES_MAX_COST = 0.10  # issue 22: ingest and e2e cost with 1,000 rules, over without


def _get(d: dict[str, Any], *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _usages(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    """Every process-accounting record of a scenario, however deeply its rounds nest them."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "per_process" in node and "wall_s" in node:
                found.append(node)
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(scenario)
    return found


def _background(scenario: dict[str, Any]) -> float:
    """The most CPU other processes on the machine used during the scenario, in cores."""
    values = [u.get("background_cores") for u in _usages(scenario)]
    return max((v for v in values if v is not None), default=0.0)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    base = _get(results, "baseline", "rate") or 0.0
    rows: list[dict[str, Any]] = []

    def ratio(x: float | None) -> float | None:
        """``x`` over the run's baseline (the higher of the start and end runs)."""
        return round(x / base, 3) if x is not None and base else None

    def near_ratio(x: float | None, scenario: dict[str, Any]) -> float | None:
        """``x`` over the short baselines run right before and after its scenario (the same
        phase of a machine whose speed drifts); the run's baseline when there are none."""
        near = _get(scenario, "near_baseline", "rate")
        if x is None or not near:
            return ratio(x)
        return round(x / near, 3)

    runs = _get(results, "baseline", "runs") or []
    base_cpu = [r["cpu_ms_per_request"] for r in runs if r.get("cpu_ms_per_request")]
    base_ms = min(base_cpu) if base_cpu else None  # the cheapest run: the least disturbed

    def cpu_ratio(scenario: dict[str, Any]) -> float | None:
        """Baseline CPU per request / hookpost (+ PostgreSQL) CPU per delivery: the throughput
        ratio if both were CPU-bound on the same share of the machine. Far less sensitive to
        other processes than the wall-clock ratio."""
        ms = scenario.get("cpu_s_per_1k_with_db") or scenario.get("cpu_s_per_1k")
        return round(base_ms / ms, 3) if base_ms and ms else None

    def row(
        target: str,
        backend: str,
        name: str,
        measured: str,
        ratio_: float | None,
        threshold: str,
        ok: bool | None,
        value: Any = None,
        *scenarios: str,
        run_ratio: float | None = None,
    ) -> None:
        sc = results["backends"][backend]
        bg = [_background(sc.get(s, {})) for s in scenarios]
        first = sc.get(scenarios[0], {}) if scenarios else {}
        cpu = cpu_ratio(first) if target.startswith("1") else None
        rows.append(
            {
                "target": target,
                "backend": backend,
                "name": name,
                "measured": measured,
                "ratio_to_baseline": ratio_,
                "ratio_to_run_baseline": run_ratio,
                "cpu_ratio_to_baseline": cpu,
                "threshold": threshold,
                "result": _verdict(ok),
                "value": value,
                "background_cores": max(bg) if bg else None,
            }
        )

    for backend, sc in results.get("backends", {}).items():
        label = BACKEND_LABEL[backend]
        e2e = sc.get("e2e", {})
        rate = e2e.get("deliveries_per_s")
        e2e_near = near_ratio(rate, e2e)
        if "e2e" in sc:
            r = e2e_near
            complete = e2e.get("delivered") == e2e.get("messages")
            row(
                "1",
                backend,
                f"end-to-end deliveries/s, {label}",
                f"{rate:,.0f}/s" if rate is not None else "error",
                r,
                f">= {E2E_RATIO[backend]:.0%} of baseline",
                None if r is None else (r >= E2E_RATIO[backend] and complete),
                rate,
                "e2e",
                run_ratio=ratio(rate),
            )
        if "e2e1" in sc and "deliveries_per_s" in sc["e2e1"]:
            d = sc["e2e1"]["deliveries_per_s"]
            row(
                "1*",
                backend,
                f"end-to-end with ONE endpoint (info), {label}",
                f"{d:,.0f}/s",
                near_ratio(d, sc["e2e1"]),
                "info",
                None,
                d,
                "e2e1",
                run_ratio=ratio(d),
            )
        for key, what in (
            ("e2e-inline", "worker in the API's process (info)"),
            ("e2e-aiohttp", "load generator on aiohttp (info)"),
            ("e2e-sdk", "an idempotency key per request, as the svix SDKs send (info)"),
        ):
            if "deliveries_per_s" in sc.get(key, {}):
                d = sc[key]["deliveries_per_s"]
                ing = sc[key]["ingest_per_s"]
                row(
                    "1*",
                    backend,
                    f"end-to-end, {what}, {label}",
                    f"{d:,.0f}/s (ingest {ing:,.0f}/s)",
                    near_ratio(d, sc[key]),
                    "info",
                    None,
                    d,
                    key,
                    run_ratio=ratio(d),
                )
        if "drain" in sc and "deliveries_per_s" in sc["drain"]:
            d = sc["drain"]["deliveries_per_s"]
            row(
                "1*",
                backend,
                f"worker drain of a pre-loaded queue (info), {label}",
                f"{d:,.0f}/s",
                near_ratio(d, sc["drain"]),
                "info",
                None,
                d,
                "drain",
                run_ratio=ratio(d),
            )
        lat = sc.get("latency", {})
        if "latency" in sc:
            p99 = lat.get("p99_ms")
            offered_ok = lat.get("accepted", 0) >= 0.98 * lat.get("offered", 1) and lat.get(
                "delivered", 0
            ) >= lat.get("accepted", 1)
            row(
                "2",
                backend,
                f"latency p99 at {lat.get('offered_rate', 0):.0f} msg/s offered, {label}",
                (
                    f"p50 {lat.get('p50_ms')} / p95 {lat.get('p95_ms')} / p99 {p99} ms"
                    if p99 is not None
                    else "error"
                ),
                None,
                f"p99 <= {P99_MS[backend]:.0f} ms",
                None if p99 is None else (p99 <= P99_MS[backend] and offered_ok),
                p99,
                "latency",
            )
        if "e2e" in sc and e2e.get("ingest_per_s") is not None:
            ing = e2e["ingest_per_s"]
            is_target = backend == "sqlite"
            row(
                "3" if is_target else "3*",
                backend,
                f"API ingest msg/s, 64 clients, deliveries running, {label}",
                f"{ing:,.0f}/s",
                None,
                f">= {INGEST_MIN:,.0f}/s" if is_target else "info",
                (ing >= INGEST_MIN) if is_target else None,
                ing,
                "e2e",
            )
        if "ingest" in sc and sc["ingest"].get("ingest_per_s") is not None:
            ing = sc["ingest"]["ingest_per_s"]
            row(
                "3*",
                backend,
                f"API ingest msg/s, app without endpoints (info), {label}",
                f"{ing:,.0f}/s",
                None,
                "info",
                None,
                ing,
                "ingest",
            )
        if "ingest-strict" in sc and sc["ingest-strict"].get("ingest_per_s") is not None:
            ing = sc["ingest-strict"]["ingest_per_s"]
            plain = _get(sc, "ingest", "ingest_per_s")
            vs_plain = f" ({ing / plain:.2f} x ingest)" if plain else ""
            row(
                "3*",
                backend,
                f"API ingest msg/s, strict catalog + JSON Schema (info), {label}",
                f"{ing:,.0f}/s{vs_plain}",
                None,
                "info",
                None,
                ing,
                "ingest-strict",
            )
        for plain, with_rules, key, unit in (
            ("ingest", "ingest-alerts", "cpu_s_per_1k_messages_with_db", "messages"),
            ("e2e", "e2e-alerts", "cpu_s_per_1k_with_db", "deliveries"),
        ):
            # Issue 22: the CPU with 1,000 rules counted until the evaluator has counted every
            # message; "less idle" takes off what hookpost uses idle over that wait.
            a, b = _get(sc, with_rules, key), _get(sc, plain, key)
            if with_rules not in sc or plain not in sc:
                continue
            ev = _get(sc, with_rules, "evaluator") or {}
            less = ev.get("cpu_s_per_1k_with_db_less_idle")
            ok_ = None if less is None or not b else less / b - 1 <= ALERT_RULES_MAX_COST
            caught = ev.get("caught_up_s")
            after = "never caught up" if caught is None else f"caught up {caught} s after"
            row(
                "22",
                backend,
                f"1,000 alert rules: CPU s / 1,000 {unit} vs `{plain}`, {label}",
                f"{a:.3f} vs {b:.3f} = {a / b - 1:+.0%}; less idle {less:.3f} = "
                f"{less / b - 1:+.0%}; evaluator {after}"
                if a and b and less is not None
                else "error",
                None,
                f"<= +{ALERT_RULES_MAX_COST:.0%} (less idle)",
                ok_,
                None if not a or not b else round(a / b, 3),
                with_rules,
                plain,
            )
        if "future-backlog" in sc and "drain" in sc:
            b = _get(sc, "future-backlog", "deliveries_per_s")
            d = _get(sc, "drain", "deliveries_per_s")
            rss = _get(sc, "future-backlog", "peak_rss_mb")
            rows_in = _get(sc, "future-backlog", "backlog", "rows") or 0
            rel = round(b / d, 3) if b and d else None
            early = _get(sc, "future-backlog", "backlog_delivered_early") or 0
            ok = (
                None
                if rel is None
                else (rel >= BACKLOG_MIN_RATIO and (rss or 0) < BACKLOG_RSS_MB and early == 0)
            )
            row(
                "4",
                backend,
                f"drain with {rows_in:,} future deliveries vs empty, {label}",
                f"{b:,.0f}/s vs {d:,.0f}/s = {rel:.0%}; peak RSS {rss:.0f} MB"
                if rel is not None
                else "error",
                ratio(b),
                f">= {BACKLOG_MIN_RATIO:.0%} of empty; RSS < {BACKLOG_RSS_MB:.0f} MB",
                ok,
                rel,
                "drain",
                "future-backlog",
            )
        if "isolation" in sc:
            iso = sc["isolation"]
            drop = iso.get("drop")  # each round over the baselines around it
            raw = iso.get("drop_raw")
            clean = _get(iso, "clean", "healthy_deliveries_per_s")
            badr = _get(iso, "with_bad", "healthy_deliveries_per_s")
            nclean = _get(iso, "clean", "ratio_to_near_baseline")
            nbad = _get(iso, "with_bad", "ratio_to_near_baseline")
            complete = bool(iso.get("complete"))
            row(
                "5",
                backend,
                f"20 healthy endpoints + never-answers + slow 500, {label}",
                f"{nbad:.3f} vs {nclean:.3f} x near baseline clean = {-drop:+.0%} "
                f"(raw {badr:,.0f}/s vs {clean:,.0f}/s = {-(raw or 0):+.0%})"
                if drop is not None and nbad is not None and nclean is not None
                else "error",
                nbad,
                f"drop <= {ISOLATION_MAX_DROP:.0%}",
                None if drop is None else (drop <= ISOLATION_MAX_DROP and complete),
                drop,
                "isolation",
                run_ratio=ratio(badr),
            )
        if "throttled" in sc:
            thr = sc["throttled"]
            drop = thr.get("drop")
            nclean = _get(thr, "clean", "ratio_to_near_baseline")
            nthr = _get(thr, "with_throttled", "ratio_to_near_baseline")
            got, limit = thr.get("throttled_rate"), thr.get("throttled_rate_limit")
            row(
                "5t",
                backend,
                f"20 healthy endpoints + one throttled to {limit}/s, {label}",
                f"{nthr:.3f} vs {nclean:.3f} x near baseline clean = {-drop:+.0%}; "
                f"throttled endpoint {got}/s"
                if drop is not None and nthr is not None and nclean is not None
                else "error",
                nthr,
                f"drop <= {ISOLATION_MAX_DROP:.0%}; rate within 10%",
                None
                if drop is None or got is None
                else (
                    drop <= ISOLATION_MAX_DROP
                    and abs(got - limit) <= 0.1 * limit
                    and bool(thr.get("complete"))
                ),
                drop,
                "throttled",
            )
        if "fanout" in sc:
            f = _get(sc, "fanout", "deliveries_per_s")
            n = _get(sc, "fanout", "endpoints")
            # Compared as shares of their own near baselines: the two ran minutes apart.
            fr = near_ratio(f, sc["fanout"])
            ok = None if fr is None or e2e_near is None else fr >= e2e_near
            row(
                "6",
                backend,
                f"fan-out 1 message -> {n:,} endpoints, {label}",
                f"{f:,.0f}/s" if f is not None else "error",
                fr,
                f">= target 1 ({e2e_near:.2f} x baseline, {rate:,.0f}/s)"
                if rate and e2e_near is not None
                else ">= target 1",
                ok,
                f,
                "fanout",
                run_ratio=ratio(f),
            )
        if "fanout-filtered" in sc:
            # Issue 19: a payload filter on every endpoint (half match). Recorded beside the
            # unfiltered fan-out as the ratio of their near ratios (no threshold).
            ff = _get(sc, "fanout-filtered", "deliveries_per_s")
            n = _get(sc, "fanout-filtered", "endpoints")
            ffr = near_ratio(ff, sc["fanout-filtered"])
            plain = near_ratio(_get(sc, "fanout", "deliveries_per_s"), sc.get("fanout", {}))
            row(
                "6f",
                backend,
                f"fan-out to {n:,} endpoints with payload filters (half match), {label}",
                f"{ff:,.0f}/s" + (f" = {ffr / plain:.2f} x unfiltered" if ffr and plain else "")
                if ff is not None
                else "error",
                ffr,
                "recorded beside target 6",
                None,
                ff,
                "fanout-filtered",
                run_ratio=ratio(ff),
            )
    return rows


def measures(results: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers per backend, in one flat place (the smoke test checks these)."""
    out: dict[str, Any] = {"baseline_rate": _get(results, "baseline", "rate")}
    for backend, sc in results.get("backends", {}).items():
        peak: dict[str, float] = {}
        for s in sc.values():
            for usage in _usages(s):
                for p in usage["per_process"]:
                    peak[p["role"]] = max(peak.get(p["role"], 0.0), p["peak_rss_mb"])
        out[backend] = {
            "deliveries_per_s": _get(sc, "e2e", "deliveries_per_s"),
            "drain_deliveries_per_s": _get(sc, "drain", "deliveries_per_s"),
            "latency_ms": {k: _get(sc, "latency", f"{k}_ms") for k in ("p50", "p95", "p99")},
            "ingest_per_s": _get(sc, "e2e", "ingest_per_s"),
            "ingest_no_endpoints_per_s": _get(sc, "ingest", "ingest_per_s"),
            "cpu_s_per_1k_deliveries": _get(sc, "e2e", "cpu_s_per_1k"),
            "cpu_s_per_1k_deliveries_drain": _get(sc, "drain", "cpu_s_per_1k"),
            "peak_rss_mb": peak,
        }
    return out


def one_line(name: str, out: dict[str, Any]) -> str:
    if "error" in out:
        return f"ERROR {out['error'][:200]}"
    bits = []
    for key in (
        "deliveries_per_s",
        "ingest_per_s",
        "p50_ms",
        "p99_ms",
        "cpu_s_per_1k",
        "peak_rss_mb",
        "drop",
    ):
        if key in out and out[key] is not None:
            bits.append(f"{key}={out[key]}")
    if name == "isolation":
        bits.append(
            f"clean={_get(out, 'clean', 'healthy_deliveries_per_s')}/s "
            f"bad={_get(out, 'with_bad', 'healthy_deliveries_per_s')}/s"
        )
    bits.append(f"({out.get('seconds', '?')}s)")
    return " ".join(bits)


def _fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def table(results: dict[str, Any]) -> str:
    base = results["baseline"]
    meta = results["meta"]
    lines = [
        f"hookpost bench - {meta['date']} - {meta['machine']['nproc']} CPU "
        f"{meta['machine']['cpu_model']} - receiver {meta['receiver']['kind']}",
        f"baseline (raw aiohttp -> {meta['receiver']['kind']}): {base['rate']:,.0f} req/s "
        "(runs: " + ", ".join(f"{r['rate']:,.0f}" for r in base["runs"]) + ")",
        "",
    ]
    rows = results["targets"]
    headers = [
        "#",
        "measure",
        "measured",
        "x baseline",
        "x run base",
        "CPU x base",
        "target",
        "result",
        "bg",
    ]
    data = [
        [
            r["target"],
            r["name"],
            r["measured"],
            _fmt_ratio(r["ratio_to_baseline"]),
            _fmt_ratio(r.get("ratio_to_run_baseline")),
            _fmt_ratio(r.get("cpu_ratio_to_baseline")),
            r["threshold"],
            r["result"],
            "" if r["background_cores"] is None else f"{r['background_cores']:.1f}",
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *data, strict=False)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False))

    lines.append(fmt(headers))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt(d) for d in data]
    lines.append(
        "x baseline = over the short baselines run right before and after that measurement "
        "(the machine's speed drifts within minutes); x run base = over the run's baseline "
        "above (the higher of its start and end runs): the more conservative figure."
    )
    lines.append(
        "CPU x base = baseline CPU per request / hookpost CPU per delivery (on PostgreSQL "
        "with its backends): the ratio if both were CPU-bound; robust to other load."
    )
    lines.append(
        "bg = CPU cores used by other processes on the machine during the measurement "
        "(not hookpost, nginx, the bench, nor the PostgreSQL backends serving it); "
        "above ~0.3 the figure is disturbed."
    )
    lines.append("")
    for backend, m in results["measures"].items():
        if not isinstance(m, dict):
            continue
        rss = ", ".join(f"{k} {v:.0f} MB" for k, v in m["peak_rss_mb"].items())
        lines.append(
            f"{BACKEND_LABEL[backend]}: CPU s / 1,000 deliveries: end-to-end "
            f"{m['cpu_s_per_1k_deliveries']}, drain {m['cpu_s_per_1k_deliveries_drain']}; "
            f"peak RSS: {rss}"
        )
    for note in results.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def profile_table(results: dict[str, Any], top: int = 12) -> str:
    lines = []
    for key, prof in (results.get("profiles") or {}).items():
        if not prof.get("samples"):
            continue
        lines.append(f"\nprofile {key} ({prof['samples']} samples)")
        lines.append("  threads: " + ", ".join(f"{t} {p}%" for t, p in prof["threads_pct"][:4]))
        if prof.get("categories_pct"):
            lines.append("  by activity:")
            lines += [f"    {p:5.1f}%  {c}" for c, p in prof["categories_pct"]]
        lines.append("  self:")
        lines += [f"    {p:5.1f}%  {f}" for f, p in prof["self_pct"][:top]]
        lines.append("  total:")
        lines += [f"    {p:5.1f}%  {f}" for f, p in prof["total_pct"][:top]]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The targets table as Markdown, for BENCHMARKS.md (``python -m bench report FILE``)."""
    meta = results["meta"]
    base = results["baseline"]
    m = meta["machine"]
    out = [
        f"Run {meta['date']}, `{meta['command']}`, {meta.get('duration_s', '?')} s; "
        f"{m['nproc']} CPU {m['cpu_model']}, {m['mem_gib']} GiB; receiver "
        f"{meta['receiver']['kind']} ({meta['receiver']['version']}); hookpost "
        f"{meta.get('hookpost_git', '')}.",
        "",
        f"Baseline (raw aiohttp -> nginx, {base['runs'][0]['concurrency']} concurrent, "
        f"{base['runs'][0]['body_bytes']}-byte body): **{base['rate']:,.0f} req/s** "
        "(runs: " + ", ".join(f"{r['rate']:,.0f}" for r in base["runs"]) + ").",
        "",
        "x baseline = over the short baselines run right before and after that measurement; "
        "x run base = over the run's baseline above.",
        "",
        "| # | measure | measured | x baseline | x run base | CPU x baseline | target | result "
        "| bg cores |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["targets"]:
        ratio = _fmt_ratio(r["ratio_to_baseline"])
        run_ratio = _fmt_ratio(r.get("ratio_to_run_baseline"))
        cpu_s = _fmt_ratio(r.get("cpu_ratio_to_baseline"))
        bg = "" if r["background_cores"] is None else f"{r['background_cores']:.1f}"
        verdict = f"**{r['result']}**" if r["result"] in ("PASS", "FAIL") else r["result"]
        out.append(
            f"| {r['target']} | {r['name']} | {r['measured']} | {ratio} | {run_ratio} | {cpu_s} "
            f"| {r['threshold']} | {verdict} | {bg} |"
        )
    out.append("")
    out.append(
        "| backend | CPU s / 1,000 deliveries (end-to-end, incl. ingest) | "
        "CPU s / 1,000 (drain) | peak RSS per process |"
    )
    out.append("|---|---|---|---|")
    for backend, mm in results["measures"].items():
        if not isinstance(mm, dict):
            continue
        rss = ", ".join(f"{k} {v:.0f} MB" for k, v in mm["peak_rss_mb"].items())
        out.append(
            f"| {BACKEND_LABEL[backend]} | {mm['cpu_s_per_1k_deliveries']} | "
            f"{mm['cpu_s_per_1k_deliveries_drain']} | {rss} |"
        )
    for note in results.get("notes", []):
        out.append(f"\nNote: {note}")
    return "\n".join(out)
