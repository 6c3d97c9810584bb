"""Alert rules (a hookpost extension, per application): what a rule is and what it may hold.

A rule watches a metric of the application's event stream (a count of matching messages, or
an aggregate of a numeric payload field) or a pushed metric, and fires ``hookpost.alert.*``
messages when a threshold is crossed or an anomaly appears, or sends a ``hookpost.digest`` on
a schedule (docs/decisions/0038-alert-rules.md). Validation names the API's field (422).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from croniter import croniter

from hookpost.domain.errors import InvalidInput
from hookpost.domain.filters import validate_filter

ALERT_RULE_ID = "alrt"

TRIGGERED = "hookpost.alert.triggered"
RESOLVED = "hookpost.alert.resolved"
DIGEST = "hookpost.digest"
EVENT_TYPES = (TRIGGERED, RESOLVED, DIGEST)
RESERVED_PREFIX = "hookpost."  # digests count the application's own event types only

METRICS = ("count", "sum", "avg", "min", "max", "p95")
THRESHOLD_RULE, ANOMALY_RULE, DIGEST_RULE = "threshold", "anomaly", "digest"
KINDS = (THRESHOLD_RULE, ANOMALY_RULE, DIGEST_RULE)
OPERATORS = ("gt", "gte", "lt", "lte", "eq")

DEFAULT_EVALUATE_EVERY_S = 10
DEFAULT_BASELINE_WINDOWS = 6
DEFAULT_SENSITIVITY = 3.0
MAX_WINDOW_S = 7 * 86_400
MAX_BASELINE_WINDOWS = 48
MAX_NAME = 128
MAX_EVENT_TYPES = 50
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_FIELD_RE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+){0,9}$")
_INTERVAL_RE = re.compile(r"^(\d{1,7})([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

# The API's fields, in the order a rule is shown.
FIELDS = (
    "name",
    "kind",
    "metric",
    "field",
    "eventTypes",
    "payloadFilter",
    "pushedMetric",
    "operator",
    "value",
    "windowSeconds",
    "evaluateEverySeconds",
    "baselineWindows",
    "sensitivity",
    "schedule",
    "cooldownSeconds",
    "enabled",
)
_ONLY_FOR = {
    "operator": ("threshold",),
    "value": ("threshold",),
    "baselineWindows": ("anomaly",),
    "sensitivity": ("anomaly",),
    "schedule": ("digest",),
}


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A validated rule: ``spec`` holds its API fields (camelCase), defaults filled in."""

    id: str
    app_id: str
    spec: dict[str, Any]
    created_at: int
    updated_at: int
    # Which bucketed aggregates the rule reads: rules that select the same messages (or pushed
    # metric) and field with the same bucket width share them. Computed once per rule read.
    series: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        s = self.spec
        key = [s.get("eventTypes"), s.get("payloadFilter"), s.get("field"), bucket_ms(self)]
        digest = hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()
        object.__setattr__(self, "series", digest[:24])

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def kind(self) -> str:
        return str(self.spec["kind"])

    @property
    def enabled(self) -> bool:
        return bool(self.spec["enabled"])

    @property
    def window_ms(self) -> int:
        return int(self.spec.get("windowSeconds") or 0) * 1000

    @property
    def every_ms(self) -> int:
        return int(self.spec["evaluateEverySeconds"]) * 1000

    def span_ms(self) -> int:
        """How far back the rule reads its data: its window, and the baseline's windows."""
        if self.kind == "anomaly":
            return self.window_ms * (int(self.spec["baselineWindows"]) + 1)
        return self.window_ms


@dataclass(slots=True)
class RuleState:
    """What the evaluator keeps per rule between runs (written under the app's lease)."""

    firing: bool = False
    fired: int = 0  # triggers so far: the sequence number in the alert's event id
    last_fired_at: int | None = None
    next_eval_at: int = 0
    period_start: int | None = None  # digests: the start of the period being summed
    last: dict[str, Any] = field(default_factory=dict)  # the last evaluation, for the API


