"""Attempt statistics: what an application's or an endpoint's attempts add up to over a period.

An attempt counts at its time (its ``created_at``, the time in its id). Closed hours are read
from hourly rollups that a background pass fills from the attempts table; the rest of a range
(a partial first hour, the hours not rolled up yet) from the attempts themselves. Both sides
reduce attempts to the same *cells* (``cells_of``); the stores mirror ``latency_bucket`` and
``failure_reason`` in SQL (tests/contract/test_stats.py holds them equal).
Latency percentiles come from a histogram with fixed log-spaced bounds: an estimate is the upper
bound of the bucket that holds the percentile, never below the exact value and at most
``LATENCY_ERROR`` above it (docs/decisions/0033-stats.md). Counts are exact.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import Attempt
from hookpost.domain.retry import error_class

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# An hour is rolled up once this long has passed after its end: an attempt is written by its
# worker's next batch, within a second or two.
ROLLUP_GRACE_MS = 10 * 60_000
# An attempt written this long after its hour's end may find the hour rolled up already: its
# write marks the (application, hour) dirty, and the pass rolls that up again (late_hours).
LATE_AFTER_MS = ROLLUP_GRACE_MS // 2
HOURLY_UP_TO_MS = 48 * HOUR_MS  # ranges up to this long are broken down by hour, longer by day
MAX_RANGE_MS = 366 * DAY_MS
TOP_REASONS = 10
K = TypeVar("K")

SUCCESS = 0  # AttemptStatus.SUCCESS
FAIL = 1


def _bounds() -> tuple[int, ...]:
    """Bucket upper bounds in ms, inclusive: 2**(i/4) rounded, without repeats (1 ms ... ~58
    minutes, longer than any request may take)."""
    out: list[int] = []
    for i in range(88):
        bound = max(1, round(2 ** (i / 4)))
        if not out or bound > out[-1]:
            out.append(bound)
    return tuple(out)


LATENCY_BOUNDS = _bounds()
# An estimate e of an exact value v (a whole number of ms in its bucket) is v <= e <= v * this.
LATENCY_ERROR = max(
    LATENCY_BOUNDS[i] / (LATENCY_BOUNDS[i - 1] + 1) for i in range(1, len(LATENCY_BOUNDS))
)


def latency_bucket(duration_ms: int) -> int:
    """The histogram bucket of a duration: the first whose bound is at least it (the last
    bucket, ``len(LATENCY_BOUNDS)``, holds anything longer)."""
    return bisect_left(LATENCY_BOUNDS, duration_ms)


def bucket_bound(bucket: int) -> int:
    return LATENCY_BOUNDS[min(bucket, len(LATENCY_BOUNDS) - 1)]


def failure_reason(status_code: int, error: str | None) -> str:
    """Why an attempt failed: its error's class (``timeout``, ...) when no usable response
    came back, else the status code (``"500"``)."""
    if error is not None:
        return error_class(error)
    return str(status_code)


def hour_of(ms: int) -> int:
    return ms - ms % HOUR_MS


def closed_until(now_ms: int) -> int:
    """The end of the hours that may be rolled up at ``now_ms``."""
    return hour_of(now_ms - ROLLUP_GRACE_MS)


def first_hour(*times: int | None) -> int | None:
    """The hour of the earliest of ``times`` given (None if none is)."""
    known = [t for t in times if t is not None]
    return hour_of(min(known)) if known else None


def late_hours(attempts: Iterable[Attempt], now_ms: int) -> list[tuple[str, int]]:
    """(application, hour) of the attempts written at ``now_ms`` so long after their hour
    that the pass may have rolled it up: the hours to roll up again. Sorted (the order the
    stores lock them in). One comparison per attempt: the finish path's whole cost."""
    before = hour_of(now_ms - LATE_AFTER_MS)
    late = {
        (a.app_id, a.created_at - a.created_at % HOUR_MS) for a in attempts if a.created_at < before
    }
    return sorted(late)


class Cell(NamedTuple):
    """Attempts with all of these in common, and how many."""

    hour: int
    app_id: str
    endpoint_id: str
    event_type: str
    status: int
    bucket: int
    reason: str  # "" for a success
    n: int


class Canceled(NamedTuple):
    """Deliveries canceled in an hour with all of these in common, and how many (a
    cancellation counts at its time, as an attempt does)."""

    hour: int
    app_id: str
    endpoint_id: str
    event_type: str
    n: int


