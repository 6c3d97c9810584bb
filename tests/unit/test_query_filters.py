"""The list routes' ``event_types`` filter: linear in the number of names, and capped."""

from __future__ import annotations

import time

import pytest

from hookpost.api.errors import ValidationFailure
from hookpost.api.fields import MAX_EVENT_TYPES
from hookpost.api.routes.common import event_types_filter


def _names(n: int, prefix: str = "t") -> list[str]:
    return [",".join(f"{prefix}{i}" for i in range(n))]


def _best_of(runs: int, values: list[str]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        event_types_filter(values)
        best = min(best, time.perf_counter() - start)
    return best


def test_dedupes_in_order_across_repeats_and_commas() -> None:
    assert event_types_filter(["b,a", " a ,c", "", "b"]) == ["b", "a", "c"]
    assert event_types_filter([",", ""]) is None
    assert event_types_filter(None) is None


def test_time_grows_linearly_with_the_number_of_names() -> None:
    # Twice the names must cost about twice the time, not four times (a list scan per name
    # did). The best of several runs keeps a loaded machine's noise out of the ratio.
    half, full = _names(MAX_EVENT_TYPES // 2), _names(MAX_EVENT_TYPES)
    _best_of(3, full)  # warm up
    ratio = _best_of(15, full) / _best_of(15, half)
    assert ratio < 3.0, ratio


def test_at_most_max_event_types_distinct_names() -> None:
    assert len(event_types_filter(_names(MAX_EVENT_TYPES)) or ()) == MAX_EVENT_TYPES
    # Repeats do not count against the cap.
    assert event_types_filter(_names(MAX_EVENT_TYPES) * 3) is not None
    with pytest.raises(ValidationFailure) as refused:
        event_types_filter(_names(MAX_EVENT_TYPES + 1))
    (item,) = refused.value.items
    assert item["loc"] == ["query", "event_types"]
    assert str(MAX_EVENT_TYPES) in item["msg"]
