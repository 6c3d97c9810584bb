"""Request and response models of the alert-rule and metric routes (a hookpost extension;
docs/decisions/0038-alert-rules.md). The rules' values are checked by ``domain.alerts``; these
models give the OpenAPI document its shapes and refuse unknown fields and wrong types."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Metric = Literal["count", "sum", "avg", "min", "max", "p95"]
Kind = Literal["threshold", "anomaly", "digest"]
Operator = Literal["gt", "gte", "lt", "lte", "eq"]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class _RuleFields(_Model):
    kind: Kind | None = Field(None, description="threshold, anomaly or digest")
    metric: Metric | None = Field(
        None, description="count (default) of the matching messages, or an aggregate of `field`"
    )
    field: str | None = Field(None, description="A numeric payload field: a dotted path")
    event_types: list[str] | None = Field(None, description="Names or patterns (`*`, `a.*`)")
    payload_filter: dict[str, Any] | None = Field(None, description="As an endpoint's")
    pushed_metric: str | None = Field(
        None, description="Use samples of this pushed metric (POST .../metric) instead"
    )
    operator: Operator | None = Field(None, description="threshold: how `value` is compared")
    value: float | None = Field(None, description="threshold: the threshold")
    window_seconds: int | None = Field(None, description="threshold, anomaly: the window")
    evaluate_every_seconds: int | None = Field(None, description="default 10")
    baseline_windows: int | None = Field(None, description="anomaly: trailing windows (6)")
    sensitivity: float | None = Field(None, description="anomaly: the robust score (3)")
    schedule: str | None = Field(None, description="digest: an interval (1h) or a cron line")
    cooldown_seconds: int | None = Field(None, description="No refire for this long")
    enabled: bool | None = None


class AlertRuleIn(_RuleFields):
    name: str = Field(..., min_length=1, max_length=128)
    kind: Kind


class AlertRulePatch(_RuleFields):
    """The fields to change; null removes an optional one."""

    name: str | None = Field(None, min_length=1, max_length=128)


class AlertRuleOut(_RuleFields):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
    id: str
    app_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    firing: bool
    times_fired: int
    last_fired_at: datetime | None = None
    last_evaluation: dict[str, Any] | None = None


class ListResponseAlertRuleOut(_Model):
    data: list[AlertRuleOut]
    done: bool
    iterator: str | None = None
    prev_iterator: str | None = None


class MetricSampleIn(_Model):
    name: str = Field(..., min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    value: float
    timestamp: datetime | None = Field(None, description="Default: now")


class MetricBatchIn(_Model):
    samples: list[MetricSampleIn] = Field(..., min_length=1, max_length=1000)


class MetricPushOut(_Model):
    recorded: int = Field(..., description="Samples kept")
    ignored: int = Field(..., description="Samples of metrics no rule of the app uses")
