"""SQLite's Idempotency: what idempotency keys hold (the first answer wins)."""

from __future__ import annotations

from hookpost.domain.queries import KeyAnswer
from hookpost.store.rows import key_answer
from hookpost.store.sqlite import sql
from hookpost.store.sqlite.core import Conn, SqliteBase


class SqliteIdempotency(SqliteBase):
    async def get_idempotent(self, scope: str, key: str, now_ms: int) -> KeyAnswer | None:
        def run(c: Conn) -> KeyAnswer | None:
            row = c.execute(sql.IDEMPOTENT_GET, (scope, key, now_ms)).fetchone()
            return None if row is None else key_answer(*row)

        return await self._db.read(run)

    async def put_idempotent(
        self, scope: str, key: str, status: int, body: bytes, expires_at: int, now_ms: int
    ) -> KeyAnswer | None:
        def run(c: Conn) -> KeyAnswer | None:
            cur = c.execute(sql.ANSWER_PUT_FIRST, (scope, key, status, body, expires_at, now_ms))
            if cur.rowcount:
                return None
            return key_answer(*c.execute(sql.IDEMPOTENT_STORED, (scope, key)).fetchone())

        return await self._db.write(run)
