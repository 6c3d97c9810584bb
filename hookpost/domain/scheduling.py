"""Which due deliveries a claim takes: per-endpoint shares, interleaved round-robin.

A claim looks at endpoints, not at the due backlog: each endpoint with due deliveries (its
*head*: its oldest due time) that the claimer does not exclude and that has a free in-flight
slot is *ready*. The longest-waiting ready endpoints come first, at most ``limit`` of them;
each takes up to its *share* from the head of its own queue, and the claim interleaves them
round-robin (every endpoint's first row, then every second...), so that a big backlog on one
endpoint cannot starve a small one (docs/decisions/0023-per-endpoint-claims.md). A disabled
endpoint's due rows are taken to be canceled, up to ``limit`` of them per claim; they do not
count against the claim's limit. The stores find the heads and take the rows; this module
decides how many and in which order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hookpost.domain.throttle import Pace

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Head:
    """An endpoint with due deliveries: its oldest due time, and whether it is disabled."""

    endpoint_id: str
    due_at: int
    disabled: bool = False
    pace: Pace | None = None  # a throttled endpoint's


@dataclass(frozen=True, slots=True)
class Share:
    """How many of an endpoint's due rows a claim takes, and its place in the round-robin
    (``rank``: 0 is the longest-waiting). ``cancel``: a disabled endpoint's, to be canceled.
    ``pace``: a throttled endpoint's, whose ``throttle_at`` the claim moves (ClaimRounds.paced)."""

    endpoint_id: str
    take: int
    rank: int
    cancel: bool = False
    pace: Pace | None = None


def plan_claim(
    heads: Iterable[Head],
    limit: int,
    max_per_endpoint: int | None = None,
    in_flight: Mapping[str, int] | None = None,
    exclude: Iterable[str] = (),
    now: float = 0,
) -> list[Share]:
    """The shares of one claim of up to ``limit`` deliveries, at ``now`` (the heads' clock:
    a throttled endpoint's free slots depend on it).

    Each ready endpoint takes at most its free slots and an equal part of the claim (the
    longest-waiting take the remainder, one more each): with a few endpoints, each may fill
    its free slots; with many, each gets one row. The takes of the ready endpoints add up to
    ``limit`` at most, so a store takes them all without cutting.
    """
    if limit <= 0:
        return []
    busy = in_flight or {}
    excluded = set(exclude)
    ready: list[tuple[Head, int]] = []  # with its throttle's free slots (or the limit)
    cancel: list[Head] = []
    for head in sorted(heads, key=lambda h: (h.due_at, h.endpoint_id)):
        if head.endpoint_id in excluded:
            continue
        if head.disabled:
            cancel.append(head)
        elif max_per_endpoint is None or busy.get(head.endpoint_id, 0) < max_per_endpoint:
            slots = limit if head.pace is None else head.pace.slots(now)
            if slots > 0:
                ready.append((head, slots))
    ready = ready[:limit]
    shares = [Share(h.endpoint_id, limit, rank, cancel=True) for rank, h in enumerate(cancel)]
    if not ready:
        return shares
    equal, extra = divmod(limit, len(ready))
    for rank, (head, slots) in enumerate(ready):
        part = min(equal + (rank < extra), slots)
        if max_per_endpoint is not None:
            part = min(part, max_per_endpoint - busy.get(head.endpoint_id, 0))
        shares.append(Share(head.endpoint_id, part, rank, pace=head.pace))
    return shares


MAX_ROUNDS = 3  # of a claim: its shares, then up to two top-ups


