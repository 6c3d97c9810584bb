"""Versioned migrations versus the declared schema, on every backend.

* migrated to head, the database has no difference from ``hookpost.store.schema.metadata``
  (Alembic's autogenerate comparison);
* a fresh ``metadata.create_all`` schema equals the migrated one, table by table (columns,
  keys, indexes, constraints as reflected);
* ``upgrade`` is idempotent, and several upgrades racing on one empty database from threads
  of one process all succeed (from separate processes: tests/multiprocess).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from hookpost.store.migrate import alembic_config, sqlalchemy_url, upgrade
from hookpost.store.schema import metadata

from .conftest import backend_of

T = TypeVar("T")

VERSION_TABLE = "alembic_version"
RACERS = 3


# --------------------------------------------------------------------------- helpers


def _run_sqlite(url: str, fn: Callable[[Connection], T]) -> T:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            return fn(conn)
    finally:
        engine.dispose()


async def on_connection(url: str, fn: Callable[[Connection], T]) -> T:
    """Run ``fn`` on a synchronous SQLAlchemy connection to ``url`` (in a transaction that
    commits). PostgreSQL goes through asyncpg, as the migrations themselves do."""
    if backend_of(url) == "sqlite":
        return await asyncio.to_thread(_run_sqlite, url, fn)
    engine = create_async_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def schema_diff(conn: Connection) -> list[Any]:
    # Alembic's SQLite default comparison reports server_default="" as changed even when it
    # is not, so SQLite compares defaults only in the fresh-versus-migrated snapshot below.
    opts = {"compare_type": True, "compare_server_default": conn.dialect.name != "sqlite"}
    return list(compare_metadata(MigrationContext.configure(conn, opts=opts), metadata))


def current_revisions(conn: Connection) -> list[str]:
    return sorted(r for (r,) in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")))


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def _clean(value: Any) -> Any:
    """Reflected values in a comparable, printable form."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in sorted(value.items()) if v not in (None, {}, [])}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def snapshot(conn: Connection) -> dict[str, Any]:
    """Everything reflection tells about the schema, except Alembic's own version table."""
    insp = inspect(conn)
    tables: dict[str, Any] = {}
    for name in sorted(insp.get_table_names()):
        if name == VERSION_TABLE:
            continue
        tables[name] = _clean(
            {
                "columns": [
                    {
                        "name": c["name"],
                        "type": repr(c["type"]),
                        "nullable": c["nullable"],
                        "default": c.get("default"),
                        "autoincrement": c.get("autoincrement"),
                        "identity": c.get("identity"),
                    }
                    for c in insp.get_columns(name)
                ],
                "pk": insp.get_pk_constraint(name),
                "fks": sorted(
                    (_clean(fk) for fk in insp.get_foreign_keys(name)),
                    key=lambda fk: str(fk),
                ),
                "indexes": sorted(
                    (_clean(ix) for ix in insp.get_indexes(name)), key=lambda ix: ix["name"]
                ),
                "uniques": sorted(
                    (_clean(uq) for uq in insp.get_unique_constraints(name)),
                    key=lambda uq: str(uq),
                ),
                "checks": sorted(
                    (_clean(ck) for ck in insp.get_check_constraints(name)),
                    key=lambda ck: str(ck),
                ),
            }
        )
    return tables


def _create_all(conn: Connection) -> None:
    metadata.create_all(conn)


# --------------------------------------------------------------------------- tests


