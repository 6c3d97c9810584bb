"""Attempt statistics: Svix's app attempt stats, and hookpost's per application and endpoint
(services/stats.py; docs/decisions/0033-stats.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from hookpost.api.mapping import iso, to_ms
from hookpost.api.routes.common import (
    ERRORS,
    AppCtx,
    EndpointId,
    EventTypesQuery,
    StrictJsonRoute,
    event_types_filter,
    json_response,
)
from hookpost.api.schemas.stats import AppAttemptStatsOut, DeliveryStatsOut
from hookpost.domain.stats import LATENCY_ERROR, StatsReport

router = APIRouter(tags=["Statistics"], responses=ERRORS, route_class=StrictJsonRoute)

Since = Annotated[datetime, Query(description="The range's start (inclusive).")]
Until = Annotated[datetime, Query(description="The range's end (exclusive).")]


@router.get(
    "/api/v1/app/{app_id}/stats/attempts",
    response_model=AppAttemptStatsOut,
    operation_id="v1.application.stats.attempts",
    summary="Get App Attempts Stats",
    description=(
        "Attempts that succeeded and failed in [since, until), and deliveries canceled in it "
        "(a disabled endpoint's queued deliveries, at the time a worker canceled them), per "
        "event type. Closed hours are read from rollups, the rest from the attempts and the "
        "cancellations (docs/decisions/0033-stats.md)."
    ),
)
async def app_attempt_stats(
    app: AppCtx, since: Since, until: Until, event_types: EventTypesQuery = None
) -> Response:
    stats = await app.services.stats.app_attempts(
        app.id, to_ms(since), to_ms(until), event_types_filter(event_types)
    )
    return json_response(
        {
            "by_event_type": {
                name: {"success": c.success, "failure": c.failure, "canceled": c.canceled}
                for name, c in stats.by_event_type.items()
            },
            "total_success": stats.total("success"),
            "total_failure": stats.total("failure"),
            "total_canceled": stats.total("canceled"),
            "since": iso(stats.since),
            "until": iso(stats.until),
        }
    )


def _report_out(r: StatsReport) -> dict[str, Any]:
    return {
        "since": iso(r.since),
        "until": iso(r.until),
        "totals": {
            "succeeded": r.succeeded,
            "failed": r.failed,
            "pending": r.pending,
            "sending": r.sending,
        },
        "successRate": r.success_rate,
        "latency": {
            "p50Ms": r.p50_ms,
            "p95Ms": r.p95_ms,
            "exact": False,
            "maxOverestimate": round(LATENCY_ERROR, 4),
        },
        "period": r.period,
        "byPeriod": [
            {"start": iso(p.start), "succeeded": p.succeeded, "failed": p.failed}
            for p in r.by_period
        ],
        "byEventType": [
            {"eventType": c.key, "succeeded": c.succeeded, "failed": c.failed}
            for c in r.by_event_type
        ],
        "byEndpoint": [
            {"endpointId": c.key, "succeeded": c.succeeded, "failed": c.failed}
            for c in r.by_endpoint
        ],
        "failureReasons": [{"reason": k, "count": n} for k, n in r.failure_reasons],
    }


_REPORT = (
    "hookpost's statistics of the attempts of [since, until): totals, success rate, latency "
    "percentiles (histogram estimates, see `latency`), by hour (ranges up to 48 hours) or UTC "
    "day, by event type, by endpoint, and the top failure reasons. Closed hours are read from "
    "rollups, the rest from the attempts (docs/decisions/0033-stats.md)."
)


@router.get(
    "/api/v1/app/{app_id}/stats/delivery",
    response_model=DeliveryStatsOut,
    operation_id="v1.stats.app-delivery",
    summary="Application Delivery Stats",
    description=_REPORT,
)
async def app_delivery_stats(app: AppCtx, since: Since, until: Until) -> Response:
    report = await app.services.stats.app(app.id, to_ms(since), to_ms(until))
    return json_response(_report_out(report))


@router.get(
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats/delivery",
    response_model=DeliveryStatsOut,
    operation_id="v1.stats.endpoint-delivery",
    summary="Endpoint Delivery Stats",
    description=_REPORT,
)
async def endpoint_delivery_stats(
    app: AppCtx, endpoint_id: EndpointId, since: Since, until: Until
) -> Response:
    report = await app.services.stats.endpoint(app.id, endpoint_id, to_ms(since), to_ms(until))
    return json_response(_report_out(report))
