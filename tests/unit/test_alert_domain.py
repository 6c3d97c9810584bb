"""Alert rules' domain: validation naming the field, the aggregates and their p95, the robust
anomaly score, crossings (once, cooldown, resolve) and schedules."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from hookpost.domain.alert_eval import (
    Aggregate,
    Selector,
    SeriesCounter,
    apply,
    decide,
    read_anomaly,
    robust_score,
    window_aggregate,
)
from hookpost.domain.alerts import (
    RESOLVED,
    TRIGGERED,
    AlertRule,
    RuleState,
    bucket_ms,
    merged_spec,
    next_run_ms,
    runs_between,
    validate_spec,
)
from hookpost.domain.errors import InvalidInput
from hookpost.domain.filters import Payload

THRESHOLD = {"name": "n", "kind": "threshold", "operator": "gt", "value": 1, "windowSeconds": 60}


def rule(**spec: Any) -> AlertRule:
    return AlertRule("alrt_x", "app_x", validate_spec({**THRESHOLD, **spec}), 0, 0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"kind": "sometimes"}, "kind"),
        ({"operator": "ne"}, "operator"),
        ({"value": "ten"}, "value"),
        ({"windowSeconds": 0}, "windowSeconds"),
        ({"metric": "median"}, "metric"),
        ({"metric": "avg"}, "field"),  # an aggregate needs its field
        ({"metric": "sum", "field": "a..b"}, "field"),
        ({"field": "data.amount"}, "field"),  # a count takes none
        ({"pushedMetric": "q", "eventTypes": ["a"]}, "eventTypes"),
        ({"payloadFilter": {"x": {"$bogus": 1}}}, "payloadFilter"),
        ({"schedule": "1h"}, "schedule"),  # only digests have one
        ({"cooldownSeconds": -1}, "cooldownSeconds"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_spec({**THRESHOLD, **change})
    assert err.value.field == field


def test_digest_schedules() -> None:
    validate_spec({"name": "d", "kind": "digest", "schedule": "0 9 * * *"})
    validate_spec({"name": "d", "kind": "digest", "schedule": "15m"})
    for bad in ("5s", "every day", "61 * * * *", None):
        with pytest.raises(InvalidInput) as err:
            validate_spec({"name": "d", "kind": "digest", "schedule": bad})
        assert err.value.field == "schedule"
    day = 86_400_000
    assert next_run_ms("0 9 * * *", 0) == 9 * 3_600_000
    assert next_run_ms("0 9 * * *", 9 * 3_600_000) == day + 9 * 3_600_000
    assert next_run_ms("1h", 1) == 3_600_000


@pytest.mark.parametrize("schedule", ["1h", "0 * * * *"])
def test_the_scheduled_times_of_a_gap_the_latest_first_kept(schedule: str) -> None:
    hour = 3_600_000
    assert runs_between(schedule, 0, 3 * hour + 5, 24) == [hour, 2 * hour, 3 * hour]
    assert runs_between(schedule, 0, 3 * hour, 24) == [hour, 2 * hour, 3 * hour]  # until: in
    assert runs_between(schedule, hour, 3 * hour - 1, 24) == [2 * hour]  # since: out
    assert runs_between(schedule, 3 * hour, 3 * hour + 5, 24) == []
    assert runs_between(schedule, 0, 10 * hour, 2) == [9 * hour, 10 * hour]


def test_patch_to_another_kind_drops_what_it_does_not_take() -> None:
    spec = validate_spec({**THRESHOLD})
    changed = validate_spec(merged_spec(spec, {"kind": "anomaly"}))
    assert "operator" not in changed and changed["baselineWindows"] == 6
    assert "windowSeconds" not in validate_spec(
        merged_spec(spec, {"kind": "digest", "schedule": "1h"})
    )


def test_aggregates_and_p95() -> None:
    agg = Aggregate()
    for v in range(1, 101):
        agg.add(float(v), sketch=True)
    other = Aggregate()
    other.add(-5.0, sketch=True)
    agg.merge(other)
    assert agg.value("count") == 101 and agg.value("min") == -5 and agg.value("max") == 100
    assert agg.value("sum") == 5045 and agg.value("avg") == pytest.approx(5045 / 101)
    assert agg.value("p95") == pytest.approx(95, rel=0.02)
    assert Aggregate().value("avg") is None and Aggregate().value("count") == 0


def test_window_rounds_its_start_to_a_bucket_edge() -> None:
    one = Aggregate(count=1)
    buckets = {0: one, 1000: Aggregate(count=2), 2000: Aggregate(count=4)}
    assert window_aggregate(buckets, 500, 3000, 1000).count == 6  # from 1000
    assert window_aggregate(buckets, 0, 2000, 1000).count == 3  # end excluded


def test_selector_ignores_alerts_and_values_that_are_not_numbers() -> None:
    sel = Selector(rule(metric="avg", field="data.amount"))
    assert sel.observe("payment.made", Payload(b'{"data": {"amount": 5}}')) == (True, 5.0)
    assert sel.observe("payment.made", Payload(b'{"data": {"amount": "5"}}'))[0] is False
    assert sel.observe("payment.made", Payload(b'{"data": {"amount": true}}'))[0] is False
    assert sel.observe(TRIGGERED, Payload(b'{"data": {"amount": 5}}'))[0] is False
    typed = Selector(rule(eventTypes=["a.*"], payloadFilter={"k": 1}))
    assert typed.observe("a.b", Payload(b'{"k": 1}')) == (True, None)
    assert typed.observe("a.b", Payload(b'{"k": 2}'))[0] is False
    assert typed.observe("b.a", Payload(b'{"k": 1}'))[0] is False


def test_robust_score() -> None:
    steady = robust_score(5, [5, 4, 6, 5, 5, 4])
    assert steady is not None and steady.median == 5 and steady.score == 0
    spike = robust_score(30, [5, 4, 6, 5, 5, 4])
    assert spike is not None and spike.score == pytest.approx(25)
    flat = robust_score(1000, [1000] * 6)  # MAD 0: 10% of the median is the scale
    assert flat is not None and flat.score == 0
    assert robust_score(1100, [1000] * 6).score == pytest.approx(1)  # type: ignore[union-attr]
    assert robust_score(None, [1, 2]) is None
    anomaly = rule(kind="anomaly", operator=None, value=None, sensitivity=3)
    windows = [Aggregate(count=n) for n in (5, 4, 6, 5, 5, 4, 30)]
    assert read_anomaly(anomaly, windows).holds
    assert not read_anomaly(anomaly, [*windows[:-1], Aggregate(count=6)]).holds


def test_a_crossing_fires_once_resolves_once_and_respects_the_cooldown() -> None:
    r = rule(cooldownSeconds=60)
    state = RuleState()
    seen = []
    for at, holds in [(0, True), (10, True), (20, False), (30, False), (40_000, True)]:
        t = decide(r, state, holds, at)
        apply(state, t, at)
        seen.append(None if t is None else (t.event_type, t.seq))
    # fired, held, resolved, cleared, and a new crossing within the cooldown: not yet
    assert seen == [(TRIGGERED, 1), None, (RESOLVED, 1), None, None]
    t = decide(r, state, True, 60_000)
    assert t is not None and (t.event_type, t.seq) == (TRIGGERED, 2)


def test_series_counter_matches_each_selection_once_for_every_series() -> None:
    count60 = rule(eventTypes=["pay.*"])
    count600 = rule(eventTypes=["pay.*"], windowSeconds=600)  # 10 s buckets
    avg = rule(eventTypes=["pay.*"], metric="avg", field="amount")
    again = rule(eventTypes=["pay.*"], value=99)  # shares count60's series
    counter = SeriesCounter([count60, count600, avg, again])
    assert counter.needs_payload
    deltas: dict[tuple[str, int], Aggregate] = {}
    counter.observe("pay.in", Payload(b'{"amount": 4}'), 12_345)
    counter.observe("pay.in", Payload(b'{"amount": "x"}'), 12_999)
    counter.observe("refund", Payload(b'{"amount": 4}'), 12_999)
    counter.observe(TRIGGERED, Payload(b'{"amount": 4}'), 12_999)
    counter.drain_into(deltas)
    assert count60.series == again.series != count600.series
    assert deltas[(count60.series, 12_000)].count == 2
    assert deltas[(count600.series, 10_000)].count == 2
    assert deltas[(avg.series, 12_000)].value("avg") == 4 and len(deltas) == 3


def test_series_counter_fine_buckets_equal_counting_each_series_apart() -> None:
    """The fine buckets merged into every series give what adding each message to each
    series' own bucket gives (the rule the counter's speed must not change)."""
    rng = random.Random(7)
    rules = [
        rule(
            eventTypes=["pay.*"],
            metric=metric,
            windowSeconds=60 * width,
            **({} if metric == "count" else {"field": "amount"}),
            **({"payloadFilter": {"tier": "gold"}} if f else {}),
        )
        for metric in ("count", "avg", "p95", "max")
        for width in (1, 3, 7, 10)
        for f in (False, True)
    ]
    counter = SeriesCounter(rules)
    got: dict[tuple[str, int], Aggregate] = {}
    want: dict[tuple[str, int], Aggregate] = {}
    selectors = {r.series: (Selector(r), bucket_ms(r)) for r in rules}
    for i in range(600):
        doc = {"amount": rng.choice([1, 2.5, 40, "x", None]), "tier": rng.choice(["gold", "tin"])}
        event_type = rng.choice(["pay.in", "pay.out", "refund"])
        created = 1_700_000_000_000 + i * 997
        payload = Payload(json.dumps(doc).encode())
        counter.observe(event_type, payload, created)
        for key, (sel, width) in selectors.items():
            counted, value = sel.observe(event_type, payload)
            if counted:
                want.setdefault((key, created // width * width), Aggregate()).add(value, sel.sketch)
        if i % 97 == 0:  # drained at page ends, as the evaluator does
            counter.drain_into(got)
    counter.drain_into(got)
    assert got.keys() == want.keys()
    for bucket, agg in want.items():
        mine = got[bucket]
        assert (mine.count, mine.low, mine.high, mine.cells) == (
            agg.count, agg.low, agg.high, agg.cells
        ), bucket  # fmt: skip
        assert mine.total == pytest.approx(agg.total)
