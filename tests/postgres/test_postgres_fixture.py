"""Proves the PostgreSQL fixtures work (and lets CI prove PostgreSQL tests really ran)."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg
import pytest


async def test_fresh_postgres_database_is_empty_and_usable(
    fresh_postgres_url: str, request: pytest.FixtureRequest
) -> None:
    assert request.node.get_closest_marker("postgres") is not None, "not auto-marked postgres"
    conn = await asyncpg.connect(fresh_postgres_url, timeout=5)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        name = await conn.fetchval("SELECT current_database()")
        assert name == urlsplit(fresh_postgres_url).path.lstrip("/")
        assert name.startswith("hookpost_t_")
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
    finally:
        await conn.close()
