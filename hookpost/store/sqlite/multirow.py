"""One ``sqlite3`` call for many rows: statements over a ``VALUES`` list instead of ``executemany``.

Every ``sqlite3`` call lets go of the GIL, and ``executemany`` makes one per row. The writer
thread then waits to get the GIL back from the busy event-loop thread once per row, holding
the cross-process write lock all the while (see ``executor``). Here a batch is one statement
per chunk of rows. Chunks have power-of-two sizes, so a handful of statement texts cover every
batch size and stay in the connection's statement cache.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

MAX_CHUNK = 128  # rows per statement; 128 x 13 columns is far below SQLite's 32,766 variables


def chunks(rows: Sequence[tuple[Any, ...]]) -> Iterator[Sequence[tuple[Any, ...]]]:
    """``rows`` in consecutive slices of power-of-two sizes, largest first (47 = 32+8+4+2+1)."""
    start = 0
    while start < len(rows):
        size = min(MAX_CHUNK, 1 << ((len(rows) - start).bit_length() - 1))
        yield rows[start : start + size]
        start += size


@lru_cache(maxsize=64)
def values_list(width: int, count: int) -> str:
    """``(?, ?), (?, ?), ...``: ``count`` rows of ``width`` placeholders."""
    row = f"({', '.join('?' * width)})"
    return ", ".join([row] * count)


def execute_values(
    conn: sqlite3.Connection,
    template: str,
    rows: Sequence[tuple[Any, ...]],
    leading: tuple[Any, ...] = (),
) -> int:
    """Run ``template`` (with ``{values}`` where the rows go, as columns ``column1``...) over
    ``rows``; ``leading`` binds the placeholders written before ``{values}``. Returns the
    number of rows the statements changed."""
    if not rows:
        return 0
    width = len(rows[0])
    changed = 0
    for chunk in chunks(rows):
        sql = template.format(values=values_list(width, len(chunk)))
        params = [*leading, *(value for row in chunk for value in row)]
        changed += conn.execute(sql, params).rowcount
    return changed
