"""SQLite write jobs cost a fixed number of statements, however many rows they touch, and the
API's concurrent sends share them.

Every statement (and every row a SELECT steps through) lets go of the GIL inside the writer
thread, which then waits for the busy event loop to hand it back while it holds the write
lock that the other process is waiting for (see ``store/sqlite/executor.py``). So a fan-out
to many endpoints, or a release of many leases, must not cost a statement per row.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest

from hookpost.domain.queries import IdempotencyKey, SentMessage
from hookpost.store.rows import PlainBox
from hookpost.store.sqlite.multirow import values_list
from hookpost.store.sqlite.sql import APPS_ENDPOINTS, DELIVERIES_CREATE, DELIVERIES_RELEASE
from hookpost.store.sqlite.store import SqliteStore
from tests.contract.conftest import sqlite_path
from tests.contract.support import T0, claim, mk_app, mk_endpoint, mk_message


@pytest.fixture
async def store(migrated_sqlite_url: str) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(sqlite_path(migrated_sqlite_url), PlainBox())
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def _traced(store: SqliteStore) -> list[str]:
    """The statements the writer's connection runs from now on."""
    seen: list[str] = []

    def install(c: sqlite3.Connection) -> None:
        c.set_trace_callback(seen.append)

    await store._db.write(install)
    seen.clear()
    return seen


async def _app_with(store: SqliteStore, endpoints: int) -> str:
    app = await store.create_app(mk_app())
    for i in range(endpoints):
        await store.create_endpoint(mk_endpoint(app.id, url=f"https://example.com/{i}"))
    return app.id


async def test_a_fan_out_costs_the_same_statements_for_one_endpoint_or_forty(
    store: SqliteStore,
) -> None:
    one, forty = await _app_with(store, 1), await _app_with(store, 40)
    seen = await _traced(store)
    counts = []
    for app_id, fan_out in ((one, 1), (forty, 40)):
        seen.clear()
        created = await store.create_message(mk_message(app_id), T0)
        assert created.deliveries == fan_out
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    assert len(await claim(store, T0, limit=100)) == 41


async def test_sends_made_together_share_their_statements(store: SqliteStore) -> None:
    """32 sends to 8 apps made in one loop turn (concurrent API requests) cost what one costs."""
    apps = [await _app_with(store, 2) for _ in range(8)]
    seen = await _traced(store)
    created = await store.create_message(mk_message(apps[0]), T0)
    alone = len(seen)
    seen.clear()
    together = await asyncio.gather(
        *(store.create_message(mk_message(apps[i % 8], at=T0 + i), T0) for i in range(32))
    )
    assert [c.deliveries for c in [created, *together]] == [2] * 33
    assert len(seen) == alone, seen  # 32 rows are one chunk, as one row is
    assert len(await claim(store, T0, limit=100)) == 66


async def test_a_repeated_event_id_in_one_group_does_not_make_it_run_send_by_send(
    store: SqliteStore,
) -> None:
    """A retry racing its first try: the group still shares its statements (no savepoint per
    send), and the repeat gets the first one's message, as it would one by one."""
    app_id = await _app_with(store, 1)
    seen = await _traced(store)
    first, repeat, other = await asyncio.gather(
        store.create_message(mk_message(app_id, event_id="evt-retry"), T0),
        store.create_message(mk_message(app_id, event_id="evt-retry"), T0),
        store.create_message(mk_message(app_id), T0),
    )
    assert not [sql for sql in seen if "SAVEPOINT" in sql], seen
    assert (first.created, first.deliveries) == (True, 1)
    assert (repeat.created, repeat.deliveries, repeat.message) == (False, 0, first.message)
    assert (other.created, other.deliveries) == (True, 1)
    assert len(await claim(store, T0, limit=10)) == 2


