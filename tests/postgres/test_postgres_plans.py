"""The PostgreSQL store's hot statements keep index access on a database never analyzed.

asyncpg prepares each statement once per connection and PostgreSQL soon caches a generic plan
for it, which is kept until the table statistics change. Planned on a new database (empty
tables, no statistics yet), a join of a small batch of ids to ``deliveries`` or ``messages``
would be a hash join over a sequential scan, reading the whole table on every claim or batch
of results until autovacuum first analyzes it. The statements look those rows up by key in
a way the planner takes on any statistics; this checks the generic plans on a fresh database.
"""

from __future__ import annotations

import asyncpg
import pytest

from hookpost.store.postgres import sql

HOT = [
    "MESSAGE_CREATE",
    "MESSAGE_CREATE_FOR",
    "MESSAGE_CREATE_MANY",
    "CLAIM",
    "FINISH_SUCCESSES",
    "FINISH_WITH_FAILURES",
    "RELEASE",
    "RENEW",
    "NEXT_DUE",
    "NEXT_DUE_FOR",
]
BIG_TABLES = ("deliveries", "messages", "attempts")


async def generic_plan(conn: asyncpg.Connection, query: str) -> str:
    params = len((await conn.prepare(query)).get_parameters())
    await conn.execute(f"PREPARE hot AS {query}")
    try:
        args = f"({', '.join(['NULL'] * params)})" if params else ""
        rows = await conn.fetch(f"EXPLAIN (COSTS OFF) EXECUTE hot{args}")
    finally:
        await conn.execute("DEALLOCATE hot")
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("name", HOT)
async def test_hot_statements_never_scan_the_big_tables(
    migrated_postgres_url: str, name: str
) -> None:
    conn = await asyncpg.connect(migrated_postgres_url, timeout=5)
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        plan = await generic_plan(conn, getattr(sql, name))
    finally:
        await conn.close()
    for table in BIG_TABLES:
        assert f"Seq Scan on {table}" not in plan, plan
