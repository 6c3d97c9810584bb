"""The PostgreSQL backend: many API and worker processes on one database.

PostgreSQL is both the store and the queue: workers claim due deliveries with
``FOR UPDATE SKIP LOCKED`` and are woken by ``LISTEN/NOTIFY``. The behaviour mirrors the
SQLite backend (``tests/contract`` holds both to it); what differs is how:

* hot paths are one statement (one round trip, one implicit transaction) where possible:
  creating a message with its deliveries, claiming, releasing, resending, recording a batch
  of successful attempts;
* ``filters_match`` is the one definition of which endpoints receive a message (see
  ``messages``);
* workers are woken by a NOTIFY sent right after the commit, not inside the transaction (see
  docs/decisions/0006-postgres-notify-after-the-commit.md);
* driver errors are translated once, by ``wrap_exceptions`` on every public method.

:class:`PostgresStore` is its roles (one module each) over one pool; their SQL is in ``sql``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from hookpost.store.postgres import clocked, sql
from hookpost.store.postgres.alerts import PostgresAlerts
from hookpost.store.postgres.batching import GroupCommit
from hookpost.store.postgres.catalog import PostgresCatalog
from hookpost.store.postgres.core import log
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.postgres.idempotency import PostgresIdempotency
from hookpost.store.postgres.listener import Notifier, NotifyListener
from hookpost.store.postgres.log import PostgresLog
from hookpost.store.postgres.messages import PostgresMessages
from hookpost.store.postgres.queue import PostgresQueue
from hookpost.store.postgres.retention import PostgresRetention
from hookpost.store.postgres.stats import PostgresStats
from hookpost.store.postgres.tasks import PostgresTasks
from hookpost.store.postgres.tokens import PostgresTokens
from hookpost.store.postgres.traces import PostgresTraces
from hookpost.store.rows import SecretBox

APPLICATION_NAME = "hookpost"


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Pool reset hook. The default one runs ``RESET ALL; UNLISTEN *; ...`` on every release,
    a round trip per operation for session state this store never sets. asyncpg still rolls
    back a transaction left open (``Connection._reset``) before calling this."""


# Finished deliveries leave dead entries in the queue's index that every claim steps over until
# VACUUM removes them (docs/decisions/0023-per-endpoint-claims.md).
AUTOVACUUM_OFF = (
    "PostgreSQL's autovacuum is off on this server: finished deliveries leave dead index "
    "entries that make every claim slower until VACUUM runs; turn autovacuum on (the default) "
    "or run VACUUM deliveries regularly"
)


class PostgresStore(
    PostgresCatalog,
    PostgresMessages,
    PostgresQueue,
    PostgresLog,
    PostgresTokens,
    PostgresIdempotency,
    PostgresRetention,
    PostgresTasks,
    PostgresAlerts,
    PostgresTraces,
    PostgresStats,
):
    def __init__(
        self,
        dsn: str,
        box: SecretBox,
        *,
        min_size: int = 2,
        max_size: int = 10,
        command_timeout: float | None = 60.0,
        connect_timeout: float = 10.0,
        database_clock: bool = True,
    ) -> None:
        """``database_clock=False``: due times and lease expiry follow the callers' now_ms
        instead of the database's clock, for tests that drive time (see sql.DB_NOW)."""
        self.dsn = dsn
        self._box = box
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout = command_timeout
        self._connect_timeout = connect_timeout
        self._pool = None
        self._callbacks: list[Callable[[], None]] = []
        self._sql = clocked.Clocked.on(database_clock)
        self._listener = NotifyListener(
            dsn, sql.NOTIFY_CHANNEL, self._callbacks, connect_timeout=connect_timeout
        )
        self._notifier = Notifier(lambda query: self._db.execute(query), sql.NOTIFY_CHANNEL)
        self._create_batch = GroupCommit(self._create_many)

    def on_new_work(self, callback: Callable[[], None]) -> None:
        # The listener connection is opened by open() and reads this list on every
        # notification, so a callback registered before or after open() is heard alike.
        self._callbacks.append(callback)

    @property
    def listener(self) -> NotifyListener:
        return self._listener

    # -- lifecycle ---------------------------------------------------------------------------
    @wrap_exceptions
    async def open(self) -> None:
        # A pool connection that breaks (database restart) is closed by asyncpg and replaced
        # by a new one on the next acquire; the failing call raises StoreUnavailable.
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            command_timeout=self._command_timeout,
            timeout=self._connect_timeout,
            reset=_no_reset,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            await self._listener.start()
            if await pool.fetchval("SHOW autovacuum") != "on":
                log.warning(AUTOVACUUM_OFF)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        await self._notifier.close()
        await self._listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self._connect_timeout)
            except Exception:
                pool.terminate()

    @wrap_exceptions
    async def ping(self) -> None:
        await self._db.fetchval("SELECT 1")
