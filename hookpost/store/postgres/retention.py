"""PostgreSQL's Retention: erasing expired payloads and deleting old messages, a batch per
short transaction (docs/decisions/0032-retention.md: batched deletes by index, and why not
partitions yet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hookpost.domain import ids
from hookpost.domain.retention import EXPIRED_TOKEN_KEPT_MS, UNFINISHED, CleanupCounts
from hookpost.domain.tasks import RUNNING
from hookpost.store.postgres.core import PostgresBase, command_status_count
from hookpost.store.postgres.errors import wrap_exceptions

_UNFINISHED = ", ".join(str(int(s)) for s in sorted(UNFINISHED))
# One cleanup at a time across every process: a session lock, tried, never waited for.
# domain.retention.task_deletable (tests/contract/test_retention.py holds the two equal)
_OLD_TASKS = f"FROM background_tasks WHERE status <> '{RUNNING}' AND updated_at < $1"
# domain.retention.token_deletable (the same contract test)
_EXPIRED_TOKENS = f"FROM api_tokens WHERE expires_at + {EXPIRED_TOKEN_KEPT_MS} <= $1"
CLEANUP_LOCK_KEY = 0x686F6F6B_636C6E  # "hook" "cln"
TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
UNLOCK = "SELECT pg_advisory_unlock($1)"
# domain.retention.payload_expired, soonest first (ix_messages_payload_expires_at; erased rows
# leave it). SKIP LOCKED: a message being expunged or deleted meanwhile is left for next time.
ERASE = (
    "WITH m AS ("
    " UPDATE messages SET payload = '\\x7b7d'::bytea, expunged = true, payload_expires_at = NULL"
    " WHERE id IN (SELECT id FROM messages WHERE payload_expires_at <= $1"
    " ORDER BY payload_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id), "
    "a AS (UPDATE attempts SET response = '' WHERE message_id IN (SELECT id FROM m)"
    " AND response <> '') "
    "SELECT count(*) FROM m"
)
# Ids sort by creation time (domain.ids): `id < id_floor(before)` is `created_at < before`.
OLD = "SELECT id FROM messages WHERE id > $1 AND id < $2 ORDER BY id LIMIT $3"
# Every delivery of those messages, locked: a resend or recover that would make one pending
# waits for this transaction, and finds it gone.
DELIVERIES = "SELECT message_id, status FROM deliveries WHERE message_id = ANY($1) FOR UPDATE"
DELETES = (
    ("attempts", "DELETE FROM attempts WHERE message_id = ANY($1)"),
    ("deliveries", "DELETE FROM deliveries WHERE message_id = ANY($1)"),
    ("message_traces", "DELETE FROM message_traces WHERE id = ANY($1)"),
    ("messages", "DELETE FROM messages WHERE id = ANY($1)"),
)
_DELETABLE = (
    "FROM messages m WHERE m.id < $2 AND NOT EXISTS (SELECT 1 FROM deliveries d"
    f" WHERE d.message_id = m.id AND d.status IN ({_UNFINISHED}))"
)
COUNT = (
    "SELECT (SELECT count(*) FROM messages WHERE payload_expires_at <= $1) AS payloads,"
    f" (SELECT count(*) {_DELETABLE}) AS messages,"
    f" (SELECT count(*) FROM deliveries WHERE message_id IN (SELECT m.id {_DELETABLE}))"
    " AS deliveries,"
    f" (SELECT count(*) FROM attempts WHERE message_id IN (SELECT m.id {_DELETABLE}))"
    " AS attempts"
)


class PostgresRetention(PostgresBase):
    @wrap_exceptions
    async def erase_expired_payloads(self, now_ms: int, limit: int) -> int:
        erased: int = await self._db.fetchval(ERASE, now_ms, limit)
        return erased

    @wrap_exceptions
    async def delete_old_messages(
        self, before_ms: int, limit: int, after_id: str | None = None
    ) -> tuple[CleanupCounts, str | None]:
        floor = ids.id_floor(ids.MESSAGE, before_ms)
        async with self._db.acquire() as conn, conn.transaction():
            seen = [r["id"] for r in await conn.fetch(OLD, after_id or "", floor, limit)]
            if not seen:
                return CleanupCounts(), None
            kept = {
                r["message_id"]
                for r in await conn.fetch(DELIVERIES, seen)
                if r["status"] in UNFINISHED
            }
            gone = [m for m in seen if m not in kept]
            n = {t: command_status_count(await conn.execute(q, gone)) for t, q in DELETES}
        counts = CleanupCounts(
            messages=n["messages"], deliveries=n["deliveries"], attempts=n["attempts"]
        )
        return counts, seen[-1]

    @wrap_exceptions
    async def delete_finished_tasks(self, before_ms: int) -> int:
        return command_status_count(await self._db.execute(f"DELETE {_OLD_TASKS}", before_ms))

    @wrap_exceptions
    async def delete_expired_tokens(self, now_ms: int) -> int:
        return command_status_count(await self._db.execute(f"DELETE {_EXPIRED_TOKENS}", now_ms))

    @wrap_exceptions
    async def count_cleanup(self, now_ms: int, before_ms: int | None) -> CleanupCounts:
        # Without a horizon, a floor no id is below.
        floor = "" if before_ms is None else ids.id_floor(ids.MESSAGE, before_ms)
        row = await self._db.fetchrow(COUNT, now_ms, floor)
        counts = CleanupCounts(row["payloads"], row["messages"], row["deliveries"], row["attempts"])
        counts.tokens = await self._db.fetchval(f"SELECT count(*) {_EXPIRED_TOKENS}", now_ms)
        if before_ms is not None:
            counts.tasks = await self._db.fetchval(f"SELECT count(*) {_OLD_TASKS}", before_ms)
        return counts

    @asynccontextmanager
    async def cleanup_turn(self) -> AsyncIterator[bool]:
        async with self._db.acquire() as conn:
            mine = bool(await conn.fetchval(TRY_LOCK, CLEANUP_LOCK_KEY))
            try:
                yield mine
            finally:
                if mine:
                    await conn.execute(UNLOCK, CLEANUP_LOCK_KEY)