class AttemptRow(NamedTuple):
    created_at: int
    app_id: str
    endpoint_id: str
    event_type: str  # the message's
    status: int
    duration_ms: int
    response_status_code: int
    error: str | None


def cells_of(rows: Iterable[AttemptRow]) -> list[Cell]:
    """What the stores' cell queries compute, in Python: the definition they mirror."""
    counts: Counter[tuple[int, str, str, str, int, int, str]] = Counter()
    for r in rows:
        reason = "" if r.status == SUCCESS else failure_reason(r.response_status_code, r.error)
        key = (
            hour_of(r.created_at),
            r.app_id,
            r.endpoint_id,
            r.event_type,
            r.status,
            latency_bucket(r.duration_ms),
            reason,
        )
        counts[key] += 1
    return sorted(Cell(*k, n) for k, n in counts.items())


@dataclass
class Rollup:
    """One hour's (or more) rollup rows, keyed as the tables are."""

    counts: dict[tuple[int, str, str, str], list[int]] = field(default_factory=dict)
    latency: Counter[tuple[int, str, str, int]] = field(default_factory=Counter)
    failures: Counter[tuple[int, str, str, str]] = field(default_factory=Counter)
    canceled: Counter[tuple[int, str, str, str]] = field(default_factory=Counter)

    def add_canceled(self, rows: Iterable[Canceled]) -> Rollup:
        for r in rows:
            self.canceled[(r.hour, r.app_id, r.endpoint_id, r.event_type)] += r.n
        return self

    def canceled_rows(self) -> list[tuple[int, str, str, str, int]]:
        return sorted((*k, v) for k, v in self.canceled.items())

    def __bool__(self) -> bool:
        return bool(self.counts or self.canceled)

    def count_rows(self) -> list[tuple[int, str, str, str, int, int]]:
        return sorted((*k, v[0], v[1]) for k, v in self.counts.items())

    def latency_rows(self) -> list[tuple[int, str, str, int, int]]:
        return sorted((*k, v) for k, v in self.latency.items())

    def app_latency_rows(self) -> list[tuple[int, str, int, int]]:
        """The latency histogram per application (its endpoints' summed): what an
        application's report reads, a row per bucket instead of one per endpoint and bucket."""
        per_app: Counter[tuple[int, str, int]] = Counter()
        for (hour, app_id, _endpoint, bucket), n in self.latency.items():
            per_app[(hour, app_id, bucket)] += n
        return sorted((*k, v) for k, v in per_app.items())

    def failure_rows(self) -> list[tuple[int, str, str, str, int]]:
        return sorted((*k, v) for k, v in self.failures.items())


def fold(cells: Iterable[Cell]) -> Rollup:
    """Cells as the rollup tables hold them."""
    out = Rollup()
    for c in cells:
        pair = out.counts.setdefault((c.hour, c.app_id, c.endpoint_id, c.event_type), [0, 0])
        pair[0 if c.status == SUCCESS else 1] += c.n
        out.latency[(c.hour, c.app_id, c.endpoint_id, c.bucket)] += c.n
        if c.status != SUCCESS:
            out.failures[(c.hour, c.app_id, c.endpoint_id, c.reason)] += c.n
    return out


@dataclass(frozen=True, slots=True)
class Split:
    """A range [since, until) as rolled-up hours [rolled_from, rolled_to) (empty when equal)
    and the raw parts around them."""

    rolled_from: int
    rolled_to: int
    raw: tuple[tuple[int, int], ...]


