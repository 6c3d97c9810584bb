"""What the SQLite backend's role modules share: the executor, the secret box, the wake-up
callbacks, and the helpers that build paged queries."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from hookpost.domain import ids
from hookpost.domain.models import Message, PageRequest
from hookpost.store.paging import content_rows, keyset
from hookpost.store.purge import BATCH_ROWS
from hookpost.store.rows import SecretBox, message_from_row
from hookpost.store.sqlite import sql
from hookpost.store.sqlite.executor import SqliteExecutor

Conn = sqlite3.Connection


class SqliteBase:
    """The state every role of :class:`~hookpost.store.sqlite.store.SqliteStore` works on."""

    _db: SqliteExecutor
    _box: SecretBox
    _listeners: list[Callable[[], None]]
    batch_rows: int = BATCH_ROWS  # rows per transaction of a batched write (store.purge)

    def on_new_work(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _new_work(self) -> None:
        # Only this process hears it; workers in other processes find the work by polling.
        for callback in self._listeners:
            callback()


@contextlib.contextmanager
def snapshot(conn: Conn) -> Iterator[None]:
    """One read transaction: the statements inside see the same state of the database."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def page_messages(
    conn: Conn,
    rows: list[sqlite3.Row],
    page: PageRequest,
    with_content: bool,
    max_bytes: int | None,
) -> tuple[list[Message], int]:
    """The messages of a page's ``rows`` (read, in a ``snapshot``, without their payloads: see
    ``rows.message_head``), and how many of them the page keeps (``finish_page``): with
    content, as many as ``max_bytes`` allows, whose payloads are read now."""
    if not with_content:
        return [message_from_row(r, b"") for r in rows], page.limit
    keep = content_rows([r["size"] for r in rows], page, max_bytes)
    wanted = orjson.dumps([r["id"] for r in rows[:keep]]).decode()
    payloads = dict(conn.execute(sql.PAYLOADS, (wanted,)).fetchall())
    return [message_from_row(r, payloads.get(r["id"], b"")) for r in rows], keep


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
