"""Operational webhooks (Svix's): what hookpost tells the operator's own endpoints.

Their endpoints are endpoints of one reserved application (``OPERATIONAL_APP_ID``), and an
event is a message of that application, written by the store in the transaction of the change
it reports (docs/decisions/0029-operational-webhooks.md). Event types and payloads are the
Svix reference's ``webhooks`` section: ``{"type": ..., "data": {...}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hookpost.domain import ids
from hookpost.domain.health import Health
from hookpost.domain.matching import filters_match

# An id no client can create (ids are random past the time; uids may not look like ids):
# the time-zero application. Hidden from the application routes.
OPERATIONAL_APP_ID = ids.id_floor(ids.APP, 0)

ENDPOINT_CREATED = "endpoint.created"
ENDPOINT_UPDATED = "endpoint.updated"
ENDPOINT_DELETED = "endpoint.deleted"
ENDPOINT_DISABLED = "endpoint.disabled"
ENDPOINT_ENABLED = "endpoint.enabled"
ATTEMPT_EXHAUSTED = "message.attempt.exhausted"
ATTEMPT_FAILING = "message.attempt.failing"
ATTEMPT_RECOVERED = "message.attempt.recovered"
BACKGROUND_TASK_FINISHED = "background_task.finished"
EVENT_TYPES = (
    ENDPOINT_CREATED,
    ENDPOINT_UPDATED,
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    ENDPOINT_ENABLED,
    ATTEMPT_EXHAUSTED,
    ATTEMPT_FAILING,
    ATTEMPT_RECOVERED,
    BACKGROUND_TASK_FINISHED,
)
# Svix sends message.attempt.failing once a delivery has failed this many times (and
# message.attempt.recovered when a delivery that got it then succeeds).
FAILING_AFTER_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class OperationalEvent:
    """One event to write: its type, its ``data`` object and when it happened."""

    event_type: str
    data: dict[str, Any]
    at_ms: int

    def payload(self) -> dict[str, Any]:
        return {"type": self.event_type, "data": self.data}


def iso(ms: int) -> str:
    """As the API writes times: ``2024-05-01T12:00:00.123Z``."""
    seconds, millis = divmod(ms, 1000)  # integers: a float could round the milliseconds
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def endpoint_event(
    event_type: str,
    app_id: str,
    app_uid: str | None,
    endpoint_id: str,
    endpoint_uid: str | None,
    at_ms: int,
) -> OperationalEvent:
    """endpoint.created, .updated, .deleted and .enabled (EndpointCreatedEventData...)."""
    data = {
        "appId": app_id,
        "appUid": app_uid,
        "endpointId": endpoint_id,
        "endpointUid": endpoint_uid,
    }
    return OperationalEvent(event_type, data, at_ms)


def endpoint_disabled(
    app_id: str,
    app_uid: str | None,
    endpoint_id: str,
    endpoint_uid: str | None,
    at_ms: int,
    *,
    fail_since_ms: int | None,
    manual: bool,
) -> OperationalEvent:
    event = endpoint_event(ENDPOINT_DISABLED, app_id, app_uid, endpoint_id, endpoint_uid, at_ms)
    event.data["failSince"] = None if fail_since_ms is None else iso(fail_since_ms)
    event.data["trigger"] = "manual" if manual else "automatic"
    return event


def endpoint_change_event(
    was_disabled: bool,
    disabled: bool,
    app_id: str,
    app_uid: str | None,
    endpoint_id: str,
    endpoint_uid: str | None,
    at_ms: int,
) -> OperationalEvent:
    """The event an endpoint's update makes: enabled or disabled (by the API) when it turned
    the endpoint on or off, updated otherwise."""
    if disabled and not was_disabled:
        return endpoint_disabled(
            app_id, app_uid, endpoint_id, endpoint_uid, at_ms, fail_since_ms=None, manual=True
        )
    kind = ENDPOINT_ENABLED if was_disabled and not disabled else ENDPOINT_UPDATED
    return endpoint_event(kind, app_id, app_uid, endpoint_id, endpoint_uid, at_ms)


def attempt_event(
    event_type: str,
    *,
    app_id: str,
    msg_id: str,
    endpoint_id: str,
    attempt_id: str,
    status_code: int,
    at_ms: int,
    app_uid: str | None = None,
    msg_event_id: str | None = None,
) -> OperationalEvent:
    """message.attempt.exhausted, .failing and .recovered (MessageAttemptExhaustedEventData)."""
    return OperationalEvent(
        event_type,
        {
            "appId": app_id,
            "appUid": app_uid,
            "msgId": msg_id,
            "msgEventId": msg_event_id,
            "endpointId": endpoint_id,
            "lastAttempt": {
                "id": attempt_id,
                "responseStatusCode": status_code,
                "timestamp": iso(at_ms),
            },
        },
        at_ms,
    )


def attempt_event_type(succeeded: bool, failed_for_good: bool, attempts: int) -> str | None:
    """Which attempt event a delivery's result makes, if any: ``attempts`` counts this one.
    Failing is sent once, on the FAILING_AFTER_ATTEMPTS-th failure; recovered only for a
    delivery that was reported failing."""
    if succeeded:
        return ATTEMPT_RECOVERED if attempts > FAILING_AFTER_ATTEMPTS else None
    if failed_for_good:
        return ATTEMPT_EXHAUSTED
    return ATTEMPT_FAILING if attempts == FAILING_AFTER_ATTEMPTS else None


def auto_disabled(
    disabled: Sequence[tuple[str, str, str]], fail_since: Mapping[str, int | None], at_ms: int
) -> list[OperationalEvent]:
    """endpoint.disabled for the endpoints a batch of results disabled ((app id, endpoint id,
    reason), as ``health.replay`` reports them), ``fail_since`` by endpoint id."""
    return [
        endpoint_disabled(
            app_id, None, ep_id, None, at_ms, fail_since_ms=fail_since.get(ep_id), manual=False
        )
        for app_id, ep_id, _ in disabled
    ]


def recipients(
    endpoints: Iterable[tuple[str, list[str] | None, list[str] | None]], event_type: str
) -> list[str]:
    """The ids of the operational endpoints (id, filterTypes, channels) an event is for."""
    return [ep for ep, types, chans in endpoints if filters_match(types, chans, event_type, None)]


def fail_since(
    changed: Mapping[str, Health], disabled: Sequence[tuple[str, str, str]]
) -> dict[str, int | None]:
    """Each newly disabled endpoint's first unresolved failure (``health.replay``'s answer)."""
    return {ep_id: changed[ep_id].first_failure_at for _, ep_id, _ in disabled if ep_id in changed}


def recover_finished(
    task_id: str, endpoint_id: str, since_ms: int, until_ms: int | None, at_ms: int
) -> Callable[[int], list[OperationalEvent]]:
    """background_task.finished of an endpoint's recover, given how many it queued again
    (BackgroundTaskFinishedEvent2; its ``data`` as the reference's, snake_case included)."""

    def finished(sent: int) -> list[OperationalEvent]:
        data = {
            "messages_sent": sent,
            "endp_id": endpoint_id,
            "since": iso(since_ms),
            "until": None if until_ms is None else iso(until_ms),
        }
        return [task_finished(task_id, "endpoint.recover", "finished", data, at_ms)]

    return finished


def task_finished(
    task_id: str, kind: str, status: str, data: dict[str, Any], at_ms: int
) -> OperationalEvent:
    """background_task.finished (BackgroundTaskFinishedEvent2): a task ended, ``status``
    finished or failed, with the ``data`` its BackgroundTaskOut reports."""
    task = {"taskId": task_id, "task": kind, "status": status, "data": data}
    return OperationalEvent(BACKGROUND_TASK_FINISHED, task, at_ms)


# (key of the id in ``data``, key of the name the store fills in, its table and column)
NAMES = (
    ("appId", "appUid", "applications", "uid"),
    ("msgId", "msgEventId", "messages", "event_id"),
    ("endpointId", "endpointUid", "endpoints", "uid"),
)


def unnamed(events: Iterable[OperationalEvent]) -> dict[str, set[str]]:
    """By table: the ids whose name (uid, eventId) the events leave null. The worker does not
    read them; the store fills them in (``named``) for the events it writes."""
    wanted: dict[str, set[str]] = {table: set() for _, _, table, _ in NAMES}
    for event in events:
        for id_key, name_key, table, _ in NAMES:
            if name_key in event.data and event.data[name_key] is None:
                wanted[table].add(event.data[id_key])
    return wanted


def named(
    event: OperationalEvent, names: Mapping[str, Mapping[str, str | None]]
) -> OperationalEvent:
    """``event`` with the names found (``names[table][id]``) filled in."""
    data = dict(event.data)
    for id_key, name_key, table, _ in NAMES:
        if name_key in data and data[name_key] is None:
            data[name_key] = names.get(table, {}).get(data[id_key])
    return OperationalEvent(event.event_type, data, event.at_ms)


def applied(events: Sequence[OperationalEvent], stale: Collection[str]) -> list[OperationalEvent]:
    """``events`` but the attempt events of results whose lease was lost (``stale`` attempt
    ids): the delivery's new owner reports on it."""
    if not stale:
        return list(events)
    return [e for e in events if e.data.get("lastAttempt", {}).get("id") not in stale]
