"""Retention: when a message's payload is erased, and when a message is deleted.

A message keeps its payload (and its attempts their response bodies) for its own period
(``payloadRetentionPeriod`` days or ``payloadRetentionHours``), else for the deployment's
default (``HOOKPOST_PAYLOAD_RETENTION_DAYS``); the expiry is fixed when the message is created.
After it the payload is erased as an expunge does (``payloadSha256`` stays). Apart from that,
a horizon (``HOOKPOST_RETENTION_DAYS``, or ``hookpost cleanup --older-than``) deletes messages
created before it, with their deliveries and attempts, except a message that still has a
delivery pending or sending: nothing still to be sent is ever deleted.
The stores mirror ``payload_expired`` and ``deletable`` in SQL (tests/contract/test_retention.py
holds them equal). docs/decisions/0032-retention.md says how deletion stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hookpost.domain.models import DeliveryStatus
from hookpost.domain.tasks import RUNNING

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
DEFAULT_PAYLOAD_RETENTION_DAYS = 90
# Operational webhooks' messages, which the stores write themselves, keep the default's default.
DEFAULT_RETENTION_MS = DEFAULT_PAYLOAD_RETENTION_DAYS * DAY_MS
# The statuses that still have a request to make: never deleted.
UNFINISHED = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The deployment's settings: the default payload period, and the horizon (None: off)."""

    payload_days: int = DEFAULT_PAYLOAD_RETENTION_DAYS
    horizon_days: int | None = None

    def horizon_ms(self, now_ms: int) -> int | None:
        """Messages created before this are deleted (None: none are)."""
        return None if self.horizon_days is None else now_ms - self.horizon_days * DAY_MS


def retention_ms(
    policy: RetentionPolicy, period_days: int | None = None, period_hours: int | None = None
) -> int:
    """How long a message keeps its payload: its own period (days or hours, at most one of
    them given), else the deployment's default."""
    if period_hours is not None:
        return period_hours * HOUR_MS
    return (policy.payload_days if period_days is None else period_days) * DAY_MS


def payload_expires_at(created_at_ms: int, keep_ms: int) -> int:
    return created_at_ms + keep_ms


def payload_expired(expires_at_ms: int | None, expunged: bool, now_ms: int) -> bool:
    """Whether the payload is due to be erased at ``now_ms`` (None: a message whose payload is
    kept until the horizon deletes it)."""
    return not expunged and expires_at_ms is not None and expires_at_ms <= now_ms


def deletable(created_at_ms: int, statuses: Iterable[DeliveryStatus], before_ms: int) -> bool:
    """Whether a message (with its deliveries and attempts) is deleted by a horizon: created
    before ``before_ms``, and none of its deliveries unfinished."""
    return created_at_ms < before_ms and not any(s in UNFINISHED for s in statuses)


def task_deletable(status: str, updated_at_ms: int, before_ms: int) -> bool:
    """Whether a background task is deleted by a horizon: done (finished or failed) and last
    written before ``before_ms``; a running one is never."""
    return status != RUNNING and updated_at_ms < before_ms


# A token stays listed (``hookpost token list``) this long after it expired, so that an operator
# can still see why a client stopped working; then every cleanup deletes it.
EXPIRED_TOKEN_KEPT_MS = 7 * DAY_MS


def token_deletable(expires_at_ms: int | None, now_ms: int) -> bool:
    """Whether an API token (an expiring one, e.g. a portal or dashboard session's) is deleted
    by a cleanup at ``now_ms``: expired more than ``EXPIRED_TOKEN_KEPT_MS`` ago. Unlike the
    horizon, this needs no setting: an expired token can never be used again."""
    return expires_at_ms is not None and expires_at_ms + EXPIRED_TOKEN_KEPT_MS <= now_ms


@dataclass(slots=True)
class CleanupCounts:
    """What a cleanup erased and deleted (or, dry, would)."""

    payloads: int = 0  # messages whose payload (and their attempts' responses) was erased
    messages: int = 0
    deliveries: int = 0
    attempts: int = 0
    tasks: int = 0  # finished background tasks
    tokens: int = 0  # API tokens long expired

    def add(self, other: CleanupCounts) -> None:
        self.payloads += other.payloads
        self.messages += other.messages
        self.deliveries += other.deliveries
        self.attempts += other.attempts
        self.tasks += other.tasks
        self.tokens += other.tokens
