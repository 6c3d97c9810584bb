"""Evaluating alert rules: bucketed aggregates, the threshold and anomaly tests, what a rule
does at an evaluation (fire, resolve, nothing), and the alerts' payloads. Pure: the caller
passes the time (docs/decisions/0038-alert-rules.md)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hookpost.domain.alerts import (
    DIGEST,
    RESERVED_PREFIX,
    RESOLVED,
    TRIGGERED,
    AlertRule,
    RuleState,
    bucket_ms,
)
from hookpost.domain.filters import MISSING, Payload, payload_matches, stored_filter
from hookpost.domain.matching import types_match
from hookpost.domain.operational import iso

# p95 from a log-scale histogram (DDSketch's idea): values within 1% of each other share a
# cell, so a bucket stays small and buckets merge by adding counts; relative error <= 1%.
GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)
# A perfectly steady baseline has MAD 0: the score's scale is at least this share of the
# baseline's median (and at least MIN_SCALE), so a flat line does not make every wobble infinite.
RELATIVE_SCALE_FLOOR = 0.1
MIN_SCALE = 1.0
MAD_TO_SIGMA = 1.4826  # MAD * this estimates the standard deviation of a normal distribution


@dataclass(slots=True)
class Aggregate:
    """count, sum, min, max and a p95 sketch of the values of one bucket (or window)."""

    count: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None
    cells: dict[str, int] = field(default_factory=dict)

    def add(self, value: float | None, sketch: bool = False) -> None:
        self.count += 1
        if value is None:
            return
        self.total += value
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)
        if sketch:
            key = _cell(value)
            self.cells[key] = self.cells.get(key, 0) + 1

    def merge(self, other: Aggregate) -> None:
        self.count += other.count
        self.total += other.total
        for attr, pick in (("low", min), ("high", max)):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            setattr(
                self,
                attr,
                theirs if mine is None else mine if theirs is None else pick(mine, theirs),
            )
        for key, n in other.cells.items():
            self.cells[key] = self.cells.get(key, 0) + n

    def value(self, metric: str) -> float | None:
        """The metric of these values; None when there is nothing to take it of (a count of
        nothing is 0)."""
        if metric == "count":
            return float(self.count)
        if self.low is None:
            return None
        if metric == "sum":
            return self.total
        if metric == "avg":
            return self.total / self.count
        if metric == "min":
            return self.low
        if metric == "max":
            return self.high
        return _quantile(self.cells, 0.95)


def _cell(v: float) -> str:
    if v == 0:
        return "z"
    k = math.ceil(math.log(abs(v)) / _LOG_GAMMA)
    return f"{'p' if v > 0 else 'n'}{k}"


def _cell_value(key: str) -> float:
    if key == "z":
        return 0.0
    k = int(key[1:])
    mid = 2 * GAMMA**k / (GAMMA + 1)
    return mid if key[0] == "p" else -mid


def _quantile(cells: Mapping[str, int], q: float) -> float | None:
    n = sum(cells.values())
    if not n:
        return None
    rank = max(1, math.ceil(q * n))  # nearest rank
    seen = 0
    for value, count in sorted((_cell_value(k), c) for k, c in cells.items()):
        seen += count
        if seen >= rank:
            return value
    return None  # unreachable


def field_value(doc: Any, path: str) -> float | None:
    """The number at a dotted path of a payload; None if absent or not a number."""
    for key in path.split("."):
        if type(doc) is not dict:
            return None
        doc = doc.get(key, MISSING)
    return float(doc) if type(doc) in (int, float) else None


class Selector:
    """Which messages a series counts, and the number it takes of each."""

    def __init__(self, rule: AlertRule) -> None:
        s = rule.spec
        self.types: list[str] | None = s.get("eventTypes")
        self.filter = stored_filter(s.get("payloadFilter"))
        self.field: str | None = s.get("field")
        self.sketch = s.get("metric") == "p95"
        self.needs_payload = self.filter is not None or self.field is not None

    def selects(self, event_type: str, payload: Payload) -> bool:
        """Alerts are never counted (a rule would feed on its own alerts)."""
        if event_type.startswith(RESERVED_PREFIX) or not types_match(self.types, event_type):
            return False
        return self.filter is None or payload_matches(self.filter, payload)

    def observe(self, event_type: str, payload: Payload) -> tuple[bool, float | None]:
        """(counted, the field's value) for one message: not counted either without a
        number at the field."""
        if not self.selects(event_type, payload):
            return False, None
        if self.field is None:
            return True, None
        value = field_value(payload.doc, self.field)
        return value is not None, value


class SeriesCounter:
    """Counts messages into the bucket deltas of many series: each distinct selection (types
    and filter) is matched once per message and each field read once; the message is then
    only counted, or its value kept, in a bucket as fine as all the series of that selection
    and field allow (their widths' greatest common divisor). ``drain_into`` aggregates those
    few fine buckets once and merges them into every series' buckets: the cost per message
    grows with neither the number of series nor of rules."""

    def __init__(self, rules: Iterable[AlertRule]) -> None:
        # (types, filter) -> (selector, field -> [(series, width, sketch)])
        groups: dict[str, tuple[Selector, dict[str | None, list[tuple[str, int, bool]]]]] = {}
        seen: set[str] = set()
        for rule in rules:
            if rule.series in seen:
                continue
            seen.add(rule.series)
            sel = Selector(rule)
            key = repr((sel.types, sel.filter))
            group = groups.setdefault(key, (sel, {}))
            group[1].setdefault(sel.field, []).append((rule.series, bucket_ms(rule), sel.sketch))
        # per selection: (selector, [(field, fine width)]); per (selection, field): its series
        self._groups: list[tuple[Selector, list[tuple[str | None, int]]]] = []
        self._series: dict[tuple[int, str | None], list[tuple[str, int, bool]]] = {}
        self._sketched: set[tuple[int, str | None]] = set()  # some series there reads a p95
        for gi, (sel, fields) in enumerate(groups.values()):
            plan = []
            for field_path, series in fields.items():
                plan.append((field_path, math.gcd(*(w for _, w, _ in series))))
                self._series[(gi, field_path)] = series
                if any(sketch for _, _, sketch in series):
                    self._sketched.add((gi, field_path))
            self._groups.append((sel, plan))
        # (selection, field, fine bucket start) -> the values seen since the last drain (for a
        # count without a field, how many messages)
        self._counts: dict[tuple[int, int], int] = {}
        self._values: dict[tuple[int, str, int], list[float]] = {}
        self.needs_payload = any(
            sel.filter is not None or any(f is not None for f, _ in plan)
            for sel, plan in self._groups
        )

    def __bool__(self) -> bool:
        return bool(self._groups)

    def observe(self, event_type: str, payload: Payload, created_ms: int) -> None:
        for gi, (sel, plan) in enumerate(self._groups):
            if not sel.selects(event_type, payload):
                continue
            for field_path, width in plan:
                start = created_ms // width * width
                if field_path is None:
                    counts = self._counts
                    counts[(gi, start)] = counts.get((gi, start), 0) + 1
                    continue
                value = field_value(payload.doc, field_path)
                if value is not None:
                    values = self._values.setdefault((gi, field_path, start), [])
                    values.append(value)

    def drain_into(self, deltas: dict[tuple[str, int], Aggregate]) -> None:
        """Merge what ``observe`` counted into ``deltas`` (series, bucket start) and forget it."""
        fine: list[tuple[tuple[int, str | None], int, Aggregate, Aggregate | None]] = []
        for (gi, start), n in self._counts.items():
            fine.append(((gi, None), start, Aggregate(count=n), None))
        for (gi, field_path, start), values in self._values.items():
            plain = Aggregate(len(values), sum(values), min(values), max(values))
            sketched = None
            if (gi, field_path) in self._sketched:
                cells: dict[str, int] = {}
                for v in values:
                    cell = _cell(v)
                    cells[cell] = cells.get(cell, 0) + 1
                sketched = Aggregate(plain.count, plain.total, plain.low, plain.high, cells)
            fine.append(((gi, field_path), start, plain, sketched))
        for group, start, plain, sketched in fine:
            for key, width, sketch in self._series[group]:
                bucket = (key, start // width * width)
                into = deltas.get(bucket)
                if into is None:
                    into = deltas[bucket] = Aggregate()
                into.merge(sketched if sketch and sketched is not None else plain)
        self._counts.clear()
        self._values.clear()


def window_aggregate(
    buckets: Mapping[int, Aggregate], start_ms: int, end_ms: int, width_ms: int
) -> Aggregate:
    """The buckets that start in [start, end) rounded up to a bucket edge (a window's edges are
    rounded to its buckets, a 60th of it)."""
    first = -(-start_ms // width_ms) * width_ms
    total = Aggregate()
    for begin, agg in buckets.items():
        if first <= begin < end_ms:
            total.merge(agg)
    return total


def samples_aggregate(
    samples: Iterable[tuple[int, float]], start_ms: int, end_ms: int, sketch: bool
) -> Aggregate:
    """Pushed samples (at, value) with start < at <= end."""
    total = Aggregate()
    for at, value in samples:
        if start_ms < at <= end_ms:
            total.add(value, sketch)
    return total


def compare(value: float | None, operator: str, threshold: float) -> bool:
    if value is None:
        return False
    return {
        "gt": value > threshold,
        "gte": value >= threshold,
        "lt": value < threshold,
        "lte": value <= threshold,
        "eq": value == threshold,
    }[operator]


@dataclass(frozen=True, slots=True)
class Baseline:
    median: float
    mad: float
    score: float | None


def robust_score(current: float | None, baseline: Sequence[float | None]) -> Baseline | None:
    """How far the current window is from the trailing windows: (current - median) / scale,
    scale = max(1.4826 * MAD, 10% of |median|, 1). None if a window has no value."""
    if current is None or any(v is None for v in baseline) or not baseline:
        return None
    values = [float(v) for v in baseline if v is not None]
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    scale = max(MAD_TO_SIGMA * mad, RELATIVE_SCALE_FLOOR * abs(median), MIN_SCALE)
    return Baseline(median, mad, (current - median) / scale)


@dataclass(frozen=True, slots=True)
class Reading:
    """An evaluation's outcome: whether the condition holds, and what the payload reports."""

    holds: bool
    value: float | None
    details: dict[str, Any]


def read_threshold(rule: AlertRule, window: Aggregate) -> Reading:
    s = rule.spec
    value = window.value(s["metric"])
    holds = compare(value, s["operator"], float(s["value"]))
    return Reading(holds, value, {"operator": s["operator"], "threshold": s["value"]})


def read_anomaly(rule: AlertRule, windows: Sequence[Aggregate]) -> Reading:
    """``windows``: the baseline's windows, oldest first, then the current one."""
    metric = rule.spec["metric"]
    values = [w.value(metric) for w in windows]
    current, baseline = values[-1], values[:-1]
    found = robust_score(current, baseline)
    sensitivity = float(rule.spec["sensitivity"])
    holds = found is not None and found.score is not None and abs(found.score) >= sensitivity
    details: dict[str, Any] = {"sensitivity": sensitivity, "baselineWindows": len(baseline)}
    if found is not None:
        details["baseline"] = {"median": found.median, "mad": found.mad, "score": found.score}
    return Reading(holds, current, details)


def windows_for(rule: AlertRule, end_ms: int) -> list[tuple[int, int]]:
    """The (start, end) of the windows a rule reads at ``end_ms``, oldest first."""
    w = rule.window_ms
    count = int(rule.spec["baselineWindows"]) + 1 if rule.kind == "anomaly" else 1
    return [(end_ms - (count - i) * w, end_ms - (count - i - 1) * w) for i in range(count)]


def has_history(rule: AlertRule, end_ms: int) -> bool:
    """An anomaly rule needs its whole baseline observed before it may fire."""
    return rule.kind != "anomaly" or end_ms - rule.created_at >= rule.span_ms()


@dataclass(frozen=True, slots=True)
class Transition:
    event_type: str  # TRIGGERED or RESOLVED
    seq: int  # the crossing's number (its trigger's), in the alert's event id


def decide(rule: AlertRule, state: RuleState, holds: bool, at_ms: int) -> Transition | None:
    """A crossing fires once (not again while it holds, nor within ``cooldownSeconds`` of the
    last trigger); a firing rule whose condition no longer holds resolves once."""
    if holds and not state.firing:
        cooldown = int(rule.spec["cooldownSeconds"]) * 1000
        if state.last_fired_at is not None and at_ms < state.last_fired_at + cooldown:
            return None
        return Transition(TRIGGERED, state.fired + 1)
    if not holds and state.firing:
        return Transition(RESOLVED, state.fired)
    return None


def apply(state: RuleState, transition: Transition | None, at_ms: int) -> None:
    if transition is None:
        return
    if transition.event_type == TRIGGERED:
        state.firing, state.fired, state.last_fired_at = True, transition.seq, at_ms
    else:
        state.firing = False


def event_id(rule_id: str, kind: str, seq: int) -> str:
    """The alert message's eventId: a second process (or a run after a crash) that reaches the
    same crossing writes the same id, which the store refuses to create twice."""
    return f"{rule_id}.{kind}.{seq}"


def metric_of(rule: AlertRule) -> dict[str, Any]:
    s = rule.spec
    keys = ("metric", "field", "eventTypes", "payloadFilter", "pushedMetric")
    return {k: s[k] for k in keys if k in s}


def alert_payload(
    rule: AlertRule, transition: Transition, reading: Reading, at_ms: int
) -> dict[str, Any]:
    data = {
        "ruleId": rule.id,
        "ruleName": rule.name,
        "kind": rule.kind,
        "metric": metric_of(rule),
        "windowSeconds": rule.window_ms // 1000,
        "value": reading.value,
        "exceeded": transition.event_type == TRIGGERED,
        "evaluatedAt": iso(at_ms),
        **reading.details,
    }
    return {"type": transition.event_type, "data": data}


def digest_payload(
    rule: AlertRule,
    since_ms: int,
    until_ms: int,
    by_type: Mapping[str, int],
    failed: int,
    top_failing: Sequence[tuple[str, int]],
    at_ms: int,
) -> dict[str, Any]:
    data = {
        "ruleId": rule.id,
        "ruleName": rule.name,
        "schedule": rule.spec["schedule"],
        "periodStart": iso(since_ms),
        "periodEnd": iso(until_ms),
        "messages": sum(by_type.values()),
        "countsByEventType": dict(sorted(by_type.items())),
        "failedDeliveries": failed,
        "topFailingEndpoints": [{"endpointId": e, "failed": n} for e, n in top_failing],
        "evaluatedAt": iso(at_ms),
    }
    return {"type": DIGEST, "data": data}


def bucket_start(rule: AlertRule, at_ms: int) -> int:
    width = bucket_ms(rule)
    return at_ms // width * width
