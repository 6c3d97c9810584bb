"""Waiting with a deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool] = bool,
    timeout: float = 10.0,
    interval: float = 0.05,
) -> T:
    """Call ``probe`` until ``accept(result)``; fail with the last result at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {result!r}")
        await asyncio.sleep(interval)


async def until_serving(server: Any, task: asyncio.Task[None], timeout: float = 10.0) -> None:
    """Wait until the ``uvicorn.Server`` that ``task`` runs is listening; if it stopped
    first, raise its start-up error."""

    async def started() -> bool:
        if task.done():
            task.result()  # raise the start-up error
        return bool(server.started)

    await eventually(started, timeout=timeout, interval=0.01)
