"""LISTEN on one channel over a dedicated connection, and keep listening across restarts.

The connection is not taken from the pool: a pooled connection is reset (UNLISTEN *) when it
goes back, and a LISTEN must outlive any one query. When the connection drops (a database
restart, a failover, a killed backend), a background task reconnects with exponential
backoff and then calls every callback once, because work may have arrived while nobody was
listening. A periodic ``SELECT 1`` notices a connection that died without closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

log = logging.getLogger("hookpost.store.postgres")

APPLICATION_NAME = "hookpost-listener"
CLOSE_GRACE_S = 5.0  # how long close() lets a NOTIFY in flight finish


class NotifyListener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        callbacks: Sequence[Callable[[], None]],
        *,
        connect_timeout: float = 5.0,
        check_interval: float = 15.0,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._callbacks = callbacks  # shared with the store: later registrations count too
        self._connect_timeout = connect_timeout
        self._check_interval = check_interval
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0  # for tests and metrics

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        """Connect and LISTEN (raising if the database is unreachable), then watch."""
        conn = await self._connect()
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(conn), name="hookpost-pg-listen"
        )

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), self._connect_timeout)
            except Exception:  # the server may be gone: just drop the socket
                conn.terminate()

    # -- internals ---------------------------------------------------------------------------
    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return conn

    async def _supervise(self, conn: asyncpg.Connection) -> None:
        while True:
            await self._watch(conn)
            self._conn = None
            conn.terminate()  # no-op when already closed
            log.warning("LISTEN connection lost; reconnecting")
            conn = await self._reconnect()
            self.reconnects += 1
            log.info("LISTEN connection re-established")
            self._fire()  # work may have been created while nobody listened

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return once ``conn`` is closed or stops answering."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        while not lost.is_set() and not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._check_interval)
                return
            try:
                await conn.execute("SELECT 1", timeout=self._connect_timeout)
            except Exception as exc:
                log.warning("LISTEN connection check failed: %s", exc)
                return

    async def _reconnect(self) -> asyncpg.Connection:
        delay = self._min_backoff
        failures = 0
        while True:
            try:
                return await self._connect()
            except Exception as exc:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "LISTEN reconnect failed (retry in %.2fs): %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._fire()

    def _fire(self) -> None:
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:
                log.exception("new-work callback failed")


class Notifier:
    """Sends NOTIFY after commits, coalescing bursts.

    A NOTIFY inside a writing transaction makes its commit take a cluster-wide lock and hold it
    through the WAL flush, so concurrent commits that notify cannot share a flush (group commit; see
    docs/decisions/0006-postgres-notify-after-the-commit.md). Here the writing transaction commits
    first, then at most one small NOTIFY-only transaction (no WAL flush) is in flight at a time;
    pokes that arrive meanwhile are folded into one more. Every poke is followed by a NOTIFY that
    starts after it.

    A NOTIFY lost to a crash between the commit and the NOTIFY, or to an unreachable
    database, only delays the work until the workers' next poll.
    """

    def __init__(self, execute: Callable[[str], Any], channel: str) -> None:
        self._execute = execute
        self._query = f"SELECT pg_notify('{channel}', '')"
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def poke(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="hookpost-pg-notify"
            )
        else:
            self._again = True

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self._execute(self._query)
            except Exception as exc:
                log.warning("NOTIFY failed (workers will find the work by polling): %s", exc)
                return
            if not self._again:
                return

    async def close(self) -> None:
        """Let a NOTIFY in flight finish (a last send's wake-up), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=CLOSE_GRACE_S)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
