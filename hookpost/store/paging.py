"""Keyset paging over an id column, shared by the backends.

The cursor is the last id seen, so a page never repeats or skips rows when new ones arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from hookpost.domain.limits import items_within
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


def finish_page(rows: Sequence[T], page: PageRequest, keep: int | None = None) -> Page[T]:
    """The page of ``rows`` (fetched as ``keyset`` says); ``keep``: only its first ``keep``
    rows (``content_rows``), a short page that is not ``done`` when rows were left out."""
    kept = page.limit if keep is None else min(keep, page.limit)
    items = list(rows[:kept])
    done = len(rows) <= kept
    if page.backwards:
        items.reverse()
    return Page(items=items, done=done)


def content_rows(sizes: Sequence[int], page: PageRequest, max_bytes: int | None) -> int:
    """How many of the rows fetched for ``page`` it returns, when the i-th carries
    ``sizes[i]`` bytes of content and a page may carry ``max_bytes`` (None: any)."""
    return page.limit if max_bytes is None else items_within(sizes, page.limit, max_bytes)
