"""A claim's cost depends on the rows it claims and the endpoints it considers, not on the due
backlog (issue 26): after a burst, the backlog of endpoints at their in-flight limit must not
make every claim walk it.

The same claim (excluding the two saturated endpoints that own the backlog) is timed with a
small due backlog and again, on the same database, with a big one; the ratio of the two is
what is checked, not wall time. The backlog is written with plain SQL (fast), as the API
would leave it: pending rows, due now.
"""

from __future__ import annotations

import os
import sqlite3
import time

import asyncpg

from hookpost.store.base import Store

from .conftest import backend_of, sqlite_path
from .support import T0, claim, new_app, new_endpoint

SMALL = 1_000
# 200,000 in the suite; HOOKPOST_CLAIM_COST_ROWS=1000000 for the measurement (-s prints it)
BIG = int(os.environ.get("HOOKPOST_CLAIM_COST_ROWS", "200000"))
RUNS = 15
RATIO = 3.0
SLACK_S = 0.001  # timer noise on a shared machine, on top of the ratio


def _fill_sqlite(path: str, app_id: str, endpoints: list[str], start: int, stop: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
            "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
            "SELECT printf('msg_backlog_%09d', i), ?, 'e', x'7b7d', ? FROM n",
            (start, stop, app_id, T0),
        )
        conn.execute(
            "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger,"
            " due_at, next_attempt_at, updated_at) "
            "SELECT m.app_id, m.id, e.value, 0, 0, 0, ?1 - 1000 + (m.rowid % 997), ?1, ?1 "
            "FROM messages m, json_each(?2) e WHERE m.id >= printf('msg_backlog_%09d', ?3) "
            "AND m.id < printf('msg_backlog_%09d', ?4)",
            (T0, f'["{endpoints[0]}", "{endpoints[1]}"]', start, stop),
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def _fill_postgres(
    url: str, app_id: str, endpoints: list[str], start: int, stop: int
) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(
            "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
            "SELECT format('msg_backlog_%s', lpad(i::text, 9, '0')), $1, 'e', '{}', $2 "
            "FROM generate_series($3::bigint, $4::bigint - 1) AS i",
            app_id,
            T0,
            start,
            stop,
        )
        await conn.execute(
            "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger,"
            " due_at, next_attempt_at, updated_at) "
            "SELECT $1, format('msg_backlog_%s', lpad(i::text, 9, '0')), e, 0, 0, 0,"
            " $2::bigint - 1000 + i % 997, $2, $2 "
            "FROM generate_series($3::bigint, $4::bigint - 1) AS i, unnest($5::text[]) AS e",
            app_id,
            T0,
            start,
            stop,
            endpoints,
        )
        await conn.execute("VACUUM ANALYZE deliveries")
        await conn.execute("ANALYZE messages")
    finally:
        await conn.close()


async def _fill(url: str, app_id: str, endpoints: list[str], start: int, stop: int) -> None:
    """Messages ``start``..``stop`` (exclusive), each due on both endpoints."""
    if backend_of(url) == "sqlite":
        _fill_sqlite(sqlite_path(url), app_id, endpoints, start, stop)
    else:
        await _fill_postgres(url, app_id, endpoints, start, stop)


async def _claim_cost(store: Store, saturated: list[str], limit: int) -> float:
    """The fastest of RUNS claims that exclude the saturated endpoints (they find nothing)."""
    best = float("inf")
    for _ in range(RUNS):
        t0 = time.perf_counter()
        got = await claim(
            store,
            T0,
            limit=128,
            exclude_endpoints=saturated,
            max_per_endpoint=limit,
            in_flight=dict.fromkeys(saturated, limit),
        )
        best = min(best, time.perf_counter() - t0)
        assert got == []
    return best


async def test_a_due_backlog_of_saturated_endpoints_does_not_slow_a_claim(
    store: Store, store_url: str
) -> None:
    app = await new_app(store)
    saturated = [(await new_endpoint(store, app.id)).id for _ in range(2)]
    await _fill(store_url, app.id, saturated, 0, SMALL // 2)
    small = await _claim_cost(store, saturated, 32)

    await _fill(store_url, app.id, saturated, SMALL // 2, BIG // 2)
    big = await _claim_cost(store, saturated, 32)

    print(
        f"\nclaim cost, {backend_of(store_url)}: {small * 1000:.3f} ms with {SMALL:,} due, "
        f"{big * 1000:.3f} ms with {BIG:,} due"
    )
    assert big < RATIO * small + SLACK_S, (
        f"a claim took {big * 1000:.2f} ms with {BIG:,} due rows of saturated endpoints, "
        f"{small * 1000:.2f} ms with {SMALL:,}"
    )
