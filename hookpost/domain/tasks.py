"""Background tasks (Svix's ``BackgroundTaskOut``): durable operations a worker runs once.

A task is written ``running`` by the API and claimed by one worker at a time under a lease;
a runner that crashes loses its lease, and the next claim after it expires runs the task again,
so every kind is idempotent or resumable (docs/decisions/0034-background-tasks.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hookpost.domain.matching import ANY_EVENT_TYPE
from hookpost.domain.models import DeliveryStatus

RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
STATUSES = (RUNNING, FINISHED, FAILED)

RECOVER = "endpoint.recover"
REPLAY_MISSING = "endpoint.replay"
BULK_REPLAY = "endpoint.bulk-replay"
APP_STATS = "application.stats"
EVENT_TYPES_AGGREGATE = "event-type.aggregate"
PURGE_CONTENT = "application.purge_content"
# Svix's BackgroundTaskType; hookpost runs those above (broadcast and SDK generation: never).
KINDS = (
    REPLAY_MISSING,
    RECOVER,
    APP_STATS,
    "message.broadcast",
    "sdk.generate",
    EVENT_TYPES_AGGREGATE,
    PURGE_CONTENT,
    BULK_REPLAY,
)

# How long a claimed task is its runner's; the runner renews it meanwhile (every third of it).
LEASE_MS = 60_000
# A task that failed this many runs (crashes or errors) is marked failed, not run again.
MAX_RUNS = 5


# A bulk replay queues final deliveries only: pending and sending ones are queued already.
REPLAYABLE = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELED)


@dataclass(frozen=True, slots=True)
class ReplayRange:
    """What a bulk replay queues again: the endpoint's deliveries of messages created in
    [since, until) whose status is one of ``statuses``, whose message's type is one of
    ``event_types`` (None: any), last updated before ``before_ms`` (the task's creation, so
    that a task run again after a crash does not queue twice what its first run queued)."""

    app_id: str
    endpoint_id: str
    since_ms: int
    until_ms: int | None
    statuses: Sequence[DeliveryStatus]
    event_types: Sequence[str] | None
    before_ms: int

    @property
    def replayable(self) -> list[int]:
        """The wanted statuses a replay can queue, as stored."""
        return [int(s) for s in self.statuses if s in REPLAYABLE]

    @property
    def selects_nothing(self) -> bool:
        return not self.replayable or (self.event_types is not None and not self.event_types)


def check_status(value: str | None) -> None:
    if value is not None and value not in STATUSES:
        raise ValueError(value)


def event_types_aggregate(
    endpoints: Iterable[tuple[str, Sequence[str] | None]],
) -> list[dict[str, Any]]:
    """``event-type.aggregate``'s data: per application (its endpoints' (app id, eventTypes)),
    the event types its endpoints name, and whether one takes every type (no filter or ``*``)."""
    by_app: dict[str, tuple[set[str], list[bool]]] = {}
    for app_id, types in endpoints:
        names, catch_all = by_app.setdefault(app_id, (set(), [False]))
        if not types or ANY_EVENT_TYPE in types:
            catch_all[0] = True
        names.update(t for t in types or () if t != ANY_EVENT_TYPE)
    return [
        {
            "appId": app_id,
            "explicitlySubscribedEventTypes": sorted(names),
            "hasCatchAllEndpoint": catch_all[0],
        }
        for app_id, (names, catch_all) in sorted(by_app.items())
    ]
