"""The charts' data: each chart reads ONE function here (decision 0039).

* ``app_stats`` (the stats page of the portal and of an application in the dashboard): the
  stats service, over hours or days (hourly rollups plus the open hour's attempts).
* ``overview`` (the dashboard's overview): messages and attempts per minute over the last 30
  minutes, which no rollup holds (they are hourly); it reads the recent rows through the
  services, bounded: at most ``MAX_ROWS`` rows per application and ``MAX_APPS`` applications.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from hookpost.domain.errors import InvalidInput, NotFound
from hookpost.domain.inputs import AttemptQuery
from hookpost.domain.models import Attempt, AttemptStatus, Endpoint, Page, PageRequest
from hookpost.domain.queries import MessageFilter
from hookpost.domain.stats import DAY_MS, HOUR_MS, Counted, StatsReport
from hookpost.services import Services

WINDOW_MIN = 30
MAX_ROWS = 2000
MAX_APPS = 100
PAGE = 250


@dataclass
class Series:
    """Per-minute buckets, oldest first; ``t`` in Unix seconds (what uPlot plots)."""

    t: list[int]
    columns: dict[str, list[float | None]]
    truncated: bool = False  # a bound above was reached: the counts are a lower bound

    def as_json(self) -> str:
        return json.dumps({"t": self.t, **self.columns, "truncated": self.truncated})

    @property
    def total(self) -> float:
        return sum(v or 0 for name, col in self.columns.items() if name != "rate" for v in col)


def _minutes(now_s: int, window: int) -> list[int]:
    last = now_s - now_s % 60
    return [last - 60 * i for i in range(window - 1, -1, -1)]


async def _recent_attempts(
    services: Services, app_id: str, since_ms: int
) -> tuple[list[Attempt], bool]:
    found: list[Attempt] = []
    iterator = None
    while len(found) < MAX_ROWS:
        page: Page[Attempt] = await services.messages.list_attempts(
            app_id, PageRequest(PAGE, iterator, descending=True), AttemptQuery(after=since_ms)
        )
        found += page.items
        if page.done or not page.items or not page.bounds:
            return found, False
        iterator = page.bounds[1]
    return found, True


def _bucket(ms: int, first_s: int) -> int:
    return (ms // 1000 - first_s) // 60


@dataclass
class AppStats:
    """An application's attempts over a range, from the stats service: by period (succeeded,
    failed, success rate, p50 and p95 latency), by event type, by endpoint, failure reasons."""

    range: str
    report: StatsReport
    chart: Series
    endpoints: list[tuple[Endpoint, Counted, StatsReport]]  # the busiest, with their latency

    @property
    def by_type(self) -> list[Counted]:
        return self.report.by_event_type


# The stats page's ranges: (length, period). Up to 48 hours the service breaks a range down
# by hour, beyond by UTC day (domain.stats.HOURLY_UP_TO_MS).
RANGES = {"24h": (24 * HOUR_MS, HOUR_MS), "7d": (7 * DAY_MS, DAY_MS), "30d": (30 * DAY_MS, DAY_MS)}
TOP_ENDPOINTS = 10


def rate(succeeded: int, failed: int) -> float | None:
    total = succeeded + failed
    return None if total == 0 else round(100 * succeeded / total, 1)


async def app_stats(
    services: Services, app_id: str, range_key: str = "24h", now_ms: int | None = None
) -> AppStats:
    """The stats service's report of the range ending with the current hour (24h) or day,
    and one report per period with attempts for its latency (the service gives percentiles
    per report): at most 1 + 30 + ``TOP_ENDPOINTS`` calls, each reading the hourly rollups of
    its closed hours and the attempts of the open one only (decision 0033)."""
    if range_key not in RANGES:
        raise InvalidInput("range", f"must be one of {', '.join(RANGES)}")
    length, step = RANGES[range_key]
    now = int(time.time() * 1000) if now_ms is None else now_ms
    until = now - now % step + step
    since = until - length
    stats = services.stats
    report = await stats.app(app_id, since, until)
    t: list[int] = []
    columns: dict[str, list[float | None]] = {
        "ok": [],
        "failed": [],
        "rate": [],
        "p50": [],
        "p95": [],
    }
    busy = [p for p in report.by_period if p.succeeded + p.failed]
    for period in report.by_period:
        t.append(period.start // 1000)
        columns["ok"].append(period.succeeded)
        columns["failed"].append(period.failed)
        columns["rate"].append(rate(period.succeeded, period.failed))
        p50 = p95 = None
        if busy == [period]:  # the only period with attempts: the range's percentiles
            p50, p95 = report.p50_ms, report.p95_ms
        elif period.succeeded + period.failed:
            one = await stats.app(app_id, period.start, period.start + step)
            p50, p95 = one.p50_ms, one.p95_ms
        columns["p50"].append(p50)
        columns["p95"].append(p95)
    endpoints: list[tuple[Endpoint, Counted, StatsReport]] = []
    for counted in report.by_endpoint[:TOP_ENDPOINTS]:
        try:
            endpoint = await services.endpoints.get(app_id, counted.key)
        except NotFound:
            continue  # deleted since (its attempts still count in the totals)
        one = await stats.endpoint(app_id, counted.key, since, until)
        endpoints.append((endpoint, counted, one))
    return AppStats(range_key, report, Series(t, columns), endpoints)


@dataclass
class Overview:
    throughput: Series
    failing: list[Endpoint]
    disabled: list[Endpoint]
    apps_scanned: int
    more_apps: bool


async def overview(services: Services, window: int = WINDOW_MIN) -> Overview:
    """Messages and attempts per minute and the success rate across applications, with the
    failing and disabled endpoints met on the way."""
    now_s = int(time.time())
    t = _minutes(now_s, window)
    since = t[0] * 1000
    messages, ok, failed = [0.0] * window, [0.0] * window, [0.0] * window
    failing: list[Endpoint] = []
    disabled: list[Endpoint] = []
    apps = await services.apps.list(PageRequest(limit=MAX_APPS))
    truncated = not apps.done
    for app in apps.items:
        attempts, cut = await _recent_attempts(services, app.id, since)
        truncated |= cut
        for a in attempts:
            i = _bucket(a.created_at, t[0])
            if 0 <= i < window:
                (ok if a.status == AttemptStatus.SUCCESS else failed)[i] += 1
        page = await services.messages.list(
            app.id, PageRequest(MAX_ROWS), MessageFilter(after=since), with_content=False
        )
        truncated |= not page.done
        for m in page.items:
            i = _bucket(m.created_at, t[0])
            if 0 <= i < window:
                messages[i] += 1
        endpoints = await services.endpoints.list(app.id, PageRequest(limit=PAGE))
        for e in endpoints.items:
            if e.disabled:
                disabled.append(e)
            elif e.consecutive_failures:
                failing.append(e)
    rate: list[float | None] = [
        round(100 * ok[i] / (ok[i] + failed[i]), 1) if ok[i] + failed[i] else None
        for i in range(window)
    ]
    columns: dict[str, list[float | None]] = {
        "messages": [*messages],
        "deliveries": [a + b for a, b in zip(ok, failed, strict=True)],
        "rate": rate,
    }
    return Overview(
        Series(t, columns, truncated), failing, disabled, len(apps.items), not apps.done
    )


def as_dict(series: Series) -> dict[str, Any]:
    return json.loads(series.as_json())  # type: ignore[no-any-return]
