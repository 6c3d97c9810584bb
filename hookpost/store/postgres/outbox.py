"""Operational events written in the transaction of the change they report (a transactional
outbox): a message of the operational application with its deliveries, or nothing when none
of that application's enabled endpoints wants it (docs/decisions/0029-operational-webhooks.md)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
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
from hookpost.store.postgres.clocked import Clocked
from hookpost.store.rows import loads_opt

OPERATIONAL_ENDPOINTS = (
    "SELECT id, event_types, channels FROM endpoints WHERE app_id = $1 AND NOT disabled"
)
EVENT_INSERT = (
    "INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, expunged,"
    " created_at, payload_sha256, payload_expires_at)"
    " VALUES ($1, $2, $3, NULL, NULL, $4, false, $5, $6, $7)"
)


async def write_events(
    conn: asyncpg.Connection, statements: Clocked, events: Sequence[OperationalEvent]
) -> int:
    """Write ``events`` on ``conn``, inside the caller's transaction: the deliveries created."""
    if not events:
        return 0
    rows = await conn.fetch(OPERATIONAL_ENDPOINTS, OPERATIONAL_APP_ID)
    if not rows:  # the usual case: no operational endpoint, one indexed read
        return 0
    endpoints = [(r["id"], loads_opt(r["event_types"]), loads_opt(r["channels"])) for r in rows]
    wanted = [(e, t) for e in events if (t := recipients(endpoints, e.event_type))]
    names = await _names(conn, [e for e, _ in wanted])
    created = 0
    for event, targets in wanted:
        event = named(event, names)
        msg_id = ids.new_id(ids.MESSAGE, event.at_ms)
        payload = orjson.dumps(event.payload())
        await conn.execute(
            EVENT_INSERT,
            msg_id,
            OPERATIONAL_APP_ID,
            event.event_type,
            payload,
            event.at_ms,
            payload_sha256(payload),
            payload_expires_at(event.at_ms, DEFAULT_RETENTION_MS),
        )
        await conn.execute(
            statements.deliveries_insert, OPERATIONAL_APP_ID, msg_id, targets, event.at_ms
        )
        created += len(targets)
    return created


async def _names(
    conn: asyncpg.Connection, events: list[OperationalEvent]
) -> dict[str, dict[str, str]]:
    """The uids and eventIds the events leave null (see ``operational.unnamed``)."""
    names = {}
    wanted = unnamed(events)
    for _, _, table, column in NAMES:
        if wanted[table]:
            query = f"SELECT id, {column} FROM {table} WHERE id = ANY($1::text[])"
            rows = await conn.fetch(query, sorted(wanted[table]))
            names[table] = {r[0]: r[1] for r in rows}
    return names
