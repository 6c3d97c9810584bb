"""The retry decision: a pure function of the attempt's outcome and the schedule."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hookpost.domain.disabled import GONE_410
from hookpost.domain.errors import InvalidInput
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


OUTCOME_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")


def outcome_class(status_code: int, error: str | None) -> str:
    """What an attempt's outcome is counted and logged as: the status code's class (``2xx``
    ... ``5xx``), or ``error`` when no response came back."""
    if error is not None or not 200 <= status_code < 600:
        return "error"  # (1xx never ends a request: aiohttp reads on to the final answer)
    return f"{status_code // 100}xx"


def error_class(error: str) -> str:
    """The kind of a failed attempt's error (``timeout``, ``connection error``, ...): the
    part of ``delivery.http.describe_error``'s text before its details, which may name hosts."""
    return error.split(":", 1)[0].strip()[:60] or "error"


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


# --------------------------------------------------------------------------- retry policies
# Per-endpoint ``retryPolicy`` and the event types' schedules (docs/decisions/0027).
MAX_ATTEMPTS = 50  # the first attempt included: a schedule has at most 49 delays
MAX_DELAY_S = 7 * 24 * 3600
MAX_MULTIPLIER = 100.0
STRATEGIES = ("exponential", "linear")
# A strategy's fields left out: 8 attempts (the global default's count), 5 s first delay,
# doubling, capped at a day.
DEFAULT_INITIAL_DELAY_S = 5
DEFAULT_MULTIPLIER = 2.0
DEFAULT_MAX_DELAY_S = 24 * 3600
DEFAULT_MAX_ATTEMPTS = 8

POLICY_FIELD = "retryPolicy"  # as the API names it


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """An endpoint's retry policy: an explicit ``schedule``, or a ``strategy`` with its
    parameters. ``delays()`` turns either into the schedule ``decide`` reads."""

    schedule: tuple[int, ...] | None = None
    strategy: str | None = None
    initial_delay_s: int = DEFAULT_INITIAL_DELAY_S
    multiplier: float = DEFAULT_MULTIPLIER
    max_delay_s: int = DEFAULT_MAX_DELAY_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def delays(self) -> tuple[int, ...]:
        """Delay after failed attempt 1, 2, ... (seconds); after the last one it gives up.
        Exponential: initial * multiplier^(n-1); linear: initial * n; both capped at the
        max delay."""
        if self.schedule is not None:
            return self.schedule
        out = []
        for n in range(1, self.max_attempts):
            step: float
            if self.strategy == "linear":
                step = self.initial_delay_s * n
            else:
                step = self.initial_delay_s * self.multiplier ** (n - 1)
            out.append(int(min(step, self.max_delay_s)))
        return tuple(out)

    def as_dict(self) -> dict[str, object]:
        """The API's (camelCase) shape, also the stored one."""
        if self.schedule is not None:
            return {"schedule": list(self.schedule)}
        out: dict[str, object] = {
            "strategy": self.strategy,
            "initialDelaySeconds": self.initial_delay_s,
            "maxDelaySeconds": self.max_delay_s,
            "maxAttempts": self.max_attempts,
        }
        if self.strategy == "exponential":
            out["multiplier"] = self.multiplier
        return out


def _bad(path: tuple[str | int, ...], message: str, field: str = POLICY_FIELD) -> InvalidInput:
    return InvalidInput(field, message, path)


def _whole(value: object, path: tuple[str | int, ...], low: int, high: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, "must be a whole number", field)
    if not low <= value <= high:
        raise _bad(path, f"must be from {low} to {high}", field)
    return value


def check_schedule(
    schedule: Sequence[object], field: str = POLICY_FIELD, path: tuple[str | int, ...] = ()
) -> tuple[int, ...]:
    """A list of delays (seconds): at most MAX_ATTEMPTS - 1 items, each up to MAX_DELAY_S."""
    if len(schedule) > MAX_ATTEMPTS - 1:
        raise _bad(path, f"at most {MAX_ATTEMPTS - 1} delays ({MAX_ATTEMPTS} attempts)", field)
    return tuple(_whole(v, (*path, i), 0, MAX_DELAY_S, field) for i, v in enumerate(schedule))


def policy_from_dict(raw: Mapping[str, object]) -> RetryPolicy:
    """Validate a ``retryPolicy`` (API or stored shape); InvalidInput names the field path."""
    if "schedule" in raw:
        extra = sorted(set(raw) - {"schedule"})
        if extra:
            raise _bad((extra[0],), "not allowed beside schedule")
        schedule = raw["schedule"]
        if not isinstance(schedule, list | tuple):
            raise _bad(("schedule",), "must be a list of delays in seconds")
        return RetryPolicy(schedule=check_schedule(schedule, path=("schedule",)))
    strategy = raw.get("strategy")
    if strategy not in STRATEGIES:
        raise _bad(("strategy",), "give either schedule or strategy: exponential or linear")
    known = {"strategy", "initialDelaySeconds", "maxDelaySeconds", "maxAttempts"}
    if strategy == "exponential":
        known.add("multiplier")
    extra = sorted(set(raw) - known)
    if extra:
        raise _bad((extra[0],), f"not a field of the {strategy} strategy")
    initial = _whole(
        raw.get("initialDelaySeconds", DEFAULT_INITIAL_DELAY_S),
        ("initialDelaySeconds",),
        0,
        MAX_DELAY_S,
        POLICY_FIELD,
    )
    cap = _whole(
        raw.get("maxDelaySeconds", max(DEFAULT_MAX_DELAY_S, initial)),
        ("maxDelaySeconds",),
        initial,
        MAX_DELAY_S,
        POLICY_FIELD,
    )
    attempts = _whole(
        raw.get("maxAttempts", DEFAULT_MAX_ATTEMPTS),
        ("maxAttempts",),
        1,
        MAX_ATTEMPTS,
        POLICY_FIELD,
    )
    multiplier = raw.get("multiplier", DEFAULT_MULTIPLIER)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float):
        raise _bad(("multiplier",), "must be a number")
    if not 1 <= multiplier <= MAX_MULTIPLIER:
        raise _bad(("multiplier",), f"must be from 1 to {MAX_MULTIPLIER:g}")
    return RetryPolicy(
        strategy=str(strategy),
        initial_delay_s=initial,
        multiplier=float(multiplier),
        max_delay_s=cap,
        max_attempts=attempts,
    )


def check_policy(policy: RetryPolicy | None) -> RetryPolicy | None:
    """A policy built in code (the library path) held to the API's rules."""
    return None if policy is None else policy_from_dict(policy.as_dict())


def schedule_for(
    endpoint_schedule: Sequence[int] | None,
    type_schedules: Mapping[str, Sequence[int]],
    event_type: str,
    default: Sequence[int],
) -> Sequence[int]:
    """The precedence: the endpoint's policy, then its event type's schedule, then the global
    schedule. An empty ``type_schedules`` (none set anywhere) costs one truth test."""
    if endpoint_schedule is not None:
        return endpoint_schedule
    if type_schedules:
        return type_schedules.get(event_type, default)
    return default
