"""Target 4's setup: a million deliveries scheduled for later, written straight into the database.

They belong to a separate app with 1,000 endpoints and total/1,000 messages (the unique
(message_id, endpoint_id) pair allows one delivery per combination), all with ``status = 0``
(pending) and ``due_at`` spread over the next day, starting an hour from now, so none of them
becomes due during the bench. Their endpoints point at the bench's nginx under
/future/, so a delivery sent early would show up in the log (the bench counts such lines).
The sealed signing keys are copied from an endpoint created through the API.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import asyncpg

from bench.common import payload_bytes
from hookpost.domain import ids

HOUR_MS = 3600 * 1000


def _rows(
    n_endpoints: int, n_messages: int, receiver: str, now: int, size: int
) -> tuple[str, list[tuple[str, str, str]], list[tuple[str, str, bytes]]]:
    app_id = ids.new_id(ids.APP, now)
    endpoints = [
        (ids.new_id(ids.ENDPOINT, now), app_id, f"{receiver}/future/{i}")
        for i in range(n_endpoints)
    ]
    body = payload_bytes(size)
    messages = [(ids.new_id(ids.MESSAGE, now), app_id, body) for _ in range(n_messages)]
    return app_id, endpoints, messages


def insert_sqlite(path: str, total: int, receiver: str, size: int) -> dict[str, Any]:
    n_ep = 1000 if total >= 1000 else max(1, total // 10)
    n_msg = max(1, total // n_ep)
    now = int(time.time() * 1000)
    app_id, endpoints, messages = _rows(n_ep, n_msg, receiver, now, size)
    t0 = time.monotonic()
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -1000000")  # ~1 GB page cache for this setup only
        conn.execute("BEGIN IMMEDIATE")
        (keys,) = conn.execute("SELECT keys FROM endpoints LIMIT 1").fetchone()
        conn.execute(
            "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
            "VALUES (?, 'bench-backlog', 'bench backlog', '{}', ?, ?)",
            (app_id, now, now),
        )
        conn.executemany(
            "INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(e, a, u, keys, now, now) for e, a, u in endpoints],
        )
        conn.executemany(
            "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
            "VALUES (?, ?, 'bench.backlog', ?, ?)",
            [(m, a, b, now) for m, a, b in messages],
        )
        conn.execute(
            "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger, "
            "due_at, next_attempt_at, updated_at) "
            "SELECT m.app_id, m.id, e.id, 0, 0, 0,"
            " ?1 + ((m.rowid * 1000 + e.rowid) % 86400) * 1000,"
            " ?1 + ((m.rowid * 1000 + e.rowid) % 86400) * 1000, ?2 "
            "FROM messages m CROSS JOIN endpoints e WHERE m.app_id = ?3 AND e.app_id = ?3",
            (now + HOUR_MS, now, app_id),
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE deliveries")
        (count,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE app_id = ? AND status = 0 AND due_at > ?",
            (app_id, now),
        ).fetchone()
    finally:
        conn.close()
    return {"rows": count, "seconds": round(time.monotonic() - t0, 1), "app_id": app_id}


async def _insert_pg(url: str, total: int, receiver: str, size: int) -> dict[str, Any]:
    n_ep = 1000 if total >= 1000 else max(1, total // 10)
    n_msg = max(1, total // n_ep)
    now = int(time.time() * 1000)
    app_id, endpoints, messages = _rows(n_ep, n_msg, receiver, now, size)
    t0 = time.monotonic()
    conn = await asyncpg.connect(url, timeout=10)
    try:
        # the rows are consistent by construction: skip the per-row foreign-key triggers
        # (superuser only; without the right the insert is just slower)
        try:
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.PostgresError:
            pass
        async with conn.transaction():
            keys = await conn.fetchval("SELECT keys FROM endpoints LIMIT 1")
            await conn.execute(
                "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
                "VALUES ($1, 'bench-backlog', 'bench backlog', '{}', $2, $2)",
                app_id,
                now,
            )
            await conn.executemany(
                "INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $5)",
                [(e, a, u, keys, now) for e, a, u in endpoints],
            )
            await conn.executemany(
                "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
                "VALUES ($1, $2, 'bench.backlog', $3, $4)",
                [(m, a, b, now) for m, a, b in messages],
            )
            await conn.execute(
                "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, "
                "trigger, due_at, next_attempt_at, updated_at) "
                "SELECT m.app_id, m.id, e.id, 0, 0, 0, $1 + (row_number() OVER () % 86400) * 1000,"
                " $1 + (row_number() OVER () % 86400) * 1000, $2 "
                "FROM messages m CROSS JOIN endpoints e WHERE m.app_id = $3 AND e.app_id = $3",
                now + HOUR_MS,
                now,
                app_id,
            )
        await conn.execute("ANALYZE deliveries")
        count = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE app_id = $1 AND status = 0 AND due_at > $2",
            app_id,
            now,
        )
    finally:
        await conn.close()
    return {"rows": count, "seconds": round(time.monotonic() - t0, 1), "app_id": app_id}


def insert_postgres(url: str, total: int, receiver: str, size: int) -> dict[str, Any]:
    return asyncio.run(_insert_pg(url, total, receiver, size))