async def test_migrated_schema_matches_metadata(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    assert await on_connection(database_url, schema_diff) == []
    assert await on_connection(database_url, current_revisions) == [head_revision()]


async def test_fresh_schema_equals_migrated_schema(
    database_url: str, second_database_url: str
) -> None:
    await asyncio.to_thread(upgrade, database_url)
    await on_connection(second_database_url, _create_all)
    migrated = await on_connection(database_url, snapshot)
    fresh = await on_connection(second_database_url, snapshot)
    assert set(migrated) == {t.name for t in metadata.sorted_tables}
    assert set(fresh) == set(migrated)
    for table in migrated:
        assert fresh[table] == migrated[table], table
    # the comparison itself is not vacuous
    assert any(
        ix["name"] == "ix_deliveries_endpoint_due" for ix in migrated["deliveries"]["indexes"]
    )
    assert migrated["deliveries"]["fks"] and migrated["endpoints"]["uniques"]


async def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    before = await on_connection(database_url, snapshot)
    await asyncio.to_thread(upgrade, database_url)
    assert await on_connection(database_url, snapshot) == before
    assert await on_connection(database_url, current_revisions) == [head_revision()]
    assert await on_connection(database_url, schema_diff) == []


async def test_concurrent_upgrades_all_succeed(database_url: str) -> None:
    barrier = threading.Barrier(RACERS, timeout=30)

    def racer() -> None:
        barrier.wait()  # start together
        upgrade(database_url)

    def race() -> None:
        with ThreadPoolExecutor(RACERS, thread_name_prefix="migrate-racer") as pool_:
            futures = [pool_.submit(racer) for _ in range(RACERS)]
            for future in futures:
                future.result()  # re-raises a racer's error

    await asyncio.to_thread(race)
    assert await on_connection(database_url, current_revisions) == [head_revision()]
    assert await on_connection(database_url, schema_diff) == []


def _due_indexes(conn: Connection) -> dict[str, list[str]]:
    return {
        ix["name"]: list(ix["column_names"])
        for ix in inspect(conn).get_indexes("deliveries")
        if ix["name"] in ("ix_deliveries_due", "ix_deliveries_endpoint_due")
    }


def _queue_one_delivery(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO applications (id, name, created_at, updated_at) "
            "VALUES ('app_m', 'm', 1, 1)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at) "
            "VALUES ('ep_m', 'app_m', 'http://127.0.0.1/', '[]', 1, 1)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
            "VALUES ('msg_m', 'app_m', 'a.b', :payload, 1)"
        ),
        {"payload": b"{}"},
    )
    conn.execute(
        text(
            "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, due_at, updated_at) "
            "VALUES ('app_m', 'msg_m', 'ep_m', 0, 5, 1)"
        )
    )


def _queued(conn: Connection) -> list[tuple[Any, ...]]:
    rows = conn.execute(text("SELECT message_id, endpoint_id, due_at FROM deliveries"))
    return [tuple(r) for r in rows]


async def test_due_index_migrations_keep_the_queue_both_ways(database_url: str) -> None:
    """0002 rebuilds ix_deliveries_due on (due_at, endpoint_id) under a queue that holds work;
    0006 replaces it with ix_deliveries_endpoint_due; each downgrade puts the one before back."""
    from alembic import command

    await asyncio.to_thread(upgrade, database_url, "0001")
    await on_connection(database_url, _queue_one_delivery)
    assert await on_connection(database_url, _due_indexes) == {"ix_deliveries_due": ["due_at"]}

    await asyncio.to_thread(upgrade, database_url, "0005")
    assert await on_connection(database_url, _due_indexes) == {
        "ix_deliveries_due": ["due_at", "endpoint_id"]
    }
    await asyncio.to_thread(upgrade, database_url)
    assert await on_connection(database_url, _due_indexes) == {
        "ix_deliveries_endpoint_due": ["endpoint_id", "due_at"]
    }
    assert await on_connection(database_url, _queued) == [("msg_m", "ep_m", 5)]
    assert await on_connection(database_url, schema_diff) == []

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0005")
    assert await on_connection(database_url, _due_indexes) == {
        "ix_deliveries_due": ["due_at", "endpoint_id"]
    }
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0001")
    assert await on_connection(database_url, _due_indexes) == {"ix_deliveries_due": ["due_at"]}
    assert await on_connection(database_url, _queued) == [("msg_m", "ep_m", 5)]
    assert await on_connection(database_url, current_revisions) == ["0001"]


def _endpoint_signing(conn: Connection) -> list[tuple[Any, ...]]:
    columns = {c["name"] for c in inspect(conn).get_columns("endpoints")}
    header = "signature_header" if "signature_header" in columns else "NULL"
    rows = conn.execute(text(f"SELECT id, signature_scheme, {header} FROM endpoints"))
    return [tuple(r) for r in rows]


