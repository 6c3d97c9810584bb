"""domain.stats: latency buckets and their estimates' bound, failure reasons, how a range is
split between the rollups and the attempts, and how a report adds up."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import Attempt, AttemptStatus, Trigger
from hookpost.domain.stats import (
    DAY_MS,
    HOUR_MS,
    LATE_AFTER_MS,
    LATENCY_BOUNDS,
    LATENCY_ERROR,
    ROLLUP_GRACE_MS,
    Cell,
    Tally,
    bucket_bound,
    check_range,
    closed_until,
    failure_reason,
    late_hours,
    latency_bucket,
    percentile,
    split_range,
)

H0 = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS  # a UTC midnight


def test_buckets_are_log_spaced_and_hold_every_duration() -> None:
    assert LATENCY_BOUNDS[0] == 1 and list(LATENCY_BOUNDS) == sorted(set(LATENCY_BOUNDS))
    assert LATENCY_BOUNDS[-1] > 3_000_000  # longer than any request may take
    for ms in [0, 1, 2, 3, 9, 10, 11, 999, 1000, 1001, 15_000, 3_526_975]:
        b = latency_bucket(ms)
        assert ms <= LATENCY_BOUNDS[b] and (b == 0 or ms > LATENCY_BOUNDS[b - 1])
    assert latency_bucket(10**9) == len(LATENCY_BOUNDS)  # the overflow bucket
    assert 1.18 < LATENCY_ERROR < 1.2


def nearest_rank(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


@pytest.mark.parametrize("seed", range(20))
def test_a_percentile_estimate_is_its_buckets_bound_within_the_documented_error(seed: int) -> None:
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(4, 1.5)) for _ in range(rng.randint(1, 400))]
    histogram = Counter(latency_bucket(v) for v in values)
    for p in (0.5, 0.95):
        exact = nearest_rank(values, p)
        estimate = percentile(histogram, p)
        assert estimate == bucket_bound(latency_bucket(exact))
        assert exact <= estimate <= max(1, exact) * LATENCY_ERROR


def test_percentile_of_nothing_is_none() -> None:
    assert percentile(Counter(), 0.5) is None


def test_failure_reasons_are_status_codes_or_error_classes() -> None:
    assert failure_reason(500, None) == "500"
    assert failure_reason(0, "timeout: after 15 s") == "timeout"
    assert failure_reason(0, "connection error: 127.0.0.1:9 refused") == "connection error"
    assert failure_reason(0, "") == "error"


def test_split_range_reads_whole_rolled_hours_from_the_rollups() -> None:
    since, until = H0 + HOUR_MS // 2, H0 + 5 * HOUR_MS + 7
    s = split_range(since, until, rolled_until=H0 + 3 * HOUR_MS)
    assert (s.rolled_from, s.rolled_to) == (H0 + HOUR_MS, H0 + 3 * HOUR_MS)
    assert s.raw == ((since, H0 + HOUR_MS), (H0 + 3 * HOUR_MS, until))
    everything = split_range(H0, H0 + 2 * HOUR_MS, rolled_until=H0 + 9 * HOUR_MS)
    assert (everything.rolled_from, everything.rolled_to, everything.raw) == (
        H0,
        H0 + 2 * HOUR_MS,
        (),
    )
    nothing_rolled = split_range(since, until, rolled_until=0)
    assert nothing_rolled.rolled_to == nothing_rolled.rolled_from
    assert nothing_rolled.raw == ((since, until),)
    inside_an_hour = split_range(H0 + 5, H0 + 50, rolled_until=H0 + 9 * HOUR_MS)
    assert inside_an_hour.raw == ((H0 + 5, H0 + 50),)


def test_closed_hours_wait_for_the_grace_period() -> None:
    assert closed_until(H0 + HOUR_MS + ROLLUP_GRACE_MS - 1) == H0
    assert closed_until(H0 + HOUR_MS + ROLLUP_GRACE_MS) == H0 + HOUR_MS


def test_ranges_are_checked() -> None:
    with pytest.raises(InvalidInput) as e:
        check_range(H0, H0)
    assert e.value.field == "until"
    with pytest.raises(InvalidInput) as e:
        check_range(H0, H0 + 400 * DAY_MS)
    assert e.value.field == "since"


def cell(hour: int, ep: str, et: str, ok: bool, bucket: int, n: int, reason: str = "500") -> Cell:
    return Cell(hour, "app", ep, et, 0 if ok else 1, bucket, "" if ok else reason, n)


def test_a_report_is_hourly_up_to_48_hours_and_daily_beyond() -> None:
    t = Tally()
    t.add_cells(
        [
            cell(H0, "ep1", "a", True, 10, 3),
            cell(H0 + HOUR_MS, "ep1", "b", False, 20, 2),
            cell(H0 + 30 * HOUR_MS, "ep2", "a", False, 20, 1, "timeout"),
        ]
    )
    short = t.report(H0, H0 + 48 * HOUR_MS, pending=4, sending=1)
    assert short.period == "hour" and len(short.by_period) == 48
    assert short.by_period[1] == (H0 + HOUR_MS, 0, 2)
    assert (short.succeeded, short.failed, short.pending, short.sending) == (3, 3, 4, 1)
    assert short.success_rate == 0.5
    assert [tuple(c) for c in short.by_event_type] == [("a", 3, 1), ("b", 0, 2)]
    assert [tuple(c) for c in short.by_endpoint] == [("ep1", 3, 2), ("ep2", 0, 1)]
    assert short.failure_reasons == [("500", 2), ("timeout", 1)]
    assert short.p50_ms == LATENCY_BOUNDS[10] and short.p95_ms == LATENCY_BOUNDS[20]
    long = t.report(H0 + HOUR_MS // 2, H0 + 3 * DAY_MS, pending=0, sending=0)
    assert long.period == "day"
    assert [tuple(p) for p in long.by_period] == [
        (H0, 3, 2),
        (H0 + DAY_MS, 0, 1),
        (H0 + 2 * DAY_MS, 0, 0),
    ]


def _attempt(app_id: str, created_at: int) -> Attempt:
    return Attempt(
        id="atmpt_x",
        app_id=app_id,
        message_id="msg_x",
        endpoint_id="ep_x",
        url="http://127.0.0.1:9/",
        status=AttemptStatus.SUCCESS,
        trigger=Trigger.SCHEDULED,
        response_status_code=200,
        response="",
        duration_ms=1,
        created_at=created_at,
    )


def test_late_hours_are_those_written_well_after_their_hour() -> None:
    """Written LATE_AFTER_MS or more after its hour's end, an attempt marks (app, hour); the
    pass closes an hour only ROLLUP_GRACE_MS after its end, so earlier writes are in time."""
    end = H0 + HOUR_MS
    assert LATE_AFTER_MS < ROLLUP_GRACE_MS
    last = _attempt("app_a", end - 1)
    assert late_hours([last], end + LATE_AFTER_MS - 1) == []
    assert late_hours([last], end + LATE_AFTER_MS) == [("app_a", H0)]
    batch = [
        _attempt("app_b", H0 + 5),
        _attempt("app_a", H0 + 7),
        _attempt("app_a", H0 + 9),
        _attempt("app_a", end + 1),  # the next hour: not late yet
        _attempt("app_a", H0 - HOUR_MS),
    ]
    assert late_hours(batch, end + LATE_AFTER_MS) == [
        ("app_a", H0 - HOUR_MS),
        ("app_a", H0),
        ("app_b", H0),
    ]
    assert late_hours([], end) == []
