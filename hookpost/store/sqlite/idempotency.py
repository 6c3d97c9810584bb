"""SQLite's Idempotency: what idempotency keys hold (the first answer wins)."""

from __future__ import annotations

from hookpost.domain.queries import KeyAnswer
from hookpost.store.rows import key_answer, seal_answer
from hookpost.store.sqlite import sql
from hookpost.store.sqlite.core import Conn, SqliteBase


class SqliteIdempotency(SqliteBase):
    async def get_idempotent(self, scope: str, key: str, now_ms: int) -> KeyAnswer | None:
        def run(c: Conn) -> KeyAnswer | None:
            row = c.execute(sql.IDEMPOTENT_GET, (scope, key, now_ms)).fetchone()
            return None if row is None else key_answer(self._box, *row)

        return await self._db.read(run)

    async def put_idempotent(
        self,
        scope: str,
        key: str,
        status: int,
        body: bytes,
        expires_at: int,
        now_ms: int,
        app_id: str | None = None,
    ) -> KeyAnswer | None:
        sealed = seal_answer(self._box, body)

        def run(c: Conn) -> KeyAnswer | None:
            cur = c.execute(
                sql.ANSWER_PUT_FIRST, (scope, key, status, sealed, app_id, expires_at, now_ms)
            )
            if cur.rowcount:
                return None
            row = c.execute(sql.IDEMPOTENT_STORED, (scope, key)).fetchone()
            return key_answer(self._box, *row)

        return await self._db.write(run)

    async def purge_expired_keys(self, now_ms: int, limit: int) -> int:
        return await self._db.write(
            lambda c: c.execute(sql.KEYS_EXPIRED_DELETE, (now_ms, limit)).rowcount
        )

    async def _delete_app_keys(self, app_id: str, limit: int) -> int:
        return await self._db.write(
            lambda c: c.execute(sql.KEYS_OF_APP_DELETE, (app_id, limit)).rowcount
        )
