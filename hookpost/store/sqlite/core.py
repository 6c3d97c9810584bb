"""What the SQLite backend's role modules share: the executor, the secret box, the wake-up
callbacks, and the helpers that build paged queries."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from hookpost.domain import ids
from hookpost.domain.models import PageRequest
from hookpost.store.paging import keyset
from hookpost.store.rows import SecretBox
from hookpost.store.sqlite.executor import SqliteExecutor

Conn = sqlite3.Connection


class SqliteBase:
    """The state every role of :class:`~hookpost.store.sqlite.store.SqliteStore` works on."""

    _db: SqliteExecutor
    _box: SecretBox
    _listeners: list[Callable[[], None]]

    def on_new_work(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _new_work(self) -> None:
        # Only this process hears it; workers in other processes find the work by polling.
        for callback in self._listeners:
            callback()


def paged(
    conn: Conn, sql: str, where: list[str], params: list[Any], page: PageRequest, column: str
) -> list[sqlite3.Row]:
    cond, order, fetch = keyset(page, column, "?")
    if cond:
        where = [*where, cond]
        params = [*params, page.iterator]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return conn.execute(f"{sql}{clause} ORDER BY {order} LIMIT ?", [*params, fetch]).fetchall()


def id_range(
    where: list[str],
    params: list[Any],
    column: str,
    prefix: str,
    before: int | None,
    after: int | None,
) -> None:
    """Time bounds as id bounds: ids sort by creation time, so no extra index is needed."""
    if before is not None:
        where.append(f"{column} < ?")
        params.append(ids.id_floor(prefix, before))
    if after is not None:
        where.append(f"{column} >= ?")
        params.append(ids.id_floor(prefix, after + 1))
