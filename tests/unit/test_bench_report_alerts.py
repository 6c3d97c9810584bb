"""The bench report's row 22 (issue 22): the CPU per 1,000 with 1,000 alert rules, counted until
the evaluator had counted every message, against the run without rules; its verdict is on the
cost less hookpost's idle CPU over that wait."""

from __future__ import annotations

from typing import Any

from bench.report import targets


def results(with_rules: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    return {
        "baseline": {"rate": 10_000.0, "runs": []},
        "backends": {"sqlite": {"ingest": plain, "ingest-alerts": with_rules}},
    }


def alerts_run(per_1k: float, less_idle: float, caught_up_s: float | None) -> dict[str, Any]:
    return {
        "cpu_s_per_1k_messages_with_db": per_1k,
        "evaluator": {"caught_up_s": caught_up_s, "cpu_s_per_1k_with_db_less_idle": less_idle},
    }


def row_22(data: dict[str, Any]) -> dict[str, Any]:
    (row,) = [r for r in targets(data) if r["target"] == "22"]
    return row


def test_the_cost_with_rules_is_judged_less_idle() -> None:
    row = row_22(results(alerts_run(0.130, 0.105, 8.4), {"cpu_s_per_1k_messages_with_db": 0.100}))
    assert row["result"] == "PASS"  # +5 % less idle, though +30 % as counted
    assert "+30%" in row["measured"] and "+5%" in row["measured"]
    assert "caught up 8.4 s after" in row["measured"]
    row = row_22(results(alerts_run(0.130, 0.120, 8.4), {"cpu_s_per_1k_messages_with_db": 0.100}))
    assert row["result"] == "FAIL"


def test_an_evaluator_that_never_caught_up_is_said() -> None:
    row = row_22(results(alerts_run(0.1, 0.1, None), {"cpu_s_per_1k_messages_with_db": 0.1}))
    assert "never caught up" in row["measured"]


def test_no_row_without_the_run_without_rules() -> None:
    data = results(alerts_run(0.1, 0.1, 1.0), {})
    del data["backends"]["sqlite"]["ingest"]
    assert not [r for r in targets(data) if r["target"] == "22"]