def split_range(since_ms: int, until_ms: int, rolled_until: int) -> Split:
    """Which part of [since, until) the rollups answer: the whole hours in it before
    ``rolled_until``; the attempts answer the rest."""
    first = -(-since_ms // HOUR_MS) * HOUR_MS
    last = min(hour_of(until_ms), rolled_until)
    if last <= first:
        return Split(first, first, ((since_ms, until_ms),) if until_ms > since_ms else ())
    raw = tuple((a, b) for a, b in ((since_ms, first), (last, until_ms)) if b > a)
    return Split(first, last, raw)


def check_range(since_ms: int, until_ms: int) -> None:
    if until_ms <= since_ms:
        raise InvalidInput("until", "must be later than 'since'")
    if until_ms - since_ms > MAX_RANGE_MS:
        raise InvalidInput("since", f"the range may be at most {MAX_RANGE_MS // DAY_MS} days")


@dataclass(frozen=True, slots=True)
class Scope:
    """An application's attempts, or one endpoint's (of that application)."""

    app_id: str
    endpoint_id: str | None = None


class Counted(NamedTuple):
    key: str
    succeeded: int
    failed: int


class Period(NamedTuple):
    start: int
    succeeded: int
    failed: int


@dataclass(frozen=True)
class StatsReport:
    since: int
    until: int
    succeeded: int
    failed: int
    pending: int  # deliveries of messages created in the range, pending or sending now
    sending: int
    success_rate: float | None  # succeeded / attempts; None without attempts
    p50_ms: int | None
    p95_ms: int | None
    period: str  # "hour" | "day"
    by_period: list[Period]
    by_event_type: list[Counted]
    by_endpoint: list[Counted]
    failure_reasons: list[tuple[str, int]]


def percentile(histogram: Counter[int], p: float) -> int | None:
    """The nearest-rank ``p`` percentile's bucket bound (None for an empty histogram)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, -(-round(p * 1000) * total // 1000))  # ceil(p * total), exactly
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_bound(bucket)
    raise AssertionError("unreachable")


@dataclass
class Marginals:
    """What the rollups of some hours add up to, by each breakdown."""

    by_type: list[tuple[str, int, int]] = field(default_factory=list)
    by_hour: list[tuple[int, int, int]] = field(default_factory=list)
    by_endpoint: list[tuple[str, int, int]] = field(default_factory=list)
    latency: list[tuple[int, int]] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Tally:
    """Sums rollup rows and cells into one report."""

    by_type: dict[str, list[int]] = field(default_factory=dict)
    by_hour: dict[int, list[int]] = field(default_factory=dict)
    by_endpoint: dict[str, list[int]] = field(default_factory=dict)
    latency: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def add_cells(self, cells: Iterable[Cell]) -> None:
        for c in cells:
            s, f = (c.n, 0) if c.status == SUCCESS else (0, c.n)
            _add(self.by_type, c.event_type, s, f)
            _add(self.by_hour, c.hour, s, f)
            _add(self.by_endpoint, c.endpoint_id, s, f)
            self.latency[c.bucket] += c.n
            if c.status != SUCCESS:
                self.reasons[c.reason] += c.n

    def add_marginals(self, m: Marginals) -> None:
        for key, s, f in m.by_type:
            _add(self.by_type, key, s, f)
        for hour, s, f in m.by_hour:
            _add(self.by_hour, hour, s, f)
        for endpoint, s, f in m.by_endpoint:
            _add(self.by_endpoint, endpoint, s, f)
        for bucket, n in m.latency:
            self.latency[bucket] += n
        for reason, n in m.reasons:
            self.reasons[reason] += n

    def report(self, since: int, until: int, pending: int, sending: int) -> StatsReport:
        succeeded = sum(v[0] for v in self.by_type.values())
        failed = sum(v[1] for v in self.by_type.values())
        total = succeeded + failed
        hourly = until - since <= HOURLY_UP_TO_MS
        step = HOUR_MS if hourly else DAY_MS
        periods: dict[int, list[int]] = {}
        start = since - since % step
        while start < until:
            periods[start] = [0, 0]
            start += step
        for hour, (s, f) in self.by_hour.items():
            pair = periods.setdefault(hour - hour % step, [0, 0])
            pair[0] += s
            pair[1] += f
        reasons = sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        return StatsReport(
            since=since,
            until=until,
            succeeded=succeeded,
            failed=failed,
            pending=pending,
            sending=sending,
            success_rate=None if total == 0 else succeeded / total,
            p50_ms=percentile(self.latency, 0.5),
            p95_ms=percentile(self.latency, 0.95),
            period="hour" if hourly else "day",
            by_period=[Period(k, v[0], v[1]) for k, v in sorted(periods.items())],
            by_event_type=_counted(self.by_type),
            by_endpoint=_counted(self.by_endpoint),
            failure_reasons=reasons,
        )


def _add(into: dict[K, list[int]], key: K, s: int, f: int) -> None:
    pair = into.setdefault(key, [0, 0])
    pair[0] += s
    pair[1] += f


def _counted(values: dict[str, list[int]]) -> list[Counted]:
    return sorted(
        (Counted(k, v[0], v[1]) for k, v in values.items()),
        key=lambda c: (-(c.succeeded + c.failed), c.key),
    )
