"""PostgreSQL's Tokens: API tokens, stored by their hash."""

from __future__ import annotations

from hookpost.domain.models import ApiToken
from hookpost.store.postgres import sql
from hookpost.store.postgres.core import PostgresBase, command_status_count
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.rows import token_from_row


class PostgresTokens(PostgresBase):
    @wrap_exceptions
    async def create_token(self, token: ApiToken) -> None:
        t = token
        await self._db.execute(
            sql.TOKEN_INSERT, t.id, t.token_hash, t.app_id, t.name, t.created_at, t.expires_at
        )

    @wrap_exceptions
    async def find_token(self, token_hash: str) -> ApiToken | None:
        row = await self._db.fetchrow(sql.TOKEN_FIND, token_hash)
        return None if row is None else token_from_row(row)

    @wrap_exceptions
    async def delete_token(self, token_hash: str) -> bool:
        return command_status_count(await self._db.execute(sql.TOKEN_DELETE, token_hash)) > 0

    @wrap_exceptions
    async def count_admin_tokens(self) -> int:
        count: int = await self._db.fetchval(sql.ADMIN_TOKENS)
        return count
