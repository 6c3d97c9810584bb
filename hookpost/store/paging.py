"""Keyset paging over an id column, shared by the backends.

The cursor is the last id seen, so a page never repeats or skips rows when new ones arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from hookpost.domain.models import Page, PageRequest

T = TypeVar("T")


def keyset(page: PageRequest, column: str, placeholder: str) -> tuple[str, str, int]:
    """(extra WHERE condition or "", ORDER BY clause, rows to fetch = limit + 1)."""
    ascending = page.descending == page.backwards
    cond = ""
    if page.iterator is not None:
        cond = f"{column} {'>' if ascending else '<'} {placeholder}"
    order = f"{column} {'ASC' if ascending else 'DESC'}"
    return cond, order, page.limit + 1


def finish_page(rows: Sequence[T], page: PageRequest) -> Page[T]:
    items = list(rows[: page.limit])
    done = len(rows) <= page.limit
    if page.backwards:
        items.reverse()
    return Page(items=items, done=done)
