"""domain.scheduling: which endpoints a claim serves, how many rows each, in which order."""

from __future__ import annotations

from hookpost.domain.scheduling import ClaimRounds, Head, Share, interleave, plan_claim, top_up


def test_ready_endpoints_longest_waiting_first_each_up_to_its_free_slots() -> None:
    heads = [Head("b", 20), Head("a", 10), Head("c", 30)]
    shares = plan_claim(heads, 128, max_per_endpoint=32, in_flight={"b": 30})
    assert shares == [Share("a", 32, 0), Share("b", 2, 1), Share("c", 32, 2)]


def test_excluded_and_saturated_endpoints_get_nothing() -> None:
    heads = [Head("a", 1), Head("b", 2), Head("c", 3)]
    shares = plan_claim(heads, 10, max_per_endpoint=4, in_flight={"b": 4}, exclude=["a"])
    assert shares == [Share("c", 4, 0)]


def test_many_endpoints_share_the_claim_equally_the_longest_waiting_take_the_rest() -> None:
    heads = [Head(f"e{i:03}", i) for i in range(300)]
    shares = plan_claim(heads, 128, max_per_endpoint=32)
    assert [s.endpoint_id for s in shares] == [f"e{i:03}" for i in range(128)]
    assert {s.take for s in shares} == {1}
    shares = plan_claim(heads[:5], 128, max_per_endpoint=None)
    assert [s.take for s in shares] == [26, 26, 26, 25, 25]
    assert sum(s.take for s in shares) == 128


def test_a_disabled_endpoints_rows_are_taken_to_be_canceled_outside_the_limit() -> None:
    shares = plan_claim([Head("off", 1, disabled=True), Head("a", 2)], 8, max_per_endpoint=4)
    assert shares == [Share("off", 8, 0, cancel=True), Share("a", 4, 0)]


def test_interleave_is_round_robin_in_rank_order_and_leaves_canceled_rows_out() -> None:
    shares = [Share("x", 5, 0, cancel=True), Share("a", 3, 0), Share("b", 3, 1)]
    rows = ["a1", "a2", "a3", "x1", "b1", "b2"]
    assert interleave(rows, shares, lambda r: r[0], 10) == ["a1", "b1", "a2", "b2", "a3"]
    assert interleave(rows, shares, lambda r: r[0], 3) == ["a1", "b1", "a2"]


def test_top_up_gives_the_rest_to_the_endpoints_that_took_all_they_were_given() -> None:
    # 10 endpoints: a has a backlog, the nine others one row each; each was given 13 or 12
    heads = [Head("a", 0)] + [Head(f"s{i}", i + 1) for i in range(9)]
    first = plan_claim(heads, 128, max_per_endpoint=32)
    assert first[0] == Share("a", 13, 0)
    got = {"a": 13, **{f"s{i}": 1 for i in range(9)}}
    more = top_up(first, got, got, 128, max_per_endpoint=32)
    assert more == [Share("a", 19, 0)]  # up to its free slots, not the 106 left
    assert top_up(more, {"a": 19}, {**got, "a": 32}, 128, max_per_endpoint=32) == []


def test_claim_rounds_stop_when_nothing_more_can_be_taken() -> None:
    rounds = ClaimRounds([Head("a", 0), Head("b", 1), Head("c", 2)], 6, max_per_endpoint=None)
    assert [s.take for s in rounds.first] == [2, 2, 2]
    more = rounds.next(["a", "a", "b"])  # b and c had fewer rows than their part
    assert more == [Share("a", 3, 0)]
    assert rounds.next(["a"]) == []  # a ran out too: not all of its share came
    assert rounds.order(["a1", "a2", "b1", "a3"], lambda r: r[0]) == ["a1", "b1", "a2", "a3"]
