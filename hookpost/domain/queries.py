"""Value types that cross the store ports: list filters and what writes report back."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from hookpost.domain.models import AttemptStatus, Message
from hookpost.domain.operational import OperationalEvent


@dataclass(frozen=True, slots=True)
class MessageFilter:
    event_types: Collection[str] | None = None
    channel: str | None = None
    before: int | None = None  # created strictly before (ms)
    after: int | None = None  # created strictly after (ms)

    def matches(self, message: Message) -> bool:
        """The filter as ``Messages.list_messages`` applies it, for rows paged by something
        else (a contract test holds the two equal)."""
        return (
            (not self.event_types or message.event_type in self.event_types)
            and (self.channel is None or self.channel in (message.channels or ()))
            and (self.before is None or message.created_at < self.before)
            and (self.after is None or message.created_at > self.after)
        )


@dataclass(frozen=True, slots=True)
class AttemptFilter:
    endpoint_id: str | None = None
    message_id: str | None = None
    status: AttemptStatus | None = None
    event_types: Sequence[str] | None = None
    before: int | None = None
    after: int | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A send's idempotency key, recorded with the message it creates: see
    ``Messages.create_message``."""

    scope: str
    key: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A request's answer stored under its idempotency key (``Idempotency.put_idempotent``)."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class SentMessage:
    """An idempotency key whose send created this message: a repeat is answered with the
    message as it is now, not with stored bytes."""

    message_id: str


# What an idempotency key holds.
KeyAnswer = StoredAnswer | SentMessage


@dataclass(slots=True)
class CreatedMessage:
    message: Message
    created: bool  # False: an earlier message with the same eventId was returned, or replayed
    deliveries: int  # deliveries created for it (0 when not created)
    # What the idempotency key given with the message held already: nothing was created, and
    # ``message`` is the one that was not.
    replayed: KeyAnswer | None = None


@dataclass(slots=True)
class QueueDepth:
    due: int  # deliveries due now (pending and due, or with an expired lease)
    oldest_due_at: int | None  # the earliest due time among them
    scheduled: int  # pending deliveries due later (parked ones too: domain.ordering)


@dataclass(slots=True)
class FinishOutcome:
    """What a batch of results changed beyond the rows themselves (for operational events)."""

    disabled_endpoints: list[tuple[str, str, str]]  # (app_id, endpoint_id, reason)
    stale: int  # results whose lease had been lost to another worker (attempt still recorded)
    notified: int = 0  # deliveries of operational events written with the results


# The operational events of a finished operation, given how many rows it changed (e.g. the
# deliveries a recover queued), written by the store with the operation's last write.
Finished = Callable[[int], Sequence[OperationalEvent]]
