"""domain.ordering: which row of an ordered endpoint's queue is live, and what settling does."""

from __future__ import annotations

from hookpost.domain.models import DeliveryStatus
from hookpost.domain.ordering import (
    NOTHING,
    QueueState,
    Settlement,
    head_left,
    is_parked,
    joins_parked,
    settle,
)


def test_a_settled_queue_needs_nothing() -> None:
    assert settle(QueueState(True)) == NOTHING  # empty
    assert settle(QueueState(True, sending=1, oldest_parked=7)) == NOTHING  # head in flight
    one_due = QueueState(True, pending_live=1, oldest_pending_live=3, oldest_parked=7)
    assert settle(one_due) == NOTHING  # head due, or waiting for its retry
    assert settle(QueueState(False)) == NOTHING
    assert not NOTHING.changes


def test_no_live_row_the_oldest_parked_goes() -> None:
    assert settle(QueueState(True, oldest_parked=7)) == Settlement(promote=7)


def test_switched_on_the_oldest_live_row_stays_the_head() -> None:
    state = QueueState(True, pending_live=3, oldest_pending_live=4, oldest_parked=9)
    assert settle(state) == Settlement(park=True, keep=4)


def test_rows_in_flight_cannot_be_parked_so_the_due_ones_are() -> None:
    state = QueueState(True, sending=2, pending_live=5, oldest_pending_live=1)
    assert settle(state) == Settlement(park=True)


def test_switched_off_every_parked_row_goes() -> None:
    assert settle(QueueState(False, oldest_parked=2)) == Settlement(unpark_all=True)
    assert settle(QueueState(False, sending=1, oldest_parked=2)).unpark_all


def test_joining_and_leaving_the_queue() -> None:
    assert joins_parked(True) and not joins_parked(False)
    assert is_parked(0, None)
    assert not is_parked(0, 5) and not is_parked(DeliveryStatus.SUCCEEDED, None)
    assert not head_left(DeliveryStatus.PENDING)  # a retry keeps its place
    for status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELED):
        assert head_left(status)
