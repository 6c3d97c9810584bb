"""Group commit: concurrent calls of one operation share a statement (and its commit).

Under load, an API process has many requests creating messages at once; each used to be a
statement and a commit of its own, and most of PostgreSQL's (and asyncpg's) work per message
was that per-statement, per-commit overhead, not the rows. ``GroupCommit`` queues the calls
and runs them ``max_batch`` at a time, with at most ``max_running`` batches in flight. A call
that finds a free runner starts a batch at once (on the next turn of the event loop, so the
calls made in the same turn join it): when the load is light, a batch is one call and nothing
waits; when it is heavy, calls queue behind the running batches and go together.

Every caller still gets its own answer only after its batch's statement has returned, so
durability is the same as one statement per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        max_batch: int = 256,
        max_running: int = 2,
    ) -> None:
        # run(items) returns one result per item, in order, or raises: the exception is
        # then every caller's.
        self._run = run
        self._max_batch = max_batch
        self._max_running = max_running
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._running < self._max_running:
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)  # a strong reference until it is done
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._run_batch(batch)
        finally:
            self._running -= 1

    async def _run_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except BaseException as exc:
            for _, future in batch:
                if not future.done():  # a caller that was cancelled no longer listens
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # cancellation of the runner itself (the loop is closing)
            return
        for (_, future), result in zip(batch, results, strict=False):
            if not future.done():
                future.set_result(result)
