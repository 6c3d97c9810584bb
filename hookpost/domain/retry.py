"""The retry decision: a pure function of the attempt's outcome and the schedule."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from hookpost.domain.health import GONE_410
from hookpost.domain.models import DeliveryStatus

# Delays after the 1st, 2nd, ... failed attempt (seconds): 8 attempts over about 28 hours.
DEFAULT_SCHEDULE: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.2
MAX_RETRY_AFTER_S = 24 * 3600  # a Retry-After beyond this is capped, never trusted blindly
ENDPOINT_GONE_STATUS = 410


def parse_schedule(text: str) -> tuple[int, ...]:
    """``"5,300,1800"`` -> (5, 300, 1800). Raises ValueError naming the bad item."""
    items = [part.strip() for part in text.split(",") if part.strip()]
    out = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"retry schedule item {item!r} is not a whole number") from None
        if value < 0:
            raise ValueError(f"retry schedule item {value} is negative")
        out.append(value)
    return tuple(out)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form only); None if absent or bad."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int  # 0 when no response was received
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Decision:
    status: DeliveryStatus
    next_attempt_at: int | None
    disable_endpoint_reason: str | None = None


def decide(
    outcome: Outcome,
    attempts_made: int,
    schedule: Sequence[int],
    now_ms: int,
    rng: random.Random | None = None,
) -> Decision:
    """What happens after attempt number ``attempts_made`` (1-based) ended with ``outcome``."""
    if outcome.succeeded:
        return Decision(DeliveryStatus.SUCCEEDED, None)
    if outcome.status_code == ENDPOINT_GONE_STATUS:
        return Decision(DeliveryStatus.FAILED, None, GONE_410)
    index = attempts_made - 1
    if index >= len(schedule):
        return Decision(DeliveryStatus.FAILED, None)
    delay = schedule[index] * (1 + (rng or random).uniform(-JITTER, JITTER))
    if outcome.retry_after_s is not None:
        delay = max(delay, min(outcome.retry_after_s, MAX_RETRY_AFTER_S))
    return Decision(DeliveryStatus.PENDING, now_ms + int(delay * 1000))
