"""Throwaway PostgreSQL databases: created for one scenario, dropped after it (and at exit)."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PgDatabases:
    def __init__(self, server_url: str = DEFAULT_SERVER) -> None:
        self.server_url = server_url
        self.created: list[str] = []
        self.prefix = f"hookpost_bench_{secrets.token_hex(4)}"

    async def _exec(self, sql: str) -> None:
        conn = await asyncpg.connect(self.server_url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def check(self) -> str | None:
        """None if the server is reachable, else why not."""
        try:
            asyncio.run(self._exec("SELECT 1"))
        except Exception as exc:  # refused, auth, ...
            return f"{type(exc).__name__}: {exc}"
        return None

    def create(self, label: str) -> str:
        name = f"{self.prefix}_{label}"[:63]
        asyncio.run(self._exec(f"CREATE DATABASE {_quote(name)}"))
        self.created.append(name)
        return with_db(self.server_url, name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        asyncio.run(self._exec(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"))
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            try:
                self.drop(with_db(self.server_url, name))
            except Exception as exc:  # report, keep dropping the others
                print(f"bench: could not drop database {name}: {exc}")
