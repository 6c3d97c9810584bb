"""Ordered endpoints on SQLite: domain.ordering's rule, run inside the caller's write
transaction (the one write lock serializes every create, finish and settle)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from hookpost.domain.ordering import QueueState, settle
from hookpost.store.sqlite import sql
from hookpost.store.sqlite.core import Conn


def park_new(c: Conn, endpoint_id: str, message_ids: Iterable[str], now_ms: int) -> None:
    """The rows just queued (pending, due) for these messages at an ordered endpoint join its
    queue parked (domain.ordering.joins_parked); ``settle_endpoints`` then picks the head."""
    c.execute(sql.ORDER_PARK_NEW, (now_ms, endpoint_id, orjson.dumps(list(message_ids)).decode()))


def settle_endpoints(c: Conn, endpoint_ids: Iterable[str], now_ms: int) -> int:
    """Settle each endpoint's queue (domain.ordering.settle): how many rows became due."""
    due = 0
    for endpoint_id in sorted(set(endpoint_ids)):
        row = c.execute(sql.ORDER_ENDPOINT, (endpoint_id,)).fetchone()
        if row is None:
            continue  # deleted
        ordered, oldest_parked = bool(row[0]), row[1]
        if ordered:
            sending, pending, oldest = c.execute(sql.ORDER_LIVE, (endpoint_id,)).fetchone()
            state = QueueState(True, sending, pending, oldest, oldest_parked)
        else:
            state = QueueState(False, oldest_parked=oldest_parked)
        todo = settle(state)
        if todo.park:
            c.execute(sql.ORDER_PARK, (now_ms, endpoint_id, todo.keep))
        if todo.promote is not None:
            due += c.execute(sql.ORDER_PROMOTE, (now_ms, now_ms, now_ms, todo.promote)).rowcount
        if todo.unpark_all:
            due += c.execute(sql.ORDER_UNPARK, (now_ms, now_ms, now_ms, endpoint_id)).rowcount
    return due


def unsettled(c: Conn) -> list[str]:
    """The endpoints the sweep settles: parked rows, and no longer ordered or no live row."""
    return [r[0] for r in c.execute(sql.ORDER_UNSETTLED)]
