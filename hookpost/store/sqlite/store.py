"""The SQLite backend: the embedded default, one database file, WAL, one writer.

:class:`SqliteStore` is its roles (one module each) over one executor; their SQL is in ``sql``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from hookpost.store.rows import SecretBox
from hookpost.store.sqlite.alerts import SqliteAlerts
from hookpost.store.sqlite.catalog import SqliteCatalog
from hookpost.store.sqlite.executor import SqliteExecutor
from hookpost.store.sqlite.idempotency import SqliteIdempotency
from hookpost.store.sqlite.log import SqliteLog
from hookpost.store.sqlite.messages import SqliteMessages
from hookpost.store.sqlite.queue import SqliteQueue
from hookpost.store.sqlite.retention import SqliteRetention
from hookpost.store.sqlite.stats import SqliteStats
from hookpost.store.sqlite.tasks import SqliteTasks
from hookpost.store.sqlite.tokens import SqliteTokens
from hookpost.store.sqlite.traces import SqliteTraces

MIN_SQLITE = (3, 33, 0)  # UPDATE ... FROM (multirow)


def _has_json() -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT json_array(1), count(*) FROM json_each('[1]')")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


class SqliteStore(
    SqliteCatalog,
    SqliteMessages,
    SqliteQueue,
    SqliteLog,
    SqliteTokens,
    SqliteIdempotency,
    SqliteRetention,
    SqliteTasks,
    SqliteAlerts,
    SqliteTraces,
    SqliteStats,
):
    def __init__(self, path: str, box: SecretBox, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._box = box
        self._db = SqliteExecutor(path, synchronous=synchronous)
        self._listeners: list[Callable[[], None]] = []

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise RuntimeError(
                f"hookpost needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer "
                f"(UPDATE ... FROM); this Python links SQLite {sqlite3.sqlite_version}"
            )
        if not _has_json():
            raise RuntimeError(
                f"hookpost needs SQLite's JSON functions (built in since 3.38, the JSON1 "
                f"extension before); this Python's SQLite {sqlite3.sqlite_version} lacks them"
            )
        self._db.start()

    async def close(self) -> None:
        self._db.close()

    async def ping(self) -> None:
        await self._db.read(lambda c: c.execute("SELECT 1").fetchone())
