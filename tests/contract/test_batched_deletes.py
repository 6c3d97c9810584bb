"""Deleting an application or an endpoint in batches (``hookpost.store.purge``).

Run once per backend. The row is hidden at once (and its endpoints disabled); its rows are then
deleted ``batch_rows`` per transaction; an interrupted deletion stays hidden, never delivers,
and ``purge_deleted`` finishes it. "Nothing is left" is checked in the tables themselves.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from hookpost.domain.errors import NotFound
from hookpost.domain.ids import TOKEN, new_id
from hookpost.domain.models import ApiToken, Application, Endpoint, Message, PageRequest
from hookpost.store.base import Store

from .conftest import backend_of, sqlite_path
from .support import (
    FAILED,
    PENDING,
    T0,
    claim,
    fail_final,
    finish,
    mk_endpoint,
    mk_message,
    new_app,
    new_endpoint,
    outcome,
    send,
)

# Every table with rows of an application, and the column that names it.
_TABLES = {
    "applications": "id",
    "endpoints": "app_id",
    "messages": "app_id",
    "deliveries": "app_id",
    "attempts": "app_id",
    "api_tokens": "app_id",
}
PAGE = PageRequest(limit=100)


# ... and of an endpoint.
_ENDPOINT_TABLES = {"endpoints": "id", "deliveries": "endpoint_id", "attempts": "endpoint_id"}


async def rows_left(url: str, tables: dict[str, str], value: str) -> dict[str, int]:
    """How many rows of each table hold ``value`` in its column, read straight from the
    database."""
    queries = {t: f"SELECT count(*) FROM {t} WHERE {c} = " for t, c in tables.items()}
    if backend_of(url) == "sqlite":
        conn = sqlite3.connect(sqlite_path(url))
        try:
            return {t: conn.execute(q + "?", (value,)).fetchone()[0] for t, q in queries.items()}
        finally:
            conn.close()
    pg = await asyncpg.connect(url)
    try:
        return {t: await pg.fetchval(q + "$1", value) for t, q in queries.items()}
    finally:
        await pg.close()


async def populated(
    store: Store, *, uid: str | None = None, messages: int = 5
) -> tuple[Application, list[Endpoint], list[Message]]:
    """An app with two endpoints, ``messages`` messages (a delivery each to both), a
    failed-then-retrying attempt for every delivery, and a portal token."""
    app = await new_app(store, uid=uid)
    eps = [await new_endpoint(store, app.id, uid=f"ep-{i}") for i in range(2)]
    msgs = [await send(store, app.id, at=T0 + i) for i in range(messages)]
    token = ApiToken(new_id(TOKEN), "hash-" + app.id, app.id, "t", T0)
    await store.create_token(token)
    mine = [c for c in await claim(store, T0, limit=1000) if c.app_id == app.id]
    for c in mine:
        await finish(store, outcome(c, PENDING, at=T0 + 1, retry_at=T0 + 2), now=T0 + 1)
    return app, eps, msgs


class _Crash(Exception):
    pass


def crash_after(store: Store, batches: int | None) -> list[int]:
    """Make the store's batched deletes fail after ``batches`` batches (as a crash would
    interrupt them; None: never); the rows each batch that ran deleted."""
    real = store._delete_some  # type: ignore[attr-defined]
    sizes: list[int] = []

    async def delete_some(*args: Any) -> int:
        if batches is not None and len(sizes) == batches:
            raise _Crash
        deleted: int = await real(*args)
        sizes.append(deleted)
        return deleted

    store._delete_some = delete_some  # type: ignore[attr-defined]
    return sizes


def restore(store: Store) -> None:
    del store._delete_some  # type: ignore[attr-defined]


class TestBatchedDeletes:
    async def test_delete_app_deletes_in_batches_and_leaves_nothing(
        self, store: Store, store_url: str
    ) -> None:
        store.batch_rows = 3  # type: ignore[attr-defined]
        doomed, _, _ = await populated(store, messages=7)
        kept, _, _ = await populated(store, messages=2)
        sizes = crash_after(store, batches=None)

        await store.delete_app(doomed.id)

        assert max(sizes) == 3 and sum(sizes) == 7 * 2 * 2 + 7  # attempts, deliveries, messages
        assert await rows_left(store_url, _TABLES, doomed.id) == dict.fromkeys(_TABLES, 0)
        assert await rows_left(store_url, _TABLES, kept.id) == {
            "applications": 1,
            "endpoints": 2,
            "messages": 2,
            "deliveries": 4,
            "attempts": 4,
            "api_tokens": 1,
        }
        assert await store.purge_deleted() == 0

    async def test_delete_endpoint_deletes_in_batches_and_leaves_nothing(
        self, store: Store, store_url: str
    ) -> None:
        store.batch_rows = 2  # type: ignore[attr-defined]
        app, (gone, stays), msgs = await populated(store)
        sizes = crash_after(store, batches=None)

        await store.delete_endpoint(app.id, gone.id)

        assert max(sizes) == 2 and sum(sizes) == 5 + 5  # attempts, deliveries
        left = await rows_left(store_url, _ENDPOINT_TABLES, gone.id)
        assert left == dict.fromkeys(_ENDPOINT_TABLES, 0)
        left = await rows_left(store_url, _ENDPOINT_TABLES, stays.id)
        assert left == {"endpoints": 1, "deliveries": 5, "attempts": 5}
        assert [m.id for m in msgs] == [(await store.get_message(app.id, m.id)).id for m in msgs]

    async def test_an_interrupted_app_deletion_is_hidden_and_never_delivers(
        self, store: Store, store_url: str
    ) -> None:
        store.batch_rows = 2  # type: ignore[attr-defined]
        doomed, eps, msgs = await populated(store, uid="doomed")
        crash_after(store, batches=1)
        with pytest.raises(_Crash):
            await store.delete_app(doomed.id)
        restore(store)
        assert (await rows_left(store_url, _TABLES, doomed.id))["deliveries"] > 0, "rows left"

        for name in (doomed.id, "doomed"):
            with pytest.raises(NotFound):
                await store.get_app(name)
        assert doomed.id not in [a.id for a in (await store.list_apps(PAGE)).items]
        with pytest.raises(NotFound):
            await store.update_app(doomed)
        with pytest.raises(NotFound):
            await store.delete_app(doomed.id)
        with pytest.raises(NotFound):
            await store.get_endpoint(doomed.id, eps[0].id)
        assert (await store.list_endpoints(doomed.id, PAGE)).items == []
        with pytest.raises(NotFound):
            await store.create_endpoint(mk_endpoint(doomed.id))
        assert await store.find_token("hash-" + doomed.id) is None
        # Its deliveries are due again (T0 + 2): a claim cancels them instead of sending them.
        assert await claim(store, T0 + 2) == []
        with pytest.raises(NotFound):
            await store.resend(doomed.id, msgs[0].id, eps[0].id, T0 + 3)
        # A process that still has the app's id cached may create a message: nothing is
        # queued for it, and the purge deletes it.
        late = await store.create_message(mk_message(doomed.id, at=T0 + 3), T0 + 3)
        assert late.deliveries == 0
        # Its uid is free at once.
        again = await new_app(store, uid="doomed")
        assert (await store.get_app("doomed")).id == again.id

        assert await store.purge_deleted() == 1
        assert await rows_left(store_url, _TABLES, doomed.id) == dict.fromkeys(_TABLES, 0)
        assert await store.get_app(again.id) == again

    async def test_an_interrupted_endpoint_deletion_is_hidden_and_never_delivers(
        self, store: Store, store_url: str
    ) -> None:
        store.batch_rows = 1  # type: ignore[attr-defined]
        app, (gone, stays), msgs = await populated(store)
        crash_after(store, batches=1)
        with pytest.raises(_Crash):
            await store.delete_endpoint(app.id, gone.id)
        restore(store)

        for name in (gone.id, "ep-0"):
            with pytest.raises(NotFound):
                await store.get_endpoint(app.id, name)
        assert [e.id for e in (await store.list_endpoints(app.id, PAGE)).items] == [stays.id]
        with pytest.raises(NotFound):
            await store.update_endpoint(replace(gone, disabled=False))
        with pytest.raises(NotFound):
            await store.delete_endpoint(app.id, gone.id)
        with pytest.raises(NotFound):
            await store.resend(app.id, msgs[0].id, gone.id, T0 + 3)
        dests = await store.list_deliveries_for_message(app.id, msgs[0].id, PAGE)
        assert [e.id for _, e in dests.items] == [stays.id]
        # New messages do not reach it; what was queued is canceled, not sent.
        await send(store, app.id, at=T0 + 10, now=T0 + 10)
        got = await claim(store, T0 + 10)
        assert {c.endpoint_id for c in got} == {stays.id} and len(got) == 6
        for c in got:
            await fail_final(store, c, T0 + 11)
        # Its uid is free at once.
        again = await new_endpoint(store, app.id, uid="ep-0")

        assert await store.purge_deleted() == 1
        left = await rows_left(store_url, _ENDPOINT_TABLES, gone.id)
        assert left == dict.fromkeys(_ENDPOINT_TABLES, 0)
        assert (await store.get_endpoint(app.id, "ep-0")).id == again.id
        assert (await store.get_delivery(msgs[0].id, stays.id)).status == FAILED
