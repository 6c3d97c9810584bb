"""Alembic environment: runs hookpost's migrations on SQLite (sync) or PostgreSQL (asyncpg).

On PostgreSQL a session-level advisory lock serialises migrations, so many processes may
start at once against one database.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection

from hookpost.store.schema import metadata

MIGRATION_LOCK_ID = 7_265_001  # arbitrary, constant: "hookpost migrations"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_postgres(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
    connection.commit()
    try:
        _run(connection)
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
        connection.commit()


async def _online_async(url: str) -> None:
    # Here, not at the top: SQLAlchemy's asyncio layer is the `postgres` extra's (greenlet).
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_postgres)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or ""
    if url.startswith("postgresql"):
        asyncio.run(_online_async(url))
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


run_migrations_online()
