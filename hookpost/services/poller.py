"""A worker's background loop: call ``check`` until it finds nothing more to do, then wait for
a wake or ``poll_s``; the background-task runner and the alert runner are two of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Poller:
    """Runs ``check`` (True: it did something, call again at once) when woken or every
    ``poll_s``, and at most once per ``min_gap_s`` however often it is woken."""

    def __init__(
        self,
        name: str,
        check: Callable[[], Awaitable[bool]],
        poll_s: float,
        log: logging.Logger,
        failure: str,
        min_gap_s: float = 0.0,
    ) -> None:
        self._name = name
        self._check = check
        self._poll_s = poll_s
        self._log = log
        self._failure = failure  # logged, with the exception, when a check raises
        self._min_gap_s = min_gap_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            checked = loop.time()
            try:
                while await self._check():
                    pass
            except Exception:  # the store is down: try again at the next poll
                self._log.warning(self._failure, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            if self._min_gap_s:
                await asyncio.sleep(max(0.0, checked + self._min_gap_s - loop.time()))
