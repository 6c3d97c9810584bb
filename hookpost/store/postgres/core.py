"""What the PostgreSQL backend's role modules share: the pool, the secret box, the notifier,
retries of whole transactions, and the helpers that build queries."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

import asyncpg

from hookpost.domain import ids
from hookpost.domain.models import Message, PageRequest
from hookpost.store.paging import content_rows, keyset
from hookpost.store.postgres import sql
from hookpost.store.postgres.clocked import Clocked
from hookpost.store.postgres.listener import Notifier
from hookpost.store.postgres.ordering import settle_endpoints
from hookpost.store.purge import BATCH_ROWS
from hookpost.store.rows import SecretBox, message_from_row

log = logging.getLogger("hookpost.store.postgres")

T = TypeVar("T")

# Retried inside the store (whole transactions, so a retry starts from scratch): a deadlock
# victim, or a row deleted between the moment it was read and the moment a new row referring
# to it was written, which the retry then sees as gone.
RETRIES = 3


class PostgresBase:
    """The state every role of :class:`~hookpost.store.postgres.store.PostgresStore` works on."""

    _pool: asyncpg.Pool | None
    _box: SecretBox
    _notifier: Notifier
    batch_rows: int = BATCH_ROWS  # rows per transaction of a batched write (store.purge)
    _sql: Clocked  # the statements that read the clock

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not open")
        return self._pool

    async def _settle(self, endpoint_ids: Collection[str], now_ms: int) -> int:
        """Settle ordered endpoints (domain.ordering) in a transaction of their own, after the
        write that parked or finished their rows committed; how many rows became due (the
        workers are woken for them). A failure is logged, not raised: that write stands, and
        the workers' sweep (settle_ordered) settles the endpoints within seconds."""
        if not endpoint_ids:
            return 0

        async def run() -> int:
            async with self._db.acquire() as conn, conn.transaction():
                return await settle_endpoints(conn, self._sql, endpoint_ids, now_ms)

        try:
            due = await self._retrying(run)
        except Exception as exc:
            log.warning("settling ordered endpoints failed (the sweep will): %s", exc)
            return 0
        if due:
            self._notifier.poke()
        return due

    async def _retrying(
        self, op: Callable[[], Awaitable[T]], fk_races: frozenset[str] = frozenset()
    ) -> T:
        for attempt in range(1, RETRIES + 1):
            try:
                return await op()
            except asyncpg.exceptions.TransactionRollbackError as exc:
                if attempt == RETRIES:
                    raise
                log.debug("retrying after %s", exc)
            except asyncpg.ForeignKeyViolationError as exc:
                if attempt == RETRIES or exc.constraint_name not in fk_races:
                    raise
                log.debug("retrying after %s", exc)
        raise AssertionError("unreachable")


async def page_messages(
    db: asyncpg.Pool,
    query: str,
    args: Args,
    page: PageRequest,
    with_content: bool,
    max_bytes: int | None,
) -> tuple[list[Any], list[Message], int]:
    """A page's rows (``query`` reads them without their payloads: see ``rows.message_head``),
    their messages, and how many of them the page keeps (``finish_page``): with content, as
    many as ``max_bytes`` allows, whose payloads are read in the same snapshot."""
    if not with_content:
        rows = await db.fetch(query, *args)
        return rows, [message_from_row(r, b"") for r in rows], page.limit
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(query, *args)
        keep = content_rows([r["size"] for r in rows], page, max_bytes)
        wanted = [r["id"] for r in rows[:keep]]
        payloads = {r["id"]: r["payload"] for r in await conn.fetch(sql.PAYLOADS, wanted)}
    return rows, [message_from_row(r, payloads.get(r["id"], b"")) for r in rows], keep


def command_status_count(status: str) -> int:
    """Rows affected, from a command tag such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class Args(list[Any]):
    """Query parameters that hand out their own ``$n`` placeholders."""

    def add(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


def id_range(
    where: list[str],
    args: Args,
    column: str,
    prefix: str,
    before: int | None,
    after: int | None,
) -> None:
    """Time bounds as id bounds: ids sort by creation time, so no extra index is needed."""
    if before is not None:
        where.append(f"{column} < {args.add(ids.id_floor(prefix, before))}")
    if after is not None:
        where.append(f"{column} >= {args.add(ids.id_floor(prefix, after + 1))}")


def paged_query(base: str, where: list[str], args: Args, page: PageRequest, column: str) -> str:
    cond, order, fetch = keyset(page, column, f"${len(args) + 1}")
    if cond:
        args.append(page.iterator)
        where = [*where, cond]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{base}{clause} ORDER BY {order} LIMIT {args.add(fetch)}"
