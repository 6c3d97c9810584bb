"""PostgreSQL's Idempotency: what idempotency keys hold (the first answer wins)."""

from __future__ import annotations

from hookpost.domain.queries import KeyAnswer
from hookpost.store.postgres import sql_tokens
from hookpost.store.postgres.core import PostgresBase, command_status_count
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.rows import key_answer, seal_answer


class PostgresIdempotency(PostgresBase):
    @wrap_exceptions
    async def get_idempotent(self, scope: str, key: str, now_ms: int) -> KeyAnswer | None:
        row = await self._db.fetchrow(sql_tokens.IDEMPOTENT_GET, scope, key, now_ms)
        return None if row is None else key_answer(self._box, *row)

    @wrap_exceptions
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
        return await self._put_first(scope, key, status, sealed, None, expires_at, now_ms, app_id)

    @wrap_exceptions
    async def purge_expired_keys(self, now_ms: int, limit: int) -> int:
        return command_status_count(
            await self._db.execute(sql_tokens.KEYS_EXPIRED_DELETE, now_ms, limit)
        )

    async def _delete_app_keys(self, app_id: str, limit: int) -> int:
        return command_status_count(
            await self._db.execute(sql_tokens.KEYS_OF_APP_DELETE, app_id, limit)
        )

    async def _put_first(
        self,
        scope: str,
        key: str,
        status: int | None,
        body: bytes | None,
        message_id: str | None,
        expires_at: int,
        now_ms: int,
        app_id: str | None = None,
    ) -> KeyAnswer | None:
        """An answer or a send's message under a key, unless the key holds something
        unexpired: None if written, else what it holds."""
        written = await self._db.fetchval(
            sql_tokens.IDEMPOTENT_PUT,
            scope,
            key,
            status,
            body,
            message_id,
            expires_at,
            now_ms,
            app_id,
        )
        if written is not None:
            return None
        # The answer there was committed before our statement skipped it (ON CONFLICT waits
        # for a concurrent insert of the key), so a new statement sees it.
        return await self.get_idempotent(scope, key, now_ms)
