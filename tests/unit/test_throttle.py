"""domain.throttle: an endpoint's pace (throttleRate), and how a claim plans around it."""

from __future__ import annotations

from hookpost.domain.scheduling import ClaimRounds, Head, Share, plan_claim
from hookpost.domain.throttle import Pace, PaceState, throttle_status


def sends_of(rate: int, claims_at: list[float], backlog: int) -> list[float]:
    """When a backlog is sent if claims come at ``claims_at`` (each takes its free slots)."""
    pace, sent = Pace(rate, None), []
    for now in claims_at:
        take = min(pace.slots(now), backlog - len(sent))
        if take:
            sent += [now] * take
            pace = Pace(rate, pace.after(now, take))
    return sent


def test_a_claim_takes_one_slot_and_the_next_waits_an_interval() -> None:
    pace = Pace(5, None)
    assert pace.slots(1_000) == 1
    after = pace.after(1_000, 1)
    assert after == 1_200
    assert Pace(5, after).gather_ms == 25  # (250 ms window - 200 ms interval) / 2
    assert Pace(5, after).slots(1_224) == 0
    assert Pace(5, after).slots(1_225) == 1


def test_a_busy_fast_endpoint_is_taken_from_in_fewer_larger_claims() -> None:
    # 50/s: a claim waits 115 ms past the slot and takes 6 slots, not one every 20 ms
    pace = Pace(50, 1_000.0)
    assert pace.ready_at() == 1_115
    assert pace.slots(1_114) == 0
    assert pace.slots(1_115) == 6
    # slow rates (an interval of 250 ms or more) do not wait
    assert Pace(4, 1_000.0).ready_at() == 1_000


def test_late_claims_keep_the_grid_so_the_rate_does_not_sag() -> None:
    # every claim 30 ms late: still one send per 200 ms, not per 230 ms
    pace, sent = Pace(5, None), []
    now = 0.0
    for _ in range(50):
        sent.append(now)
        pace = Pace(5, pace.after(now, 1))
        now = (pace.throttle_at or 0) + 30
    assert sent[-1] - sent[0] == 49 * 200 + 30
    assert sent[-1] - sent[0] >= 49 * 200  # N sends take at least (N - 1) / rate


def test_an_idle_endpoint_saves_up_no_burst() -> None:
    assert Pace(5, 1_000.0).slots(60_000) == 1  # a minute idle: one slot, not 300
    assert Pace(1000, 1_000.0).slots(60_000) == 1
    assert Pace(1000, 59_860.0).slots(60_000) == 141  # busy and fast: the slots since its last


def test_fast_rates_take_several_slots_per_claim_and_keep_the_rate() -> None:
    claims = [i * 20.0 for i in range(1, 501)]  # a claim every 20 ms for 10 s
    sent = sends_of(1000, claims, 100_000)
    in_5s = [t for t in sent if 2_000 <= t < 7_000]
    assert abs(len(in_5s) - 5_000) <= 5_000 * 0.1


def test_any_five_second_window_stays_within_ten_percent() -> None:
    claims = [i * 7.0 for i in range(1, 3_000)]  # a claim every 7 ms for 21 s
    for rate in (3, 5, 20, 100, 1000):
        sent = sends_of(rate, claims, 10**6)
        for start in range(1_000, 15_000, 250):
            n = sum(start <= t < start + 5_000 for t in sent)
            assert abs(n - 5 * rate) <= max(1, 5 * rate * 0.1), (rate, start, n)


def test_a_paced_endpoint_is_ready_only_with_a_free_slot_and_takes_at_most_its_slots() -> None:
    heads = [Head("a", 10, pace=Pace(5, 2_000.0)), Head("b", 20), Head("c", 30, pace=Pace(5, None))]
    shares = plan_claim(heads, 100, max_per_endpoint=32, now=1_000)
    assert shares == [Share("b", 32, 0), Share("c", 1, 1, pace=Pace(5, None))]


def test_paced_shares_get_no_top_up_and_report_where_their_pace_moves() -> None:
    fast = Pace(100, 4_880.0)  # 13 slots at 5,000
    rounds = ClaimRounds([Head("a", 10, pace=fast), Head("b", 20)], 100, now=5_000)
    assert rounds.first == [Share("a", 13, 0, pace=fast), Share("b", 50, 1)]
    more = rounds.next(["a"] * 13 + ["b"] * 50)
    assert more == [Share("b", 37, 1)]  # the rest of the claim: to b only
    rounds.next(["b"] * 37)
    assert rounds.paced() == [("a", 4_880.0 + 13 * 10.0)]


def test_rate_limit_status() -> None:
    assert throttle_status(None, None, 10, 100).limited is False
    assert throttle_status(5, 300.0, None, 100).limited is False  # nothing due
    assert throttle_status(5, 300.0, 200, 100).limited is False  # due later
    assert throttle_status(5, 50.0, 20, 100).limited is False  # a slot is free now
    status = throttle_status(5, 300.0, 20, 100)
    assert status.limited and status.since == 20
    assert PaceState(5, 300.0, 20, 100).status() == status
