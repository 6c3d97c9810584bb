"""Creating messages on SQLite: a whole group of messages in a fixed number of statements.

The API's concurrent sends land in the writer's group together (see ``executor``). Made one by
one, each costs three statements, and each statement hands the GIL to the busy event loop and
waits to get it back with the cross-process write lock held. Made as one :class:`Shared` write,
the group's messages go in by one multi-row INSERT, the endpoints of all their apps come back
as one row per app, and all their deliveries go in by one INSERT over a JSON array (and the
idempotency keys' answers of those that carry one, by one more, after one statement that
finds the keys answered before).

A send that repeats an earlier send's eventId in the same group gets that send's message. Anything
else unusual (an unknown app, a taken id) makes the multi-row statements fail; the executor then
runs each message alone, which answers each exactly as :meth:`Store.create_message` promises.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import orjson

from hookpost.domain.errors import NotFound
from hookpost.domain.matching import filters_match
from hookpost.domain.models import Message
from hookpost.domain.queries import CreatedMessage, StoredAnswer
from hookpost.store.rows import dumps_opt, message_from_row
from hookpost.store.sqlite.errors import conflict
from hookpost.store.sqlite.executor import Shared
from hookpost.store.sqlite.multirow import execute_values

_MESSAGES_INSERT = (
    "INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, expunged, "
    "created_at) VALUES {values}"
)
_BY_EVENT_ID = "SELECT * FROM messages WHERE app_id = ? AND event_id = ?"
# The enabled endpoints of each app, one row per app holding a JSON array of
# [id, event_types, channels]: one statement for any number of apps and endpoints.
_APPS_ENDPOINTS = (
    "SELECT app_id, json_group_array(json_array(id, json(event_types), json(channels))) "
    "FROM endpoints WHERE app_id IN (SELECT value FROM json_each(?)) AND disabled = 0 "
    "GROUP BY app_id"
)
# The deliveries as one JSON array of [app_id, message_id, now_ms, [endpoint_id, ...]]. Each
# json_extract parses its argument again, so the per-message values are taken out once per
# message in a subquery, which LIMIT keeps SQLite from flattening into the join (flattened,
# they were extracted again for every delivery: 4x slower at 22 endpoints per message).
_DELIVERIES_CREATE = (
    "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger, "
    "due_at, next_attempt_at, updated_at) "
    "SELECT m.app_id, m.message_id, e.value, 0, 0, 0, m.now, m.now, m.now FROM ("
    " SELECT json_extract(value, '$[0]') AS app_id, json_extract(value, '$[1]') AS message_id,"
    " json_extract(value, '$[2]') AS now, json_extract(value, '$[3]') AS endpoints"
    " FROM json_each(?) LIMIT -1) AS m, json_each(m.endpoints) AS e"
)


# The answers already stored under some of a group's idempotency keys: one statement for the
# group, over a JSON array of [scope, key, now_ms] (the array index comes back with each row).
_ANSWERS_FOUND = (
    "SELECT CAST(j.key AS INTEGER), i.status, i.body FROM json_each(?) AS j "
    "JOIN idempotency_keys AS i ON i.scope = json_extract(j.value, '$[0]') "
    "AND i.key = json_extract(j.value, '$[1]') WHERE i.expires_at > json_extract(j.value, '$[2]')"
)
# Idempotency keys' answers stored with the messages they answer for (their keys were checked in
# the same transaction, see _replayed).
ANSWERS_PUT = (
    "INSERT INTO idempotency_keys (scope, key, status, body, expires_at) VALUES {values} "
    "ON CONFLICT (scope, key) DO UPDATE SET status = excluded.status, body = excluded.body, "
    "expires_at = excluded.expires_at"
)


@dataclass(frozen=True, slots=True)
class NewMessage:
    message: Message
    now_ms: int
    only: frozenset[str] | None  # explicit endpoint ids; None: every endpoint whose filter matches
    answer: StoredAnswer | None = None  # stored if the message is created (see _replayed)


def _create_messages(c: sqlite3.Connection, items: list[NewMessage]) -> list[CreatedMessage]:
    answers: list[CreatedMessage | None] = [None] * len(items)
    fresh: list[int] = []  # indexes of the items to insert
    # A client retrying a send with the same eventId may land twice in one group: the later
    # one gets the earlier one's message, as it would one by one (the unique index would
    # otherwise fail the group's INSERT and make every send of the group run alone).
    first_of: dict[tuple[str, str], int] = {}
    repeats: list[tuple[int, int]] = []  # (item, the earlier item of the group it repeats)
    replayed = _replayed(c, items)
    for i, item in enumerate(items):
        m = item.message
        if i in replayed:  # its idempotency key was answered before: that answer wins
            answers[i] = CreatedMessage(m, created=False, deliveries=0, replayed=replayed[i])
            continue
        if m.event_id is not None:
            key = (m.app_id, m.event_id)
            if key in first_of:
                repeats.append((i, first_of[key]))
                continue
            row = c.execute(_BY_EVENT_ID, key).fetchone()
            if row is not None:
                answers[i] = CreatedMessage(message_from_row(row), created=False, deliveries=0)
                continue
            first_of[key] = i
        fresh.append(i)
    if fresh:
        _insert(c, [items[i] for i in fresh])
        endpoints = _endpoints_by_app(c, {items[i].message.app_id for i in fresh})
        deliveries: list[tuple[str, str, int, list[str]]] = []
        for i in fresh:
            item = items[i]
            m = item.message
            targets = [
                ep_id
                for ep_id, types, chans in endpoints.get(m.app_id, ())
                if (
                    ep_id in item.only
                    if item.only is not None
                    else filters_match(types, chans, m.event_type, m.channels)
                )
            ]
            if targets:
                deliveries.append((m.app_id, m.id, item.now_ms, targets))
            answers[i] = CreatedMessage(m, created=True, deliveries=len(targets))
        if deliveries:
            c.execute(_DELIVERIES_CREATE, (orjson.dumps(deliveries).decode(),))
        answers_put = [
            (a.scope, a.key, a.status, a.body, a.expires_at)
            for a in (items[i].answer for i in fresh)
            if a is not None
        ]
        if answers_put:
            execute_values(c, ANSWERS_PUT, answers_put)
    for i, first in repeats:
        answers[i] = CreatedMessage(items[first].message, created=False, deliveries=0)
    return answers  # type: ignore[return-value]  # every index answered above


def _replayed(c: sqlite3.Connection, items: list[NewMessage]) -> dict[int, tuple[int, bytes]]:
    """The answers already stored under the items' idempotency keys, by item index. The API
    runs one request per key at a time, so a group never holds one key twice (were it to,
    both messages would be created, and the later answer kept)."""
    keyed = [
        (i, (a.scope, a.key, item.now_ms))
        for i, item in enumerate(items)
        if (a := item.answer) is not None
    ]
    if not keyed:
        return {}
    rows = c.execute(_ANSWERS_FOUND, (orjson.dumps([k for _, k in keyed]).decode(),))
    return {keyed[j][0]: (status, bytes(body)) for j, status, body in rows}


def _insert(c: sqlite3.Connection, items: list[NewMessage]) -> None:
    rows = [
        (
            m.id,
            m.app_id,
            m.event_type,
            m.event_id,
            dumps_opt(m.channels),
            m.payload,
            0,
            m.created_at,
        )
        for m in (item.message for item in items)
    ]
    try:
        execute_values(c, _MESSAGES_INSERT, rows)
    except sqlite3.IntegrityError as exc:
        if len(items) > 1:
            raise  # which one is to blame: the executor runs each alone to find out
        if "FOREIGN KEY" in str(exc):
            raise NotFound("application", items[0].message.app_id) from None
        raise conflict(exc, "a message with this id") from None


def _endpoints_by_app(
    c: sqlite3.Connection, app_ids: set[str]
) -> dict[str, list[tuple[str, list[str] | None, list[str] | None]]]:
    rows = c.execute(_APPS_ENDPOINTS, (orjson.dumps(sorted(app_ids)).decode(),)).fetchall()
    return {app_id: orjson.loads(endpoints) for app_id, endpoints in rows}


CREATE_MESSAGES = Shared(_create_messages)
