"""What the PostgreSQL backend's role modules share: the pool, the secret box, the notifier,
retries of whole transactions, and the helpers that build queries."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from hookpost.domain import ids
from hookpost.domain.models import PageRequest
from hookpost.store.paging import keyset
from hookpost.store.postgres.listener import Notifier
from hookpost.store.postgres.sql import Clocked
from hookpost.store.rows import SecretBox

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
    _sql: Clocked  # the statements that read the clock

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not open")
        return self._pool

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