async def test_one_idempotency_key_twice_in_one_group_creates_one_message(
    store: SqliteStore,
) -> None:
    """Two sends holding one key land in one write group (e.g. a retry whose first try created
    its application, so the two held different in-flight slots): one message, and the repeat
    is answered with it."""
    app_id = await _app_with(store, 1)
    key = IdempotencyKey("tok", "k-twice", T0 + 1000)
    first, repeat = await asyncio.gather(
        store.create_message(mk_message(app_id), T0, key=key),
        store.create_message(mk_message(app_id), T0, key=key),
    )
    assert (first.created, first.deliveries) == (True, 1)
    assert (repeat.created, repeat.deliveries) == (False, 0)
    assert repeat.replayed == SentMessage(first.message.id)
    assert len(await claim(store, T0, limit=10)) == 1


async def test_a_release_costs_the_same_statements_for_one_lease_or_forty(
    store: SqliteStore,
) -> None:
    app_id = await _app_with(store, 1)
    for i in range(41):
        await store.create_message(mk_message(app_id, at=T0 + i), T0)
    leased = [(c.delivery_id, c.lease) for c in await claim(store, T0, limit=100)]
    seen = await _traced(store)
    counts = []
    for part in (leased[:1], leased[1:]):
        seen.clear()
        assert await store.release(part, T0 + 1) == len(part)
        counts.append(len(seen))
    assert counts[1] == counts[0] + 1, counts  # one statement per chunk (40 = 32 + 8)


def _plan(url: str, sql: str, params: tuple[object, ...]) -> str:
    """SQLite's query plan for ``sql`` on the migrated schema, as one line."""
    with sqlite3.connect(sqlite_path(url)) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(str(row[-1]) for row in plan)


def test_a_release_finds_its_rows_by_primary_key(migrated_sqlite_url: str) -> None:
    # A row-value IN ((id, lease) IN (VALUES ...)) would scan the whole table instead.
    sql = DELIVERIES_RELEASE.format(values=values_list(2, 2))
    details = _plan(migrated_sqlite_url, sql, (T0, T0, 1, "a", 2, "b"))
    assert "USING INTEGER PRIMARY KEY" in details, details
    assert "SCAN deliveries" not in details, details


def test_the_endpoints_of_a_group_s_apps_come_from_the_app_index(migrated_sqlite_url: str) -> None:
    details = _plan(migrated_sqlite_url, APPS_ENDPOINTS, ('["a", "b"]',))
    assert "SEARCH endpoints USING INDEX ix_endpoints_app_id" in details, details


def test_a_message_s_values_are_extracted_once_not_once_per_delivery(
    migrated_sqlite_url: str,
) -> None:
    # Flattened into the join, the json_extract calls ran for every delivery: 4x slower for
    # messages to 22 endpoints.
    details = _plan(migrated_sqlite_url, DELIVERIES_CREATE, ("[]",))
    assert "MATERIALIZE m" in details or "CO-ROUTINE m" in details, details


async def test_keyed_sends_made_together_check_and_store_their_keys_in_two_more_statements(
    store: SqliteStore,
) -> None:
    """The sends of an idempotency key (every send of the svix SDKs) look their keys up and
    record them in the group's transaction: two more statements for all of them, not a lookup
    and a write each."""
    app_id = await _app_with(store, 1)
    seen = await _traced(store)
    await store.create_message(mk_message(app_id), T0)
    alone = len(seen)
    seen.clear()
    keys = [IdempotencyKey("tok", f"k{i}", T0 + 1000) for i in range(32)]
    together = await asyncio.gather(
        *(
            store.create_message(mk_message(app_id, at=T0 + i), T0, None, k)
            for i, k in enumerate(keys)
        )
    )
    assert all(c.created for c in together)
    keyed = [sql for sql in seen if "idempotency_keys" in sql]
    assert len(keyed) == 2 and len(seen) == alone + 2, seen
    assert keyed[0].startswith("SELECT") and keyed[1].startswith("INSERT")
    assert "BEGIN" in seen[0] and seen[-1] == "COMMIT"  # one transaction, keys included
