"""Bodies of the statistics routes (api/routes/stats.py): Svix's ``AppAttemptStatsOut``, whose JSON
fields are snake_case in the reference, and hookpost's delivery statistics (camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class AppAttemptEventTypeStats(BaseModel):
    success: int
    failure: int
    canceled: int


class AppAttemptStatsOut(BaseModel):
    """Attempts that succeeded and failed in [since, until), and deliveries canceled in it,
    in all and per event type."""

    by_event_type: dict[str, AppAttemptEventTypeStats]
    total_success: int
    total_failure: int
    total_canceled: int
    since: datetime
    until: datetime


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StatsTotalsOut(_Camel):
    succeeded: int = Field(description="Attempts that succeeded in the range.")
    failed: int = Field(description="Attempts that failed in the range.")
    pending: int = Field(
        description="Deliveries of messages created in the range that wait for an attempt now."
    )
    sending: int = Field(description="Deliveries of messages created in the range in flight now.")


class StatsLatencyOut(_Camel):
    p50_ms: int | None = Field(description="Median attempt duration (ms); null without attempts.")
    p95_ms: int | None
    exact: Literal[False] = False
    max_overestimate: float = Field(
        description="An estimate is never below the exact nearest-rank percentile, and at most "
        "this factor above it: the upper bound of a log-spaced histogram bucket."
    )


class StatsPeriodOut(_Camel):
    start: datetime
    succeeded: int
    failed: int


class StatsEventTypeOut(_Camel):
    event_type: str
    succeeded: int
    failed: int


class StatsEndpointOut(_Camel):
    endpoint_id: str
    succeeded: int
    failed: int


class StatsFailureReasonOut(_Camel):
    reason: str = Field(
        description="The response's status code (`\"500\"`), or the error's class "
        "when no response came back (`timeout`, `connection error`...)."
    )
    count: int


class DeliveryStatsOut(_Camel):
    """hookpost's statistics of an application's or an endpoint's attempts over [since,
    until): counts are exact; latency percentiles are histogram estimates (``latency``)."""

    since: datetime
    until: datetime
    totals: StatsTotalsOut
    success_rate: float | None = Field(description="succeeded / (succeeded + failed).")
    latency: StatsLatencyOut
    period: Literal["hour", "day"] = Field(
        description="`byPeriod`'s step: hours for ranges up to 48 hours, else UTC days."
    )
    by_period: list[StatsPeriodOut]
    by_event_type: list[StatsEventTypeOut]
    by_endpoint: list[StatsEndpointOut]
    failure_reasons: list[StatsFailureReasonOut] = Field(description="The 10 most frequent.")
