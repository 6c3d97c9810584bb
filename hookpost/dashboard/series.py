"""The charts' data. Each chart reads ONE function here, so that a stats service (being
built elsewhere: per-minute aggregates in the store) can replace these scans in one place.

Today they scan the recent attempts and messages through the services, bounded: at most
``MAX_ROWS`` rows per application and ``MAX_APPS`` applications (decision 0039)."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hookpost.domain.inputs import AttemptQuery
from hookpost.domain.models import Attempt, AttemptStatus, Endpoint, Page, PageRequest
from hookpost.domain.queries import MessageFilter
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
    by_type: list[tuple[str, int, int]] = field(default_factory=list)  # (type, ok, failed)
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


async def app_attempts(services: Services, app_id: str, window: int = WINDOW_MIN) -> Series:
    """One application's attempts per minute (succeeded, failed) and their mean latency."""
    now_s = int(time.time())
    t = _minutes(now_s, window)
    attempts, truncated = await _recent_attempts(services, app_id, t[0] * 1000)
    ok, failed, latency = [0.0] * window, [0.0] * window, [0.0] * window
    for a in attempts:
        i = _bucket(a.created_at, t[0])
        if 0 <= i < window:
            (ok if a.status == AttemptStatus.SUCCESS else failed)[i] += 1
            latency[i] += a.duration_ms
    mean: list[float | None] = [
        latency[i] / (ok[i] + failed[i]) if ok[i] + failed[i] else None for i in range(window)
    ]
    messages = await services.messages.attempt_messages(app_id, attempts[:PAGE])
    types: dict[str, Counter[bool]] = {}
    for a in attempts[:PAGE]:
        m = messages.get(a.message_id)
        if m is not None:
            types.setdefault(m.event_type, Counter())[a.status == AttemptStatus.SUCCESS] += 1
    by_type = sorted((name, c[True], c[False]) for name, c in types.items())
    columns: dict[str, list[float | None]] = {"ok": [*ok], "failed": [*failed], "latency": mean}
    return Series(t, columns, by_type, truncated)


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
        Series(t, columns, [], truncated), failing, disabled, len(apps.items), not apps.done
    )


def as_dict(series: Series) -> dict[str, Any]:
    return json.loads(series.as_json())  # type: ignore[no-any-return]
