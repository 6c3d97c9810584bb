"""The benchmark harness runs end to end (``python -m bench run --quick``) and writes a JSON
with every measure. Values are only checked for sanity, not against the performance targets:
a tiny load on a shared CI machine says nothing about them (BENCHMARKS.md has the real run).

Without nginx, --quick falls back to a Python receiver (labelled in the JSON), so this runs
anywhere. The PostgreSQL variant follows the suite's PostgreSQL policy (``postgres_url``)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import with_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"1", "2", "3", "4", "5", "6"}
# What check_backend reads (the e2e variants, e2e1, e2e-inline and e2e-aiohttp, run the same
# code as e2e and are left out to keep the suite's time); SQLite also runs the newer scenarios.
CHECKED = "e2e,e2e-sdk,ingest,latency,drain,future-backlog,backlog,isolation,fanout,fanout-filtered"


def run_quick(tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--quick", "--out", str(out), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, f"bench failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "result" in proc.stdout  # the table was printed
    return json.loads(out.read_text())


def check_backend(data: dict[str, Any], backend: str) -> None:
    assert not [n for n in data["notes"] if "failed" in n], data["notes"]
    m = data["measures"][backend]
    assert m["deliveries_per_s"] > 0
    assert m["drain_deliveries_per_s"] > 0
    lat = m["latency_ms"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in lat.values()), lat
    assert -50 < lat["p50"] <= lat["p95"] <= lat["p99"] < 10_000, lat
    assert m["ingest_per_s"] > 0
    assert m["ingest_no_endpoints_per_s"] > 0
    assert 0 < m["cpu_s_per_1k_deliveries"] < 1000
    assert 0 < m["cpu_s_per_1k_deliveries_drain"] < 1000
    roles = {"serve"} if backend == "sqlite" else {"api", "worker"}
    if backend == "sqlite" and data["meta"]["machine"]["nproc"] >= 2:
        roles.add("serve:worker")  # serve's worker child is accounted for
    assert roles <= set(m["peak_rss_mb"]), m["peak_rss_mb"]
    assert all(10 < mb < 4000 for mb in m["peak_rss_mb"].values()), m["peak_rss_mb"]

    sc = data["backends"][backend]
    for name in ("e2e", "e2e-sdk", "latency", "drain", "future-backlog"):
        assert sc[name]["delivered"] == sc[name].get("messages", sc[name].get("accepted")), name
        assert sc[name]["duplicates"] == 0, name
    assert sc["future-backlog"]["backlog"]["rows"] >= 10_000
    assert sc["future-backlog"]["backlog_delivered_early"] == 0
    for run in sc["backlog"]["runs"].values():  # a due backlog, drained after a burst
        assert run["due"] >= 2_000 and run["measured"] == 2_000, run
        assert run["deliveries_per_s"] > 0 and run["duplicates"] == 0, run
    iso = sc["isolation"]
    for run in ("clean", "with_bad"):
        assert iso[run]["healthy_delivered"] == iso[run]["healthy_expected"] > 0
        assert iso[run]["ratio_to_near_baseline"] > 0  # rounds between short baselines
    assert sc["fanout"]["runs"][0]["delivered"] == sc["fanout"]["endpoints"]
    filtered = sc["fanout-filtered"]  # half the endpoints' payload filters match
    assert filtered["runs"][0]["delivered"] == filtered["matching_endpoints"]
    assert filtered["matching_endpoints"] == (filtered["endpoints"] + 1) // 2
    assert sc["e2e-sdk"]["idempotency_keys"] and sc["e2e-sdk"]["api_codes"] == {
        "202": sc["e2e-sdk"]["messages"]
    }
    for name in ("e2e", "drain", "fanout", "fanout-filtered"):  # between short baselines
        near = sc[name]["near_baseline"]
        assert near["before"] > 0 and near["after"] > 0, (name, near)

    rows = [r for r in data["targets"] if r["backend"] == backend]
    assert {r["target"] for r in rows} >= TARGETS - ({"3"} if backend == "postgres" else set())
    assert all(r["result"] in ("PASS", "FAIL") for r in rows if r["target"] in TARGETS)


def test_quick_bench_sqlite(tmp_path: Path) -> None:
    data = run_quick(
        tmp_path, "--backend", "sqlite", "--scenario", f"{CHECKED},ingest-strict,fairness"
    )
    assert data["baseline"]["rate"] > 0
    assert data["meta"]["receiver"]["kind"] in ("nginx", "python-fallback")
    assert data["meta"]["machine"]["nproc"] >= 1
    check_backend(data, "sqlite")
    fair = data["backends"]["sqlite"]["fairness"]  # B's 10, queued behind A's backlog
    assert fair["b_delivered"] == 10, fair


def test_quick_bench_postgres(tmp_path: Path, postgres_url: str) -> None:
    server = with_database(postgres_url, "postgres")
    data = run_quick(tmp_path, "--backend", "postgres", "--pg-url", server, "--scenario", CHECKED)
    check_backend(data, "postgres")
