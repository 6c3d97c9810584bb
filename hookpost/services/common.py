"""Small helpers shared by the services."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from hookpost.domain.models import Page

Clock = Callable[[], int]
T = TypeVar("T")


def now_ms() -> int:
    return int(time.time() * 1000)


def filtered(page: Page[T], keep: Callable[[T], bool], key: Callable[[T], str]) -> Page[T]:
    """The rows of ``page`` that ``keep`` accepts; the page's iterators stay those of the rows
    the store returned, so paging neither skips nor repeats."""
    items = page.items
    if not items:
        return page
    kept = [item for item in items if keep(item)]
    return Page(items=kept, done=page.done, bounds=(key(items[0]), key(items[-1])))
