"""SQLite's Retention: erasing expired payloads and deleting old messages, a batch per write.

Each batch is one write job (a short hold of the write lock); the worker's claims and finishes
queue behind it for at most that long (docs/decisions/0032-retention.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson

from hookpost.domain import ids
from hookpost.domain.retention import EXPIRED_TOKEN_KEPT_MS, UNFINISHED, CleanupCounts
from hookpost.domain.tasks import RUNNING
from hookpost.store.sqlite.core import Conn, SqliteBase

_IDS = "SELECT value FROM json_each(?)"
_UNFINISHED = ", ".join(str(int(s)) for s in sorted(UNFINISHED))
# domain.retention.payload_expired, soonest first (ix_messages_payload_expires_at; erased
# rows leave it, as payload_expires_at becomes NULL).
EXPIRED = (
    "SELECT id FROM messages WHERE payload_expires_at IS NOT NULL AND payload_expires_at <= ?"
    " ORDER BY payload_expires_at LIMIT ?"
)
ERASE = (
    f"UPDATE messages SET payload = x'7b7d', expunged = 1, payload_expires_at = NULL"
    f" WHERE id IN ({_IDS})"
)
ERASE_RESPONSES = (
    f"UPDATE attempts SET response = '' WHERE message_id IN ({_IDS}) AND response <> ''"
)
# Ids sort by creation time (domain.ids): `id < id_floor(before)` is `created_at < before`.
OLD = "SELECT id FROM messages WHERE id > ? AND id < ? ORDER BY id LIMIT ?"
KEPT = (
    f"SELECT DISTINCT message_id FROM deliveries WHERE message_id IN ({_IDS})"
    f" AND status IN ({_UNFINISHED})"
)
DELETES = (
    ("attempts", f"DELETE FROM attempts WHERE message_id IN ({_IDS})"),
    ("deliveries", f"DELETE FROM deliveries WHERE message_id IN ({_IDS})"),
    ("message_traces", f"DELETE FROM message_traces WHERE id IN ({_IDS})"),
    ("messages", f"DELETE FROM messages WHERE id IN ({_IDS})"),
)
_DELETABLE = (
    "FROM messages m WHERE m.id < ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
    f" WHERE d.message_id = m.id AND d.status IN ({_UNFINISHED}))"
)
COUNT_EXPIRED = (
    "SELECT count(*) FROM messages WHERE payload_expires_at IS NOT NULL AND payload_expires_at <= ?"
)
COUNT_OLD = (
    f"SELECT (SELECT count(*) {_DELETABLE}),"
    f" (SELECT count(*) FROM deliveries WHERE message_id IN (SELECT m.id {_DELETABLE})),"
    f" (SELECT count(*) FROM attempts WHERE message_id IN (SELECT m.id {_DELETABLE}))"
)

# domain.retention.task_deletable (tests/contract/test_retention.py holds the two equal)
_OLD_TASKS = f"FROM background_tasks WHERE status <> '{RUNNING}' AND updated_at < ?"
# domain.retention.token_deletable (the same contract test)
_EXPIRED_TOKENS = f"FROM api_tokens WHERE expires_at + {EXPIRED_TOKEN_KEPT_MS} <= ?"


class SqliteRetention(SqliteBase):
    _cleanup_lock: asyncio.Lock | None = None

    async def erase_expired_payloads(self, now_ms: int, limit: int) -> int:
        def run(c: Conn) -> int:
            found = [r[0] for r in c.execute(EXPIRED, (now_ms, limit))]
            if found:
                arg = (orjson.dumps(found).decode(),)
                c.execute(ERASE, arg)
                c.execute(ERASE_RESPONSES, arg)
            return len(found)

        return await self._db.write(run)

    async def delete_old_messages(
        self, before_ms: int, limit: int, after_id: str | None = None
    ) -> tuple[CleanupCounts, str | None]:
        floor = ids.id_floor(ids.MESSAGE, before_ms)

        def run(c: Conn) -> tuple[CleanupCounts, str | None]:
            seen = [r[0] for r in c.execute(OLD, (after_id or "", floor, limit))]
            if not seen:
                return CleanupCounts(), None
            kept = {r[0] for r in c.execute(KEPT, (orjson.dumps(seen).decode(),))}
            gone = orjson.dumps([m for m in seen if m not in kept]).decode()
            n = {table: c.execute(query, (gone,)).rowcount for table, query in DELETES}
            counts = CleanupCounts(
                messages=n["messages"], deliveries=n["deliveries"], attempts=n["attempts"]
            )
            return counts, seen[-1]

        return await self._db.write(run)

    async def delete_finished_tasks(self, before_ms: int) -> int:
        def run(c: Conn) -> int:
            return c.execute(f"DELETE {_OLD_TASKS}", (before_ms,)).rowcount

        deleted: int = await self._db.write(run)
        return deleted

    async def delete_expired_tokens(self, now_ms: int) -> int:
        def run(c: Conn) -> int:
            return c.execute(f"DELETE {_EXPIRED_TOKENS}", (now_ms,)).rowcount

        deleted: int = await self._db.write(run)
        return deleted

    async def count_cleanup(self, now_ms: int, before_ms: int | None) -> CleanupCounts:
        def run(c: Conn) -> CleanupCounts:
            counts = CleanupCounts(payloads=c.execute(COUNT_EXPIRED, (now_ms,)).fetchone()[0])
            counts.tokens = c.execute(f"SELECT count(*) {_EXPIRED_TOKENS}", (now_ms,)).fetchone()[0]
            if before_ms is not None:
                floor = ids.id_floor(ids.MESSAGE, before_ms)
                row = c.execute(COUNT_OLD, (floor, floor, floor)).fetchone()
                counts.messages, counts.deliveries, counts.attempts = row
                counts.tasks = c.execute(f"SELECT count(*) {_OLD_TASKS}", (before_ms,)).fetchone()[
                    0
                ]
            return counts

        return await self._db.read(run)

    @asynccontextmanager
    async def cleanup_turn(self) -> AsyncIterator[bool]:
        if self._cleanup_lock is None:
            self._cleanup_lock = asyncio.Lock()
        lock = self._cleanup_lock
        if lock.locked():
            yield False
            return
        async with lock:
            yield True
