"""PostgreSQL's Idempotency: answers stored under idempotency keys (the first one wins)."""

from __future__ import annotations

from hookpost.store.postgres import sql
from hookpost.store.postgres.core import PostgresBase
from hookpost.store.postgres.errors import wrap_exceptions


class PostgresIdempotency(PostgresBase):
    @wrap_exceptions
    async def get_idempotent(self, scope: str, key: str, now_ms: int) -> tuple[int, bytes] | None:
        row = await self._db.fetchrow(sql.IDEMPOTENT_GET, scope, key, now_ms)
        return None if row is None else (row["status"], bytes(row["body"]))

    @wrap_exceptions
    async def put_idempotent(
        self, scope: str, key: str, status: int, body: bytes, expires_at: int, now_ms: int
    ) -> tuple[int, bytes] | None:
        written = await self._db.fetchval(
            sql.IDEMPOTENT_PUT, scope, key, status, body, expires_at, now_ms
        )
        if written is not None:
            return None
        # The answer there was committed before our statement skipped it (ON CONFLICT waits
        # for a concurrent insert of the key), so a new statement sees it.
        return await self.get_idempotent(scope, key, now_ms)
