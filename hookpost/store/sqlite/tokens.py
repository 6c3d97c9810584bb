"""SQLite's Tokens: API tokens, stored by their hash."""

from __future__ import annotations

import sqlite3

from hookpost.domain.errors import NotFound
from hookpost.domain.models import ApiToken
from hookpost.store.rows import token_from_row
from hookpost.store.sqlite import sql
from hookpost.store.sqlite.core import Conn, SqliteBase
from hookpost.store.sqlite.errors import conflict


class SqliteTokens(SqliteBase):
    async def create_token(self, token: ApiToken) -> None:
        t = token

        def run(c: Conn) -> None:
            try:
                c.execute(
                    sql.TOKEN_INSERT,
                    (t.id, t.token_hash, t.app_id, t.name, t.created_at, t.expires_at),
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
