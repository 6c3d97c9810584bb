"""The reserved alert event types as the catalog shows them: a JSON Schema with an example
each, so ``send-example`` and the portal can show them (docs/decisions/0038-alert-rules.md)."""

from __future__ import annotations

from typing import Any

from hookpost.domain.alerts import DIGEST, RESOLVED, TRIGGERED
from hookpost.domain.models import EventType

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_ALERT_DATA = {
    "type": "object",
    "required": [
        "ruleId",
        "ruleName",
        "kind",
        "metric",
        "windowSeconds",
        "value",
        "exceeded",
        "evaluatedAt",
    ],
    "properties": {
        "ruleId": {"type": "string"},
        "ruleName": {"type": "string"},
        "kind": {"enum": ["threshold", "anomaly"]},
        "metric": {"type": "object", "required": ["metric"]},
        "windowSeconds": {"type": "integer"},
        "value": _NUMBER_OR_NULL,
        "exceeded": {"type": "boolean"},
        "evaluatedAt": {"type": "string", "format": "date-time"},
        "operator": {"enum": ["gt", "gte", "lt", "lte", "eq"]},
        "threshold": {"type": "number"},
        "sensitivity": {"type": "number"},
        "baselineWindows": {"type": "integer"},
        "baseline": {
            "type": "object",
            "properties": {"median": {"type": "number"}, "mad": {"type": "number"}},
        },
    },
}
_DIGEST_DATA = {
    "type": "object",
    "required": [
        "ruleId",
        "ruleName",
        "periodStart",
        "periodEnd",
        "messages",
        "countsByEventType",
        "failedDeliveries",
        "topFailingEndpoints",
        "evaluatedAt",
    ],
    "properties": {
        "ruleId": {"type": "string"},
        "ruleName": {"type": "string"},
        "schedule": {"type": "string"},
        "periodStart": {"type": "string", "format": "date-time"},
        "periodEnd": {"type": "string", "format": "date-time"},
        "messages": {"type": "integer"},
        "countsByEventType": {"type": "object", "additionalProperties": {"type": "integer"}},
        "failedDeliveries": {"type": "integer"},
        "topFailingEndpoints": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["endpointId", "failed"],
                "properties": {"endpointId": {"type": "string"}, "failed": {"type": "integer"}},
            },
        },
        "evaluatedAt": {"type": "string", "format": "date-time"},
    },
}


def _alert_example(kind: str, exceeded: bool) -> dict[str, Any]:
    return {
        "type": kind,
        "data": {
            "ruleId": "alrt_2Vfk3o1Xa0jSxWq4mN8pQz",
            "ruleName": "payment failures",
            "kind": "threshold",
            "metric": {"metric": "count", "eventTypes": ["payment.failed"]},
            "windowSeconds": 300,
            "value": 12 if exceeded else 3,
            "exceeded": exceeded,
            "evaluatedAt": "2026-12-07T22:00:00.000Z",
            "operator": "gt",
            "threshold": 10,
        },
    }


def _schema(kind: str, data: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "1": {
            "type": "object",
            "required": ["type", "data"],
            "properties": {"type": {"const": kind}, "data": data},
            "examples": [example],
        }
    }


_DIGEST_EXAMPLE = {
    "type": DIGEST,
    "data": {
        "ruleId": "alrt_2Vfk3o1Xa0jSxWq4mN8pQz",
        "ruleName": "daily summary",
        "schedule": "0 9 * * *",
        "periodStart": "2026-12-06T09:00:00.000Z",
        "periodEnd": "2026-12-07T09:00:00.000Z",
        "messages": 1520,
        "countsByEventType": {"invoice.paid": 1500, "payment.failed": 20},
        "failedDeliveries": 4,
        "topFailingEndpoints": [{"endpointId": "ep_2Vfk3o1Xa0jSxWq4mN8pQz", "failed": 4}],
        "evaluatedAt": "2026-12-07T09:00:02.000Z",
    },
}


def reserved_event_types(now_ms: int) -> list[EventType]:
    """The three reserved types, as written into the catalog with the first alert rule."""
    described = (
        (TRIGGERED, "an alert rule's condition started to hold (threshold or anomaly)"),
        (RESOLVED, "an alert rule's condition no longer holds"),
        (DIGEST, "a digest rule's periodic summary"),
    )
    schemas = {
        TRIGGERED: _schema(TRIGGERED, _ALERT_DATA, _alert_example(TRIGGERED, True)),
        RESOLVED: _schema(RESOLVED, _ALERT_DATA, _alert_example(RESOLVED, False)),
        DIGEST: _schema(DIGEST, _DIGEST_DATA, _DIGEST_EXAMPLE),
    }
    return [
        EventType(name, f"hookpost: {what}", schemas[name], created_at=now_ms, updated_at=now_ms)
        for name, what in described
    ]