class ClaimRounds:
    """One claim, round by round: ``first`` are its shares (plan_claim); after each round the
    store reports the endpoints of the rows it took (to lease, not the canceled ones) to
    ``next``, which gives the next round's shares (top_up), or none. ``order`` interleaves
    all the rows taken; ``paced`` says where the throttled endpoints' paces move to."""

    def __init__(
        self,
        heads: Iterable[Head],
        limit: int,
        max_per_endpoint: int | None = None,
        in_flight: Mapping[str, int] | None = None,
        exclude: Iterable[str] = (),
        now: float = 0,
    ) -> None:
        self._limit, self._cap, self._busy = limit, max_per_endpoint, in_flight or {}
        self._now = now
        self.first = plan_claim(heads, limit, max_per_endpoint, in_flight, exclude, now)
        self._last = self.first
        self._rounds = 1
        self._taken: dict[str, int] = {}

    def next(self, endpoints_taken: Iterable[str]) -> list[Share]:
        got: dict[str, int] = {}
        for endpoint_id in endpoints_taken:
            got[endpoint_id] = got.get(endpoint_id, 0) + 1
            self._taken[endpoint_id] = self._taken.get(endpoint_id, 0) + 1
        if self._rounds >= MAX_ROUNDS:
            return []
        self._rounds += 1
        self._last = top_up(self._last, got, self._taken, self._limit, self._cap, self._busy)
        return self._last

    def order(self, rows: Sequence[T], endpoint_of: Callable[[T], str]) -> list[T]:
        return interleave(rows, self.first, endpoint_of, self._limit)

    def paced(self) -> list[tuple[str, float]]:
        """The throttled endpoints this claim took rows of, and their ``throttle_at`` after it
        (a store that knows what it took in one transaction writes these)."""
        return [
            (s.endpoint_id, s.pace.after(self._now, self._taken[s.endpoint_id]))
            for s in self.first
            if s.pace is not None and self._taken.get(s.endpoint_id)
        ]


def top_up(
    last: Sequence[Share],
    got: Mapping[str, int],
    taken: Mapping[str, int],
    limit: int,
    max_per_endpoint: int | None = None,
    in_flight: Mapping[str, int] | None = None,
) -> list[Share]:
    """More shares after a round of a claim that leaves it short of ``limit``: for the
    endpoints that took all the last round gave them (they may have more) and have free slots
    left, an equal part of the rest.

    Without it, a claim over endpoints of which some have fewer rows than their part would
    come back short while others still have due rows and free slots, and the worker would
    wait for its next wake-up to take them. ``got``: the rows each endpoint took in the last
    round (``last``); ``taken``: in the whole claim so far (the rows to lease, not canceled)."""
    busy = in_flight or {}
    room = limit - sum(taken.values())
    # A throttled endpoint took its free slots in the first round, or all it had.
    full = [
        s
        for s in last
        if not s.cancel and s.pace is None and got.get(s.endpoint_id, 0) >= s.take > 0
    ]
    if room <= 0 or not full:
        return []
    equal, extra = divmod(room, len(full))
    more = []
    for i, s in enumerate(full):
        part = equal + (i < extra)
        if max_per_endpoint is not None:
            free = max_per_endpoint - busy.get(s.endpoint_id, 0) - taken.get(s.endpoint_id, 0)
            part = min(part, free)
        if part > 0:
            more.append(Share(s.endpoint_id, part, s.rank))
    return more


def interleave(
    rows: Sequence[T], shares: Sequence[Share], endpoint_of: Callable[[T], str], limit: int
) -> list[T]:
    """The rows to lease, round-robin across endpoints in share order (at most ``limit``).

    ``rows`` are each endpoint's taken rows in its own queue order (the endpoints' rows may be
    mixed); a canceled endpoint's rows are left out (the caller cancels them)."""
    rank = {s.endpoint_id: s.rank for s in shares if not s.cancel}
    nth: dict[str, int] = {}
    keyed = []
    for i, row in enumerate(rows):
        endpoint_id = endpoint_of(row)
        if endpoint_id not in rank:
            continue
        n = nth.get(endpoint_id, 0)
        nth[endpoint_id] = n + 1
        keyed.append(((n, rank[endpoint_id], i), row))
    keyed.sort(key=lambda pair: pair[0])
    return [row for _, row in keyed[:limit]]
