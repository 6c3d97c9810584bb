"""SQLite's Tokens: API tokens, stored by their hash."""

from __future__ import annotations

import sqlite3

from hookpost.domain.errors import NotFound
from hookpost.domain.models import ApiToken, Page, PageRequest
from hookpost.domain.permissions import ENV_ADMIN_TOKEN_NAME, is_env_admin_token
from hookpost.store.paging import finish_page
from hookpost.store.rows import token_from_row
from hookpost.store.sqlite import sql
from hookpost.store.sqlite.core import Conn, SqliteBase, paged
from hookpost.store.sqlite.errors import conflict


class SqliteTokens(SqliteBase):
    async def create_token(self, token: ApiToken) -> None:
        t = token

        def run(c: Conn) -> None:
            try:
                c.execute(
                    sql.TOKEN_INSERT,
                    (t.id, t.token_hash, t.app_id, t.name, t.created_at, t.expires_at, t.hint),
                )
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
                    raise NotFound("application", t.app_id or "") from None
                raise conflict(exc, "this token") from None

        await self._db.write(run)

    async def find_token(self, token_hash: str) -> ApiToken | None:
        def run(c: Conn) -> ApiToken | None:
            row = c.execute(sql.TOKEN_FIND, (token_hash,)).fetchone()
            return None if row is None else token_from_row(row)

        return await self._db.read(run)

    async def list_tokens(self, page: PageRequest, app_id: str | None = None) -> Page[ApiToken]:
        where, params = (["app_id = ?"], [app_id]) if app_id is not None else ([], [])

        def run(c: Conn) -> Page[ApiToken]:
            rows = paged(c, "SELECT * FROM api_tokens", where, params, page, "id")
            return finish_page([token_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def delete_token_by_id(self, token_id: str) -> ApiToken | None:
        def run(c: Conn) -> ApiToken | None:
            row = c.execute(sql.TOKEN_DELETE_ID, (token_id,)).fetchone()
            return None if row is None else token_from_row(row)

        return await self._db.write(run)

    async def replace_env_token(self, token: ApiToken) -> int:
        assert is_env_admin_token(token)
        t = token

        def run(c: Conn) -> int:
            gone = c.execute(sql.ENV_TOKENS_DELETE, (ENV_ADMIN_TOKEN_NAME, t.token_hash)).rowcount
            c.execute(
                sql.TOKEN_INSERT_NEW,
                (t.id, t.token_hash, t.app_id, t.name, t.created_at, t.expires_at, t.hint),
            )
            return int(gone)

        return await self._db.write(run)

    async def delete_token(self, token_hash: str) -> bool:
        def run(c: Conn) -> bool:
            cur = c.execute(sql.TOKEN_DELETE, (token_hash,))
            return cur.rowcount > 0

        return await self._db.write(run)

    async def count_admin_tokens(self) -> int:
        def run(c: Conn) -> int:
            row = c.execute(sql.ADMIN_TOKENS).fetchone()
            return int(row[0])

        return await self._db.read(run)