async def test_signature_header_migration_renames_the_default_scheme(database_url: str) -> None:
    """0008 adds endpoints.signature_header and stores the default scheme under its API name;
    its downgrade gives the old name back. The queue is untouched both ways."""
    from alembic import command

    await asyncio.to_thread(upgrade, database_url, "0005")
    await on_connection(database_url, _queue_one_delivery)  # the server default: standard-v1
    assert await on_connection(database_url, _endpoint_signing) == [("ep_m", "standard-v1", None)]

    await asyncio.to_thread(upgrade, database_url)
    assert await on_connection(database_url, _endpoint_signing) == [
        ("ep_m", "standard-webhooks", None)
    ]
    assert await on_connection(database_url, _queued) == [("msg_m", "ep_m", 5)]

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0005")
    assert await on_connection(database_url, _endpoint_signing) == [("ep_m", "standard-v1", None)]
    assert await on_connection(database_url, _queued) == [("msg_m", "ep_m", 5)]


_HOUR = 3_600_000


def _two_canceled_deliveries(conn: Connection) -> None:
    """Two deliveries canceled before migration 0022: one in an hour the rollup pass had done
    (rolled up by the migration), one after (left to the pass); and one still pending."""
    conn.execute(
        text(
            "INSERT INTO applications (id, name, created_at, updated_at)"
            " VALUES ('app_c', 'c', 1, 1)"
        )
    )
    for ep in ("ep_c1", "ep_c2"):
        conn.execute(
            text(
                "INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at) "
                "VALUES (:ep, 'app_c', 'http://127.0.0.1/', '[]', 1, 1)"
            ),
            {"ep": ep},
        )
    for msg, event_type in (("msg_c1", "a.one"), ("msg_c2", "a.two")):
        conn.execute(
            text(
                "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
                "VALUES (:msg, 'app_c', :et, :payload, 1)"
            ),
            {"msg": msg, "et": event_type, "payload": b"{}"},
        )
    for msg, ep, status, updated in (
        ("msg_c1", "ep_c1", 4, 2 * _HOUR + 5),
        ("msg_c2", "ep_c1", 4, 9 * _HOUR + 7),
        ("msg_c2", "ep_c2", 0, 9 * _HOUR + 8),
    ):
        conn.execute(
            text(
                "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, updated_at) "
                "VALUES ('app_c', :msg, :ep, :status, :updated)"
            ),
            {"msg": msg, "ep": ep, "status": status, "updated": updated},
        )
    conn.execute(text(f"INSERT INTO stats_rollup_state (id, rolled_until) VALUES (1, {5 * _HOUR})"))


def _cancellation_stats(conn: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    logged = conn.execute(
        text(
            "SELECT canceled_at, app_id, endpoint_id, event_type FROM stats_cancellations"
            " ORDER BY canceled_at"
        )
    )
    rolled = conn.execute(
        text("SELECT app_id, hour, endpoint_id, event_type, deliveries FROM stats_canceled")
    )
    return [tuple(r) for r in logged], [tuple(r) for r in rolled]


async def test_stats_migration_logs_the_deliveries_already_canceled(database_url: str) -> None:
    """0022 logs each delivery canceled before it at its last update, and rolls up those of
    the hours the pass had already done (the others are the pass's)."""
    from alembic import command

    before = ScriptDirectory.from_config(alembic_config(database_url)).get_revision("0022")
    previous = str(before.down_revision)  # the revision 0022 follows (re-chained at merges)
    await asyncio.to_thread(upgrade, database_url, previous)
    await on_connection(database_url, _two_canceled_deliveries)
    await asyncio.to_thread(upgrade, database_url)
    assert await on_connection(database_url, _cancellation_stats) == (
        [
            (2 * _HOUR + 5, "app_c", "ep_c1", "a.one"),
            (9 * _HOUR + 7, "app_c", "ep_c1", "a.two"),
        ],
        [("app_c", 2 * _HOUR, "ep_c1", "a.one", 1)],
    )
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), previous)
    assert await on_connection(database_url, current_revisions) == [previous]
