"""attempts.headers (issue 23, docs/decisions/0046-attempt-headers.md), on every backend: the
stored form written by ``finish_attempts`` is read back unchanged by ``get_attempt`` and
``list_attempts``, on both of PostgreSQL's finish statements (a batch of successes, and one
with failures); an attempt without headers reads None; and migration 0023 leaves the attempts
recorded before with NULL, which reads as ``recorded`` False.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from hookpost.domain import attempt_headers
from hookpost.domain.models import PageRequest
from hookpost.domain.queries import AttemptFilter
from hookpost.store.base import Store
from hookpost.store.migrate import upgrade

from .conftest import build_store
from .support import FAILED, SUCCEEDED, T0, app_with_endpoint, claim, finish, outcome, send
from .test_schema_migrations import _queue_one_delivery, on_connection

SENT = {
    "Authorization": "Bearer s3cr3t-never-stored",
    "X-Tenant": "acme",
    "content-type": "application/json",
    "user-agent": "hookpost/0.1",
    "webhook-id": "msg_x",
    "webhook-timestamp": "1765152000",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,abc=",
}


def stored(message_id: str, response: list[tuple[str, str]] | None = None) -> str:
    sent = {**SENT, "webhook-id": message_id}
    return attempt_headers.encode_headers(sent, message_id, ["Authorization", "X-Tenant"], response)


async def read_back(store: Store, app_id: str) -> dict[str, str | None]:
    page = await store.list_attempts(app_id, PageRequest(limit=50), AttemptFilter())
    listed = {a.id: a.headers for a in page.items}
    for a in page.items:  # the single read agrees with the list
        assert (await store.get_attempt(app_id, a.message_id, a.id)).headers == a.headers
    return listed


class TestAttemptHeaders:
    async def test_a_batch_of_successes_keeps_each_attempts_headers(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        msgs = [await send(store, app.id) for _ in range(3)]
        claimed = await claim(store, T0)
        results = [outcome(c, SUCCEEDED, at=T0 + 1, headers=stored(c.message_id)) for c in claimed]
        results[-1].attempt.headers = None  # one without: stored as NULL, read as None
        assert (await finish(store, *results, now=T0 + 1)).stale == 0
        got = await read_back(store, app.id)
        assert got == {r.attempt.id: r.attempt.headers for r in results}
        assert len(got) == len(msgs) and sum(h is None for h in got.values()) == 1
        assert all("s3cr3t" not in (h or "") for h in got.values())

    async def test_a_batch_with_failures_keeps_the_response_headers(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        for _ in range(2):
            await send(store, app.id)
        ok, bad = await claim(store, T0)
        answer = [("retry-after", "30"), ("x-request-id", "r-1")]
        results = [
            outcome(ok, SUCCEEDED, at=T0 + 1, headers=stored(ok.message_id)),
            outcome(bad, FAILED, at=T0 + 1, headers=stored(bad.message_id, answer)),
        ]
        assert (await finish(store, *results, now=T0 + 1)).stale == 0
        got = await read_back(store, app.id)
        assert got == {r.attempt.id: r.attempt.headers for r in results}
        decoded = attempt_headers.decode_headers(got[results[1].attempt.id], bad.message_id)
        assert decoded.response == answer
        assert decoded.sensitive == ["Authorization"]
        assert decoded.sent["webhook-id"] == bad.message_id
        assert decoded.sent["X-Tenant"] == "acme"


def _one_old_attempt(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO attempts (id, app_id, message_id, endpoint_id, url, status, trigger,"
            " response_status_code, response, duration_ms, error, created_at) VALUES"
            " ('atmpt_old', 'app_m', 'msg_m', 'ep_m', 'http://127.0.0.1/', 0, 0, 200, 'ok', 3,"
            " NULL, 2)"
        )
    )


def _columns(conn: Connection) -> list[str]:
    from sqlalchemy import inspect

    return [c["name"] for c in inspect(conn).get_columns("attempts")]


async def test_migration_0023_keeps_older_attempts_as_unrecorded(database_url: str) -> None:
    from alembic import command

    from hookpost.store.migrate import alembic_config

    await asyncio.to_thread(upgrade, database_url, "0005")
    await on_connection(database_url, _queue_one_delivery)
    await asyncio.to_thread(upgrade, database_url, "0019")
    await on_connection(database_url, _one_old_attempt)
    await asyncio.to_thread(upgrade, database_url)
    assert "headers" in await on_connection(database_url, _columns)

    store = build_store(database_url)
    await store.open()
    try:
        old = await store.get_attempt("app_m", "msg_m", "atmpt_old")
    finally:
        await store.close()
    assert old.headers is None and old.response == "ok"
    read: Any = attempt_headers.decode_headers(old.headers, old.message_id)
    assert read.recorded is False and read.sensitive == [] and read.response is None
    assert read.sent == dict(attempt_headers.IMPLICIT)

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0019")
    assert "headers" not in await on_connection(database_url, _columns)
