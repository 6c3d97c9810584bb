"""Ordered (FIFO) endpoints: one delivery at a time, in creation order.

An ordered endpoint's unfinished deliveries form a queue in delivery id order (insert order).
At most one of them is *live*: due (pending with a due time, perhaps a retry's) or leased
(sending; its due time is the lease's expiry). The others are *parked*: pending with no due
time, which no claim sees (a claim reads only rows with a due time). So a failing head holds
back the rest until it succeeds or is exhausted, and a worker crash changes nothing: the
leased head is claimed again when its lease expires, still the head.

The rule has two parts, and the stores keep to both:

- A delivery joins an ordered endpoint's queue parked (``joins_parked``): on create, resend and
  recover alike. Parking can never break the rule, so it needs no lock.
- ``settle`` is the only thing that makes a parked row due. The stores run it, under the
  endpoint's lock on PostgreSQL, after anything that may have left the endpoint without a
  live row (a create or resend that parked rows, a head finished or canceled, ``ordered``
  switched) and in a periodic sweep. It is idempotent: settling a settled endpoint does nothing.

docs/decisions/0031-ordered-delivery.md has the trade-offs.
"""

from __future__ import annotations

from dataclasses import dataclass


def joins_parked(ordered: bool) -> bool:
    """Whether a delivery queued for an endpoint starts parked (every one of an ordered
    endpoint's: ``settle`` then picks the head)."""
    return ordered


def is_parked(status: int, due_at: int | None) -> bool:
    """Pending (status 0) without a due time: only parked rows look so (a finished row has
    no due time either, but a final status)."""
    return status == 0 and due_at is None


@dataclass(frozen=True, slots=True)
class QueueState:
    """What ``settle`` needs of one endpoint's queue: its live rows (leased ones, and pending
    ones with a due time, the oldest of those by id) and its oldest parked row."""

    ordered: bool
    sending: int = 0
    pending_live: int = 0
    oldest_pending_live: int | None = None
    oldest_parked: int | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """What to write: ``park`` every live pending row but ``keep`` (parked: no due time);
    make ``promote`` due now; or (an endpoint no longer ordered) make every parked row due."""

    park: bool = False
    keep: int | None = None
    promote: int | None = None
    unpark_all: bool = False

    @property
    def changes(self) -> bool:
        return self.park or self.promote is not None or self.unpark_all


NOTHING = Settlement()


def settle(q: QueueState) -> Settlement:
    """The writes that leave the endpoint's queue as the rule wants it.

    Not ordered: nothing is parked (``ordered`` switched off: all go due now). Ordered: one
    live row. A leased row cannot be parked (a worker holds it): while any is in flight (more
    than one only just after ``ordered`` was switched on), the pending live rows are parked and
    nothing is promoted. Otherwise the oldest live row stays the head (a head waiting for its
    retry keeps its place) and the others are parked; with no live row, the oldest parked row
    becomes the head, due now.
    """
    if not q.ordered:
        return Settlement(unpark_all=True) if q.oldest_parked is not None else NOTHING
    if q.sending:
        return Settlement(park=True) if q.pending_live else NOTHING
    if q.pending_live:
        if q.pending_live == 1:
            return NOTHING
        return Settlement(park=True, keep=q.oldest_pending_live)
    if q.oldest_parked is not None:
        return Settlement(promote=q.oldest_parked)
    return NOTHING


def head_left(next_status: int) -> bool:
    """Whether a finished attempt took its delivery out of the live set (succeeded, failed
    for good or canceled): its ordered endpoint then needs ``settle`` to move on."""
    return next_status != 0