def bucket_ms(rule: AlertRule) -> int:
    """Bucket width: a 60th of the window, whole seconds (a window's edges are rounded to it)."""
    return max(1000, rule.window_ms // 60 // 1000 * 1000)


def _bad(field_name: str, msg: str, path: tuple[str | int, ...] = ()) -> InvalidInput:
    return InvalidInput(field_name, msg, path)


def _int(spec: Mapping[str, Any], name: str, low: int, high: int) -> int:
    v = spec[name]
    if type(v) is not int or not low <= v <= high:
        raise _bad(name, f"must be an integer from {low} to {high}")
    return v


def _number(spec: Mapping[str, Any], name: str) -> float:
    v = spec[name]
    if type(v) not in (int, float) or not math.isfinite(v):
        raise _bad(name, "must be a finite number")
    return float(v)


def interval_s(schedule: str) -> int | None:
    """``30s``, ``15m``, ``1h``, ``1d``: the interval in seconds; None for a cron expression."""
    m = _INTERVAL_RE.match(schedule)
    return None if m is None else int(m.group(1)) * _UNIT_S[m.group(2)]


def next_run_ms(schedule: str, after_ms: int) -> int:
    """The first scheduled time strictly after ``after_ms``: an interval counts from the Unix
    epoch (``1h``: on the hour), a cron expression is read in UTC."""
    step = interval_s(schedule)
    if step is not None:
        step_ms = step * 1000
        return (after_ms // step_ms + 1) * step_ms
    start = datetime.fromtimestamp(after_ms / 1000, UTC)
    return int(croniter(schedule, start).get_next(float) * 1000)


def runs_between(schedule: str, since_ms: int, until_ms: int, limit: int) -> list[int]:
    """The scheduled times in (since, until], oldest first: the latest ``limit`` of them (a
    cron expression is walked back from ``until``, so a long gap costs ``limit`` steps)."""
    step = interval_s(schedule)
    if step is not None:
        step_ms = step * 1000
        last = until_ms // step_ms * step_ms
        first = max((since_ms // step_ms + 1) * step_ms, last - (limit - 1) * step_ms)
        return list(range(first, last + 1, step_ms))
    found: list[int] = []
    # croniter's get_prev is strictly before its start: 1 ms past ``until`` includes it
    walk = croniter(schedule, datetime.fromtimestamp((until_ms + 1) / 1000, UTC))
    while len(found) < limit:
        t = round(walk.get_prev(float) * 1000)
        if t <= since_ms:
            break
        found.append(t)
    return found[::-1]


def _check_schedule(schedule: Any) -> None:
    if not isinstance(schedule, str) or not schedule.strip():
        raise _bad("schedule", "must be an interval (30s, 15m, 1h, 1d) or a cron expression")
    step = interval_s(schedule)
    if step is not None:
        if step < 10:
            raise _bad("schedule", "must be an interval of at least 10 seconds")
        return
    if not croniter.is_valid(schedule):
        raise _bad("schedule", "is neither an interval (30s, 15m, 1h, 1d) nor a cron expression")


def validate_spec(given: Mapping[str, Any]) -> dict[str, Any]:
    """The rule's fields, checked and with their defaults; InvalidInput naming the field."""
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise _bad(unknown[0], "is not a field of an alert rule")
    spec: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _bad("name", f"is required: a text of 1 to {MAX_NAME} characters")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise _bad("kind", f"must be one of {', '.join(KINDS)}")
    for key, kinds in _ONLY_FOR.items():
        if key in spec and kind not in kinds:
            raise _bad(key, f"applies to {' and '.join(kinds)} rules only")
    spec.setdefault("enabled", True)
    if type(spec["enabled"]) is not bool:
        raise _bad("enabled", "must be true or false")
    spec.setdefault("cooldownSeconds", 0)
    _int(spec, "cooldownSeconds", 0, MAX_WINDOW_S)
    spec.setdefault("evaluateEverySeconds", DEFAULT_EVALUATE_EVERY_S)
    _int(spec, "evaluateEverySeconds", 1, 3600)
    if kind == "digest":
        for key in ("metric", "field", "pushedMetric", "windowSeconds"):
            if key in spec:
                raise _bad(key, "does not apply to a digest (it summarises every message)")
        _check_schedule(spec.get("schedule"))
        _check_selector(spec)
        return spec
    _check_metric(spec)
    if "windowSeconds" not in spec:
        raise _bad("windowSeconds", "is required")
    _int(spec, "windowSeconds", 1, MAX_WINDOW_S)
    if kind == "threshold":
        if spec.get("operator") not in OPERATORS:
            raise _bad("operator", f"must be one of {', '.join(OPERATORS)}")
        if "value" not in spec:
            raise _bad("value", "is required")
        _number(spec, "value")
    else:
        spec.setdefault("baselineWindows", DEFAULT_BASELINE_WINDOWS)
        _int(spec, "baselineWindows", 2, MAX_BASELINE_WINDOWS)
        spec.setdefault("sensitivity", DEFAULT_SENSITIVITY)
        if _number(spec, "sensitivity") <= 0:
            raise _bad("sensitivity", "must be greater than 0")
    return spec


def _check_metric(spec: dict[str, Any]) -> None:
    spec.setdefault("metric", "count")
    metric = spec["metric"]
    if metric not in METRICS:
        raise _bad("metric", f"must be one of {', '.join(METRICS)}")
    pushed = spec.get("pushedMetric")
    if pushed is not None:
        if not isinstance(pushed, str) or not _NAME_RE.match(pushed):
            raise _bad("pushedMetric", "must be a metric name (letters, digits, _ . -)")
        for key in ("field", "eventTypes", "payloadFilter"):
            if key in spec:
                raise _bad(key, "does not apply to a pushed metric")
        return
    f = spec.get("field")
    if metric == "count":
        if f is not None:
            raise _bad("field", "does not apply to a count (leave it out)")
    elif not isinstance(f, str) or not _FIELD_RE.match(f):
        raise _bad("field", f"is required for {metric}: a dotted path such as data.amount")
    _check_selector(spec)


def _check_selector(spec: dict[str, Any]) -> None:
    types = spec.get("eventTypes")
    if types is not None:
        if not isinstance(types, list) or len(types) > MAX_EVENT_TYPES:
            raise _bad("eventTypes", f"must be a list of at most {MAX_EVENT_TYPES} names")
        for i, t in enumerate(types):
            if not isinstance(t, str) or not t or len(t) > 256:
                raise _bad("eventTypes", "must be an event type name or pattern", (i,))
        if not types:
            del spec["eventTypes"]
    flt = spec.get("payloadFilter")
    if flt is not None:
        stored = validate_filter(flt)  # InvalidInput naming payloadFilter
        if stored is None:
            del spec["payloadFilter"]


def merged_spec(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH: its fields over the rule's (null removes an optional field); defaults that
    belong to the old kind are dropped when the kind changes, so they do not refuse the new."""
    spec = dict(current)
    if "kind" in patch and patch["kind"] != current.get("kind"):
        for key, kinds in _ONLY_FOR.items():
            if key not in patch and patch["kind"] not in kinds:
                spec.pop(key, None)
        if patch["kind"] == "digest":
            for key in ("metric", "field", "pushedMetric", "windowSeconds"):
                if key not in patch:
                    spec.pop(key, None)
    for key, value in patch.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec
