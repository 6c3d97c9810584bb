"""SQLite's Idempotency: answers stored under idempotency keys (the first one wins)."""

from __future__ import annotations

from hookpost.store.sqlite import sql
from hookpost.store.sqlite.core import Conn, SqliteBase


class SqliteIdempotency(SqliteBase):
    async def get_idempotent(self, scope: str, key: str, now_ms: int) -> tuple[int, bytes] | None:
        def run(c: Conn) -> tuple[int, bytes] | None:
            row = c.execute(sql.IDEMPOTENT_GET, (scope, key, now_ms)).fetchone()
            return None if row is None else (row[0], bytes(row[1]))

        return await self._db.read(run)

    async def put_idempotent(
        self, scope: str, key: str, status: int, body: bytes, expires_at: int, now_ms: int
    ) -> tuple[int, bytes] | None:
        def run(c: Conn) -> tuple[int, bytes] | None:
            cur = c.execute(sql.ANSWER_PUT_FIRST, (scope, key, status, body, expires_at, now_ms))
            if cur.rowcount:
                return None
            row = c.execute(sql.IDEMPOTENT_STORED, (scope, key)).fetchone()
            return (row[0], bytes(row[1]))

        return await self._db.write(run)
