"""PostgreSQL's Messages: a message and its deliveries in one statement where possible.

Concurrent creates share one statement (``batching.GroupCommit``). ``filters_match`` is the one
definition of which endpoints receive a message: the one-statement create mirrors it in SQL for
the filters SQL can evaluate exactly (a contract test holds the two to the same answers); when
an endpoint of the app has any other filter, the message is created by an explicit transaction
of two statements (insert the message and read the app's endpoints; insert the deliveries)
with the matching done in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from hookpost.domain import ids
from hookpost.domain.errors import NotFound
from hookpost.domain.filters import Payload
from hookpost.domain.matching import filters_match
from hookpost.domain.models import Message, Page, PageRequest
from hookpost.domain.queries import CreatedMessage, IdempotencyKey, MessageFilter
from hookpost.store.paging import finish_page
from hookpost.store.postgres import sql
from hookpost.store.postgres.batching import GroupCommit
from hookpost.store.postgres.core import (
    RETRIES,
    Args,
    command_status_count,
    id_range,
    log,
    page_messages,
    paged_query,
)
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.postgres.idempotency import PostgresIdempotency
from hookpost.store.rows import dumps_opt, key_answer, loads_opt, message_from_row

_MESSAGE_RACES = frozenset({"deliveries_endpoint_id_fkey"})
# Errors that prove PostgreSQL refused a batch of creates because of its content (so it wrote
# nothing, and each message may be created alone): constraint violations, deadlock or
# serialization failures, invalid data.
_BATCH_REJECTED = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.DataError,
)


class _Fallback:
    """A sentinel: the one-statement create_message wrote nothing; match in Python."""


_FALLBACK = _Fallback()
# The same, known to be because an endpoint of the app needs Python matching (a payload
# filter): the message alone then goes straight to the transaction that matches in Python.
_PYTHON_MATCHING = _Fallback()

NewMessage = tuple[Message, str | None, int, IdempotencyKey | None]


def _message_args(m: Message, channels: str | None) -> tuple[Any, ...]:
    """$1-$7 of both message inserts (sql.MESSAGE_CREATE* and sql.MESSAGE_INSERT)."""
    return (m.id, m.app_id, m.event_type, m.event_id, channels, m.payload, m.created_at)


class PostgresMessages(PostgresIdempotency):
    # Set up by PostgresStore: the group commit of concurrent creates, run by _create_many.
    _create_batch: GroupCommit[NewMessage, CreatedMessage | _Fallback]

    @wrap_exceptions
    async def create_message(
        self,
        message: Message,
        now_ms: int,
        endpoint_ids: Sequence[str] | None = None,
        key: IdempotencyKey | None = None,
    ) -> CreatedMessage:
        m = message
        channels = dumps_opt(m.channels)
        only = None if endpoint_ids is None else list(endpoint_ids)
        # A NUL cannot be a text[] element (the JSON column escapes it): match in Python.
        one_statement = not any("\x00" in c for c in m.channels or ())

        if one_statement and only is None:
            created = await self._create_batch.submit((m, channels, now_ms, key))
            if isinstance(created, CreatedMessage):  # its key checked and recorded too
                if created.deliveries:
                    self._notifier.poke()
                return created
            # Its app needs Python matching, its eventId is taken, or the batch's statement
            # failed (and wrote nothing): this message alone, the way that handles each case.
            one_statement = created is not _PYTHON_MATCHING
        if key is not None:
            # Not in the message's statement here: two processes sending one key at the same
            # moment can both create (on SQLite the write lock rules that out).
            held = await self.get_idempotent(key.scope, key.key, now_ms)
            if held is not None:
                return CreatedMessage(message, created=False, deliveries=0, replayed=held)
        created = await self._create_alone(m, channels, now_ms, only, one_statement)
        if key is not None and created.created:
            # After the message's own statement (a crash in between leaves the message
            # without its key recorded).
            try:
                # If another process answered the key first, its answer stays; the message
                # is created all the same, and our 202 says so.
                await self._put_first(key.scope, key.key, None, None, m.id, key.expires_at, now_ms)
            except Exception:  # the message is accepted: say so (a 5xx would make it resent)
                log.warning("could not store the idempotency key of message %s", message.id)
        return created

    async def _create_alone(
        self,
        m: Message,
        channels: str | None,
        now_ms: int,
        only: list[str] | None,
        one_statement: bool,
    ) -> CreatedMessage:
        async def run() -> CreatedMessage | None:
            if one_statement:
                created = await self._create_in_one_statement(m, channels, now_ms, only)
                if not isinstance(created, _Fallback):
                    return created
            return await self._create_in_transaction(m, channels, now_ms, only)

        for _ in range(RETRIES):
            result = await self._retrying(run, _MESSAGE_RACES)
            if result is not None:
                if result.deliveries:
                    self._notifier.poke()
                return result
        raise NotFound("message", m.event_id or m.id)

    async def _create_many(self, batch: list[NewMessage]) -> list[CreatedMessage | _Fallback]:
        """The group commit of concurrent creates (``self._create_batch``): one statement for
        the whole batch. Answers ``_FALLBACK`` for each message the caller must create alone:
        one whose app needs Python matching or whose eventId is taken, or all of them when
        PostgreSQL rejected the statement for something in the batch (``_BATCH_REJECTED``: it
        then wrote nothing; a deadlock between two batches sharing eventIds, an endpoint
        deleted meanwhile). Any other failure (the connection, which asyncpg also reports as
        a PostgresError, a shutdown, a timeout) may come after the commit: it is raised to
        every caller, as it would be without batching, and never retried one by one (that
        would insert an accepted message a second time)."""
        if len(batch) == 1 and batch[0][3] is None:
            # Alone (light load): the single-message statement, ~30% cheaper than the
            # batch statement for one row (measured with 3,000 sequential creates).
            m, channels, now_ms, _ = batch[0]
            try:
                created = await self._create_in_one_statement(m, channels, now_ms, None)
            except _BATCH_REJECTED:
                return [_FALLBACK]
            return [_FALLBACK if created is None else created]
        results: list[CreatedMessage | _Fallback] = [_FALLBACK] * len(batch)
        # One key twice in a statement would fail it (ON CONFLICT updates a row once): a
        # repeat goes alone, after this batch, and finds the first one's answer.
        keys: set[tuple[str, str]] = set()
        taken: list[int] = []
        columns: tuple[list[Any], ...] = tuple([] for _ in range(13))
        for i, (m, channels, now_ms, key) in enumerate(batch):
            if key is not None:
                if (key.scope, key.key) in keys:
                    continue
                keys.add((key.scope, key.key))
                k: tuple[Any, ...] = (key.scope, key.key, key.expires_at)
            else:
                k = (None, None, None)
            taken.append(i)
            values = (
                *_message_args(m, channels),
                now_ms,
                *k,
                m.payload_sha256,
                m.payload_expires_at,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        args = (*columns[:8], list(set(columns[1])), *columns[8:])
        try:
            if keys:
                rows = await self._create_many_keyed(sorted(f"{s}\n{k}" for s, k in keys), args)
            else:
                rows = await self._db.fetch(self._sql.message_create_many, *args)
        except _BATCH_REJECTED as exc:
            log.debug("batch of %d creates falls back to one by one: %s", len(batch), exc)
            return results
        if rows and rows[0]["parked"]:  # the same for every row: the batch's ordered endpoints
            await self._settle(rows[0]["parked"], max(columns[7]))
        for i, row in zip(taken, rows, strict=True):
            m = batch[i][0]
            if row["replayed"]:
                held = key_answer(
                    self._box, row["replay_status"], row["replay_body"], row["replay_message_id"]
                )
                results[i] = CreatedMessage(m, created=False, deliveries=0, replayed=held)
            elif row["fallback"]:
                results[i] = _PYTHON_MATCHING
            elif row["inserted"]:
                results[i] = CreatedMessage(m, created=True, deliveries=row["deliveries"])
        return results

    async def _create_many_keyed(self, locks: list[str], args: tuple[Any, ...]) -> list[Any]:
        """MESSAGE_CREATE_MANY after taking its idempotency keys' locks (sql.IDEMPOTENCY_LOCK):
        without them, two processes sending one key at once would both find it unanswered
        and both create the message. One transaction: two more round trips per batch."""
        async with self._db.acquire() as conn, conn.transaction():
            await conn.execute(sql.IDEMPOTENCY_LOCK, locks)
            return list(await conn.fetch(self._sql.message_create_many, *args))

    async def _create_in_one_statement(
        self, m: Message, channels: str | None, now_ms: int, only: list[str] | None
    ) -> CreatedMessage | _Fallback | None:
        """The common case: one round trip. ``_PYTHON_MATCHING`` (nothing written) when an endpoint
        of the app has a filter only Python can evaluate."""
        # $9 is what the deliveries are chosen by: the channels to match, or the endpoints.
        if only is None:
            query, chosen_by = self._sql.message_create, m.channels or []
        else:
            query, chosen_by = self._sql.message_create_for, only
        row = await self._db.fetchrow(
            query,
            *_message_args(m, channels),
            now_ms,
            chosen_by,
            m.payload_sha256,
            m.payload_expires_at,
        )
        if row["fallback"]:
            return _PYTHON_MATCHING
        if not row["inserted"]:
            return await self._first_with_event_id(self._db, m)
        await self._settle(row["parked"], now_ms)
        return CreatedMessage(m, created=True, deliveries=row["deliveries"])

    async def _create_in_transaction(
        self, m: Message, channels: str | None, now_ms: int, only: list[str] | None
    ) -> CreatedMessage | None:
        """Matching in Python (``filters_match``): insert the message and read the app's
        endpoints, then insert the deliveries, in one transaction."""
        async with self._db.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                sql.MESSAGE_INSERT,
                *_message_args(m, channels),
                m.payload_sha256,
                m.payload_expires_at,
            )
            if not rows:  # the eventId is taken: return the first message
                return await self._first_with_event_id(conn, m)
            wanted = None if only is None else set(only)
            payload = Payload(m.payload)  # parsed once, if an endpoint has a payload filter
            targets = [
                r["id"]
                for r in rows
                if r["id"] is not None
                and (
                    r["id"] in wanted
                    if wanted is not None
                    else filters_match(
                        loads_opt(r["event_types"]),
                        loads_opt(r["channels"]),
                        m.event_type,
                        m.channels,
                        r["payload_filter"],
                        payload,
                    )
                )
            ]
            inserted = []
            if targets:
                inserted = await conn.fetch(
                    self._sql.deliveries_insert, m.app_id, m.id, targets, now_ms
                )
        await self._settle([r["parked"] for r in inserted if r["parked"] is not None], now_ms)
        return CreatedMessage(m, created=True, deliveries=len(inserted))

    @staticmethod
    async def _first_with_event_id(
        db: asyncpg.Pool | asyncpg.Connection, m: Message
    ) -> CreatedMessage | None:
        """The message that took ``m``'s eventId, or None if it was deleted since (the caller
        tries again)."""
        row = await db.fetchrow(sql.MESSAGE_BY_EVENT_ID, m.app_id, m.event_id)
        if row is None:
            return None
        return CreatedMessage(message_from_row(row), created=False, deliveries=0)

    @wrap_exceptions
    async def get_message(self, app_id: str, msg_id_or_event_id: str) -> Message:
        row = await self._db.fetchrow(sql.MESSAGE_GET, app_id, msg_id_or_event_id)
        if row is None:
            raise NotFound("message", msg_id_or_event_id)
        return message_from_row(row)

    @wrap_exceptions
    async def list_messages(
        self,
        app_id: str,
        page: PageRequest,
        filt: MessageFilter,
        *,
        with_content: bool = True,
        max_content_bytes: int | None = None,
    ) -> Page[Message]:
        args = Args()
        where = [f"app_id = {args.add(app_id)}"]
        if filt.event_types:
            where.append(f"event_type = ANY({args.add(list(filt.event_types))}::text[])")
        if filt.channel is not None:
            # channels is a JSON array of strings; `?` tests for one of its elements.
            where.append(f"channels::jsonb ? {args.add(filt.channel)}")
        id_range(where, args, "id", ids.MESSAGE, filt.before, filt.after)
        query = paged_query(sql.MESSAGES_LIST, where, args, page, "id")
        _, found, keep = await page_messages(
            self._db, query, args, page, with_content, max_content_bytes
        )
        return finish_page(found, page, keep)

    @wrap_exceptions
    async def expunge_message(self, app_id: str, msg_id: str) -> None:
        status = await self._db.execute(sql.MESSAGE_EXPUNGE, app_id, msg_id, b"{}")
        if command_status_count(status) == 0:
            raise NotFound("message", msg_id)
