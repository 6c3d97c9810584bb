"""The `backlog` scenario's setup: a DUE backlog (issue 26), written straight into the database.

``total`` deliveries, all pending and due now, spread evenly over ``n_endpoints`` endpoints of
one app (``total / n_endpoints`` messages, each to every endpoint), as a burst the worker could
not absorb would leave them. The endpoints point at the bench's nginx under ``prefix`` so the
bench counts their deliveries; each endpoint's signing key is sealed with the stack's main key
and bound to its row, as the API would store it. Written with SQL because loading 400,000
through the API takes minutes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import asyncpg

from bench.common import payload_bytes
from hookpost.domain import ids
from hookpost.domain.models import SigningKey
from hookpost.domain.signing import generate_secret
from hookpost.store.rows import seal_keys
from hookpost.store.secretbox import AeadBox, parse_main_key


def _endpoints(
    n: int, url: str, now: int, main_key: str
) -> tuple[str, list[tuple[str, str, str, str]]]:
    """One app's ``n`` endpoints: (id, app id, url, sealed keys)."""
    app_id = ids.new_id(ids.APP, now)
    box = AeadBox(parse_main_key(main_key))
    rows = []
    for i in range(n):
        endpoint_id = ids.new_id(ids.ENDPOINT, now)
        keys = seal_keys(box, [SigningKey(generate_secret())], endpoint_id)
        rows.append((endpoint_id, app_id, f"{url}{i}", keys))
    return app_id, rows


def insert_sqlite(
    path: str, total: int, n_endpoints: int, url: str, size: int, main_key: str
) -> dict[str, Any]:
    now = int(time.time() * 1000)
    app_id, endpoints = _endpoints(n_endpoints, url, now, main_key)
    n_msg = max(1, total // n_endpoints)
    t0 = time.monotonic()
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA cache_size = -1000000")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
            "VALUES (?, NULL, 'bench due backlog', '{}', ?, ?)",
            (app_id, now, now),
        )
        conn.executemany(
            "INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(e, a, u, keys, now, now) for e, a, u, keys in endpoints],
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
    url: str, total: int, n_endpoints: int, recv: str, size: int, main_key: str
) -> dict[str, Any]:
    now = int(time.time() * 1000)
    app_id, endpoints = _endpoints(n_endpoints, recv, now, main_key)
    n_msg = max(1, total // n_endpoints)
    t0 = time.monotonic()
    conn = await asyncpg.connect(url, timeout=10)
    try:
        try:  # consistent by construction: skip the per-row foreign-key triggers
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.PostgresError:
            pass
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
                "VALUES ($1, NULL, 'bench due backlog', '{}', $2, $2)",
                app_id,
                now,
            )
            await conn.executemany(
                "INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $5)",
                [(e, a, u, keys, now) for e, a, u, keys in endpoints],
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


def insert_postgres(
    url: str, total: int, n_endpoints: int, recv: str, size: int, main_key: str
) -> dict[str, Any]:
    return asyncio.run(_insert_pg(url, total, n_endpoints, recv, size, main_key))
