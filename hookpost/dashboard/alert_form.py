"""The alert-rule form: its fields read into the API's rule fields (camelCase, as
``domain.alerts.validate_spec`` takes them), and a rule written back into fields for editing.
A parse error names its field, so the form shows it next to that field."""

from __future__ import annotations

import json
from typing import Any

from hookpost.domain.alerts import FIELDS, KINDS, METRICS, OPERATORS, AlertRule
from hookpost.domain.errors import InvalidInput

INTEGERS = ("windowSeconds", "evaluateEverySeconds", "baselineWindows", "cooldownSeconds")
NUMBERS = ("value", "sensitivity")
TEXTS = ("name", "kind", "metric", "field", "pushedMetric", "operator", "schedule")
OPERATOR_SIGNS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "eq": "="}
CHOICES = {"kind": KINDS, "metric": METRICS, "operator": OPERATORS}


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(name, "must be a whole number") from None


def _number(raw: str, name: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(name, "must be a number") from None


def read(fields: dict[str, str]) -> dict[str, Any]:
    """Every rule field the form has: a value, or None where it was left blank (so that an
    edit removes it: a PATCH's null)."""
    spec: dict[str, Any] = {}
    for name in TEXTS:
        raw = fields.get(name, "").strip()
        spec[name] = raw or None
    for name in INTEGERS:
        raw = fields.get(name, "").strip()
        spec[name] = _int(raw, name) if raw else None
    for name in NUMBERS:
        raw = fields.get(name, "").strip()
        spec[name] = _number(raw, name) if raw else None
    types = [w for w in fields.get("eventTypes", "").replace(",", " ").split() if w]
    spec["eventTypes"] = types or None
    raw_filter = fields.get("payloadFilter", "").strip()
    if raw_filter:
        try:
            spec["payloadFilter"] = json.loads(raw_filter)
        except ValueError as exc:
            raise InvalidInput("payloadFilter", f"is not valid JSON ({exc})") from None
    else:
        spec["payloadFilter"] = None
    spec["enabled"] = fields.get("enabled") == "on"
    return spec


def given(spec: dict[str, Any]) -> dict[str, Any]:
    """The fields to create a rule with: the blank ones left out (the defaults apply)."""
    return {k: v for k, v in spec.items() if v is not None}


def fields_of(rule: AlertRule) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in FIELDS:
        value = rule.spec.get(name)
        if value is None:
            out[name] = ""
        elif name == "eventTypes":
            out[name] = ", ".join(value)
        elif name == "payloadFilter":
            out[name] = json.dumps(value)
        elif name == "enabled":
            out[name] = "on" if value else ""
        else:
            out[name] = str(value)
    return out


def condition(rule: AlertRule) -> str:
    """What the rule watches, in one line (the list's "Condition" column)."""
    s = rule.spec
    if rule.kind == "digest":
        return f"a digest every {s['schedule']}"
    measured = s.get("pushedMetric") or (
        "count" if s.get("metric") == "count" else f"{s['metric']}({s.get('field')})"
    )
    window = f"over {s['windowSeconds']} s"
    if rule.kind == "threshold":
        sign = OPERATOR_SIGNS.get(s["operator"], s["operator"])
        return f"{measured} {sign} {s['value']} {window}"
    return (
        f"{measured} {window}, anomaly score ≥ {s['sensitivity']} "
        f"against {s['baselineWindows']} windows"
    )
