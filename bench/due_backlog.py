"""The `backlog` scenario's setup: a DUE backlog (issue 26), written straight into the database.

``total`` deliveries, all pending and due now, spread evenly over ``n_endpoints`` endpoints of
one app (``total / n_endpoints`` messages, each to every endpoint), as a burst the worker could
not absorb would leave them. The endpoints point at the bench's nginx under ``prefix`` so the
bench counts their deliveries; the sealed signing keys are copied from an endpoint created
through the API. Written with SQL because loading 400,000 through the API takes minutes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import asyncpg

from bench.common import payload_bytes
from hookpost.domain import ids


def _endpoints(n: int, url: str, now: int) -> tuple[str, list[tuple[str, str, str]]]:
    app_id = ids.new_id(ids.APP, now)
    return app_id, [(ids.new_id(ids.ENDPOINT, now), app_id, f"{url}{i}") for i in range(n)]


def insert_sqlite(path: str, total: int, n_endpoints: int, url: str, size: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    app_id, endpoints = _endpoints(n_endpoints, url, now)
    n_msg = max(1, total // n_endpoints)
    t0 = time.monotonic()
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA cache_size = -1000000")
        conn.execute("BEGIN IMMEDIATE")
        (keys,) = conn.execute("SELECT keys FROM endpoints LIMIT 1").fetchone()
        conn.execute(
            "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
            "VALUES (?, 'bench-due', 'bench due backlog', '{}', ?, ?)",
            (app_id, now, now),
        )
        conn.executemany(
            "INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(e, a, u, keys, now, now) for e, a, u in endpoints],
        )
        conn.executemany(
            "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
            "VALUES (?, ?, 'bench.due', ?, ?)",
            [
                (ids.new_id(ids.MESSAGE, now), app_id, payload_bytes(size), now)
                for _ in range(n_msg)
            ],
        )
        conn.execute(
            "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger, "
            "due_at, next_attempt_at, updated_at) "
            "SELECT m.app_id, m.id, e.id, 0, 0, 0, ?1 - 60000 + m.rowid % 60000, ?1, ?1 "
            "FROM messages m CROSS JOIN endpoints e WHERE m.app_id = ?2 AND e.app_id = ?2",
            (now, app_id),
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        (count,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE app_id = ? AND due_at <= ?", (app_id, now)
        ).fetchone()
    finally:
        conn.close()
    return {"rows": count, "endpoints": n_endpoints, "seconds": round(time.monotonic() - t0, 1)}


async def _insert_pg(
    url: str, total: int, n_endpoints: int, recv: str, size: int
) -> dict[str, Any]:
    now = int(time.time() * 1000)
    app_id, endpoints = _endpoints(n_endpoints, recv, now)
    n_msg = max(1, total // n_endpoints)
    t0 = time.monotonic()
    conn = await asyncpg.connect(url, timeout=10)
    try:
        try:  # consistent by construction: skip the per-row foreign-key triggers
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.PostgresError:
            pass
        async with conn.transaction():
            keys = await conn.fetchval("SELECT keys FROM endpoints LIMIT 1")
            await conn.execute(
                "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
                "VALUES ($1, 'bench-due', 'bench due backlog', '{}', $2, $2)",
                app_id,
                now,
            )
            await conn.executemany(
                "INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $5)",
                [(e, a, u, keys, now) for e, a, u in endpoints],
            )
            await conn.copy_records_to_table(
                "messages",
                records=[
                    (ids.new_id(ids.MESSAGE, now), app_id, "bench.due", payload_bytes(size), now)
                    for _ in range(n_msg)
                ],
                columns=["id", "app_id", "event_type", "payload", "created_at"],
            )
            await conn.execute(
                "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, "
                "trigger, due_at, next_attempt_at, updated_at) "
                "SELECT m.app_id, m.id, e.id, 0, 0, 0,"
                " $1::bigint - 60000 + (hashtext(m.id) & 65535) % 60000, $1, $1"
                " FROM messages m CROSS JOIN endpoints e WHERE m.app_id = $2 AND e.app_id = $2",
                now,
                app_id,
            )
        await conn.execute("VACUUM ANALYZE deliveries")
        await conn.execute("ANALYZE messages")
        count = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE app_id = $1 AND due_at <= $2", app_id, now
        )
    finally:
        await conn.close()
    return {"rows": count, "endpoints": n_endpoints, "seconds": round(time.monotonic() - t0, 1)}


def insert_postgres(url: str, total: int, n_endpoints: int, recv: str, size: int) -> dict[str, Any]:
    return asyncio.run(_insert_pg(url, total, n_endpoints, recv, size))
