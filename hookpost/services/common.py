"""Small helpers shared by the services."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

T = TypeVar("T")
Clock = Callable[[], int]


def now_ms() -> int:
    return int(time.time() * 1000)


def with_changes(obj: T, changes: Mapping[str, Any], **always: Any) -> T:
    """A copy of a dataclass with ``changes`` applied (PATCH: only the fields that were sent)."""
    return replace(obj, **{**changes, **always})  # type: ignore[type-var]
