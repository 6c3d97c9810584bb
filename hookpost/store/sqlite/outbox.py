"""Operational events written in the transaction of the change they report (a transactional
outbox): a message of the operational application with its deliveries, or nothing when none
of that application's enabled endpoints wants it (docs/decisions/0029-operational-webhooks.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from hookpost.domain import ids
from hookpost.domain.operational import (
    NAMES,
    OPERATIONAL_APP_ID,
    OperationalEvent,
    named,
    recipients,
    unnamed,
)
from hookpost.domain.provenance import payload_sha256
from hookpost.domain.retention import DEFAULT_RETENTION_MS, payload_expires_at
from hookpost.store.rows import loads_opt
from hookpost.store.sqlite.multirow import execute_values
from hookpost.store.sqlite.sql import DELIVERIES_CREATE, MESSAGES_INSERT

# Its own query, not the send path's: an operational endpoint has no other filter than these.
OPERATIONAL_ENDPOINTS = (
    "SELECT id, event_types, channels FROM endpoints WHERE app_id = ? AND disabled = 0"
)


def write_events(c: sqlite3.Connection, events: Sequence[OperationalEvent]) -> int:
    """Write ``events`` on ``c`` (inside the caller's transaction): the deliveries created."""
    if not events:
        return 0
    rows = c.execute(OPERATIONAL_ENDPOINTS, (OPERATIONAL_APP_ID,)).fetchall()
    if not rows:  # the usual case: no operational endpoint, one indexed read
        return 0
    endpoints = [(ep, loads_opt(types), loads_opt(chans)) for ep, types, chans in rows]
    wanted = [(e, t) for e in events if (t := recipients(endpoints, e.event_type))]
    names = _names(c, [e for e, _ in wanted])
    messages, deliveries = [], []
    for event, targets in wanted:
        event = named(event, names)
        at = event.at_ms
        msg_id = ids.new_id(ids.MESSAGE, at)
        payload = orjson.dumps(event.payload())
        messages.append(
            (
                msg_id,
                OPERATIONAL_APP_ID,
                event.event_type,
                None,
                None,
                payload,
                0,
                at,
                payload_sha256(payload),
                payload_expires_at(at, DEFAULT_RETENTION_MS),
            )
        )
        deliveries.append((OPERATIONAL_APP_ID, msg_id, at, targets))
    if messages:
        execute_values(c, MESSAGES_INSERT, messages)
        c.execute(DELIVERIES_CREATE, (orjson.dumps(deliveries).decode(),))
    return sum(len(d[3]) for d in deliveries)


def _names(c: sqlite3.Connection, events: list[OperationalEvent]) -> dict[str, dict[str, str]]:
    """The uids and eventIds the events leave null (see ``operational.unnamed``)."""
    names = {}
    wanted = unnamed(events)
    for _, _, table, column in NAMES:
        if wanted[table]:
            query = f"SELECT id, {column} FROM {table} WHERE id IN (SELECT value FROM json_each(?))"
            names[table] = dict(c.execute(query, (orjson.dumps(sorted(wanted[table])).decode(),)))
    return names
