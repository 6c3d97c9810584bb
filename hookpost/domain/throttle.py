"""An endpoint's ``throttleRate``: at most that many deliveries a second, across all workers.

The rule is a cell-rate pace (GCRA): each throttled endpoint keeps ``throttle_at``, the
earliest time it may be sent to again (ms, fractional, on the due times' clock). A claim at
``now >= throttle_at`` takes slots one every ``1000 / rate`` ms from its *base* up to ``now``,
and moves ``throttle_at`` past the slots it used. The base is ``throttle_at`` when the claim
comes at most one window late (a slot, or ``BURST_MS`` at fast rates): late claims keep the
pace instead of letting it sag, and a fast endpoint takes several slots per claim. Later than
that, the endpoint was idle and the base is ``now``: it saves up no burst, so N deliveries
take at least (N - 1) / rate seconds. Over any 5 seconds an endpoint receives at most
``5 * rate`` plus one window's slots (docs/decisions/0030-enforced-throttling.md). The stores
keep ``throttle_at``; this module decides what a claim may take and what it becomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BURST_MS = 250.0  # the time whose slots a claim may take at once, at fast rates


@dataclass(frozen=True, slots=True)
class Pace:
    """A throttled endpoint as a claim finds it: its rate, and its ``throttle_at`` (None
    before its first delivery)."""

    rate: int
    throttle_at: float | None

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.rate

    @property
    def window_ms(self) -> float:
        return max(self.interval_ms, BURST_MS)

    @property
    def gather_ms(self) -> float:
        """How long past ``throttle_at`` a claim waits to take from a busy fast endpoint: half
        the room its window leaves, so that one claim takes several slots (a claim that moves
        the pace costs the others a row lock and a write) and a late one still keeps the grid."""
        return (self.window_ms - self.interval_ms) / 2

    def ready_at(self) -> float | None:
        """When a claim may next take from the endpoint (None: now, it was never sent to)."""
        return None if self.throttle_at is None else self.throttle_at + self.gather_ms

    def base(self, now: float) -> float:
        """Where this claim's slots start."""
        if self.throttle_at is None or now - self.throttle_at > self.window_ms:
            return now  # idle (or never sent to)
        return self.throttle_at

    def slots(self, now: float) -> int:
        """How many deliveries a claim at ``now`` may take (0: not before ``ready_at``)."""
        ready = self.ready_at()
        if ready is not None and ready > now:
            return 0
        return math.floor((now - self.base(now)) / self.interval_ms) + 1

    def after(self, now: float, taken: int) -> float:
        """``throttle_at`` once a claim at ``now`` has taken ``taken`` of its slots."""
        return advance(self.base(now), taken, self.interval_ms)


def gather_sql(rate: str, greatest: str) -> str:
    """``Pace.gather_ms`` as SQL over a rate column (``greatest``: the dialect's two-argument
    maximum), for the stores' next-due statements (tests/contract/test_throttle.py holds them
    equal)."""
    return f"({greatest}(0, {BURST_MS} - 1000.0 / {rate}) / 2)"


def advance(base: float, taken: int, interval_ms: float) -> float:
    """The pace's step (the PostgreSQL claim computes it in SQL, from the base and the
    interval the domain gives it: tests/contract/test_throttle.py holds the two equal)."""
    return base + taken * interval_ms


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    """Svix's rate-limit status: RateLimited while due deliveries wait for the endpoint's
    next slot; ``since``: the due time of the oldest one waiting."""

    limited: bool
    since: int | None = None


def throttle_status(
    rate: int | None, throttle_at: float | None, oldest_due: int | None, now: int
) -> ThrottleStatus:
    """Whether the limit holds deliveries back now: a delivery is due and the endpoint's next
    slot is still ahead."""
    if rate is None or oldest_due is None or oldest_due > now:
        return ThrottleStatus(False)
    if throttle_at is None or throttle_at <= now:
        return ThrottleStatus(False)
    return ThrottleStatus(True, oldest_due)


@dataclass(frozen=True, slots=True)
class PaceState:
    """What a store knows of an endpoint's pace, all on the clock of ``now`` (the database's
    on PostgreSQL): its rate, ``throttle_at``, and its oldest pending due time."""

    rate: int | None
    throttle_at: float | None
    oldest_due: int | None
    now: int

    def status(self) -> ThrottleStatus:
        return throttle_status(self.rate, self.throttle_at, self.oldest_due, self.now)
