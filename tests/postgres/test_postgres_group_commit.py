"""The PostgreSQL store runs concurrent creates as shared statements (its group commit)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hookpost.domain.errors import NotFound, StoreUnavailable
from hookpost.domain.ids import APP, ENDPOINT, MESSAGE, new_id
from hookpost.domain.models import Application, Endpoint, Message

pytestmark = pytest.mark.postgres

T0 = 1_700_000_000_000


async def test_concurrent_creates_share_statements(migrated_postgres_url: str) -> None:
    from hookpost.store.postgres.store import PostgresStore
    from hookpost.store.rows import PlainBox

    store = PostgresStore(migrated_postgres_url, PlainBox())
    await store.open()
    try:
        app = await store.create_app(Application(id=new_id(APP, T0), name="a"))
        await store.create_endpoint(Endpoint(id=new_id(ENDPOINT, T0), app_id=app.id, url="u"))
        batches: list[int] = []
        run = store._create_many

        async def counting(batch: list[Any]) -> Any:
            batches.append(len(batch))
            return await run(batch)

        alone: list[str] = []
        one = store._create_in_one_statement

        async def counting_alone(m: Message, *args: Any) -> Any:
            alone.append(m.app_id)
            return await one(m, *args)

        store._create_batch._run = counting  # type: ignore[method-assign]
        store._create_in_one_statement = counting_alone  # type: ignore[method-assign]
        messages = [
            Message(id=new_id(MESSAGE, T0), app_id=app.id, event_type="t", payload=b"{}")
            for _ in range(40)
        ]
        ghost = Message(id=new_id(MESSAGE, T0), app_id=new_id(APP, T0), event_type="t", payload=b"")
        results = await asyncio.gather(
            *(store.create_message(m, T0) for m in [*messages[:20], ghost, *messages[20:]]),
            return_exceptions=True,
        )
        assert isinstance(results.pop(20), NotFound)
        assert [(r.created, r.deliveries, r.message) for r in results] == [  # type: ignore[union-attr]
            (True, 1, m) for m in messages
        ]
        assert sum(batches) == 41
        assert len(batches) <= 3  # one runner starts alone, the rest join the next batches
        assert alone == [ghost.app_id]  # an unknown app does not fail its batch

        batches.clear()
        alone.clear()
        lone = Message(id=new_id(MESSAGE, T0), app_id=app.id, event_type="t", payload=b"{}")
        assert (await store.create_message(lone, T0)).deliveries == 1
        assert (batches, alone) == ([1], [app.id])  # alone: the single-message statement
    finally:
        await store.close()


async def test_a_batch_that_may_have_committed_is_not_retried_one_by_one(
    migrated_postgres_url: str,
) -> None:
    """asyncpg reports a connection lost mid-statement as a PostgresError; the batch may have
    committed, so every caller gets StoreUnavailable (retryable) and nothing runs again."""
    import asyncpg

    from hookpost.store.postgres import sql
    from hookpost.store.postgres.store import PostgresStore
    from hookpost.store.rows import PlainBox

    store = PostgresStore(migrated_postgres_url, PlainBox())
    await store.open()
    try:
        app = await store.create_app(Application(id=new_id(APP, T0), name="a"))
        pool = store._db

        class LosesTheAnswer:
            """The pool, except that the batch statement commits and then its answer is lost."""

            def __getattr__(self, name: str) -> Any:
                return getattr(pool, name)

            async def fetch(self, query: str, *args: Any) -> Any:
                rows = await pool.fetch(query, *args)
                if query == sql.MESSAGE_CREATE_MANY:
                    raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost")
                return rows

        store._pool = LosesTheAnswer()  # type: ignore[assignment]
        messages = [
            Message(id=new_id(MESSAGE, T0), app_id=app.id, event_type="t", payload=b"{}")
            for _ in range(5)
        ]
        results = await asyncio.gather(
            *(store.create_message(m, T0) for m in messages), return_exceptions=True
        )
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        store._pool = pool
        for m in messages:  # committed once, as the batch wrote them
            assert await store.get_message(app.id, m.id) == m
    finally:
        await store.close()


async def test_patterns_match_in_sql_and_payload_filters_in_one_python_transaction(
    migrated_postgres_url: str,
) -> None:
    """Decision 0024: an app whose endpoints use event type patterns keeps the one-statement
    create; an app with a payload filter goes to the Python transaction, once per message
    (not after a second one-statement try)."""
    from hookpost.store.postgres.store import PostgresStore
    from hookpost.store.rows import PlainBox

    store = PostgresStore(migrated_postgres_url, PlainBox())
    await store.open()
    try:
        patterned = await store.create_app(Application(id=new_id(APP, T0), name="p"))
        filtered = await store.create_app(Application(id=new_id(APP, T0), name="f"))
        for types in (["invoice.*"], ["*"], ["user.created"]):
            await store.create_endpoint(
                Endpoint(id=new_id(ENDPOINT, T0), app_id=patterned.id, url="u", event_types=types)
            )
        await store.create_endpoint(Endpoint(id=new_id(ENDPOINT, T0), app_id=filtered.id, url="u"))
        await store.create_endpoint(
            Endpoint(
                id=new_id(ENDPOINT, T0),
                app_id=filtered.id,
                url="u",
                payload_filter={"amount": {"$gt": 10}},
            )
        )
        calls: list[str] = []
        one, txn = store._create_in_one_statement, store._create_in_transaction

        async def counting_one(m: Message, *args: Any) -> Any:
            calls.append(f"one:{m.app_id}")
            return await one(m, *args)

        async def counting_txn(m: Message, *args: Any) -> Any:
            calls.append(f"txn:{m.app_id}")
            return await txn(m, *args)

        store._create_in_one_statement = counting_one  # type: ignore[method-assign]
        store._create_in_transaction = counting_txn  # type: ignore[method-assign]
        for app_id, payload, deliveries in (
            (patterned.id, b"{}", 2),
            (filtered.id, b'{"amount": 11}', 2),
            (filtered.id, b'{"amount": 10}', 1),
        ):
            msg = Message(new_id(MESSAGE, T0), app_id, "invoice.paid", payload)
            created = await store.create_message(msg, T0)  # alone: a batch of one
            assert (created.created, created.deliveries) == (True, deliveries)
        p, f = patterned.id, filtered.id
        assert calls == [f"one:{p}", f"one:{f}", f"txn:{f}", f"one:{f}", f"txn:{f}"]
    finally:
        await store.close()
