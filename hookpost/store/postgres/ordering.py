"""Ordered endpoints on PostgreSQL: domain.ordering's settle, under the endpoints' locks."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from hookpost.domain.ordering import QueueState, settle
from hookpost.store.postgres import sql
from hookpost.store.postgres.clocked import Clocked


async def settle_endpoints(
    conn: asyncpg.Connection, clocked: Clocked, endpoint_ids: Iterable[str], now_ms: int
) -> int:
    """Settle each endpoint's queue, in the caller's transaction: how many rows became due.

    The lock comes first, in a statement of its own (see sql.ORDER_LOCK)."""
    wanted = sorted(set(endpoint_ids))
    if not wanted:
        return 0
    ordered = {r["id"]: r["ordered"] for r in await conn.fetch(sql.ORDER_LOCK, wanted)}
    if not ordered:
        return 0  # deleted
    promote: list[int] = []
    unpark: list[str] = []
    for r in await conn.fetch(sql.ORDER_STATE, list(ordered), list(ordered.values())):
        queue = (r["sending"], r["pending"], r["oldest"], r["oldest_parked"])
        todo = settle(QueueState(r["ordered"], *queue))
        if todo.park:
            await conn.execute(sql.ORDER_PARK, now_ms, r["id"], todo.keep)
        if todo.promote is not None:
            promote.append(todo.promote)
        if todo.unpark_all:
            unpark.append(r["id"])
    if not promote and not unpark:
        return 0
    status: str = await conn.execute(clocked.order_promote, now_ms, promote, unpark)
    return int(status.rsplit(maxsplit=1)[-1])  # "UPDATE n"
