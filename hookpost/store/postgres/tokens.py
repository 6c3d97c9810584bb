"""PostgreSQL's Tokens: API tokens, stored by their hash."""

from __future__ import annotations

from hookpost.domain.models import ApiToken, Page, PageRequest
from hookpost.domain.permissions import is_env_admin_token
from hookpost.store.paging import finish_page
from hookpost.store.postgres import sql_tokens
from hookpost.store.postgres.core import Args, PostgresBase, command_status_count, paged_query
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.rows import token_from_row


class PostgresTokens(PostgresBase):
    @wrap_exceptions
    async def create_token(self, token: ApiToken) -> None:
        t = token
        await self._db.execute(
            sql_tokens.TOKEN_INSERT,
            t.id,
            t.token_hash,
            t.app_id,
            t.name,
            t.created_at,
            t.expires_at,
            t.hint,
        )

    @wrap_exceptions
    async def find_token(self, token_hash: str) -> ApiToken | None:
        row = await self._db.fetchrow(sql_tokens.TOKEN_FIND, token_hash)
        return None if row is None else token_from_row(row)

    @wrap_exceptions
    async def list_tokens(self, page: PageRequest, app_id: str | None = None) -> Page[ApiToken]:
        args = Args()
        where = [] if app_id is None else [f"app_id = {args.add(app_id)}"]
        query = paged_query("SELECT * FROM api_tokens", where, args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([token_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def delete_token_by_id(self, token_id: str) -> ApiToken | None:
        row = await self._db.fetchrow(sql_tokens.TOKEN_DELETE_ID, token_id)
        return None if row is None else token_from_row(row)

    @wrap_exceptions
    async def replace_env_token(self, token: ApiToken) -> int:
        assert is_env_admin_token(token)
        t = token
        gone: int = await self._db.fetchval(
            sql_tokens.ENV_TOKEN_REPLACE,
            t.id,
            t.token_hash,
            t.app_id,
            t.name,
            t.created_at,
            t.expires_at,
            t.hint,
        )
        return gone

    @wrap_exceptions
    async def delete_token(self, token_hash: str) -> bool:
        return command_status_count(await self._db.execute(sql_tokens.TOKEN_DELETE, token_hash)) > 0

    @wrap_exceptions
    async def count_admin_tokens(self) -> int:
        count: int = await self._db.fetchval(sql_tokens.ADMIN_TOKENS)
        return count
