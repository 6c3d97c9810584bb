"""Alert rules' rows as both backends read and write them (JSON text for specs, states and
the p95 sketch's cells)."""

from __future__ import annotations

from typing import Any

import orjson

from hookpost.domain.alert_eval import Aggregate
from hookpost.domain.alerts import AlertRule, RuleState
from hookpost.store.rows import Row


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def rule_from_row(r: Row) -> tuple[AlertRule, RuleState]:
    rule = AlertRule(
        r["id"], r["app_id"], orjson.loads(r["spec"]), r["created_at"], r["updated_at"]
    )
    return rule, RuleState(**orjson.loads(r["state"]))


def state_text(state: RuleState) -> str:
    return dumps(state)  # orjson serializes a dataclass itself, without asdict's deep copy


def aggregate_from_row(r: Row) -> Aggregate:
    cells = orjson.loads(r["cells"]) if r["cells"] else {}
    return Aggregate(r["count"], r["total"], r["low"], r["high"], cells)


def aggregate_values(agg: Aggregate) -> tuple[int, float, float | None, float | None, str | None]:
    return agg.count, agg.total, agg.low, agg.high, dumps(agg.cells) if agg.cells else None


def failing(rows: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Endpoints by failed deliveries, most first (then by id)."""
    return sorted(((e, int(n)) for e, n in rows), key=lambda x: (-x[1], x[0]))
