"""SQLite writers in several processes take turns through the write lock without losing a
write."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path

from hookpost.store.sqlite.executor import SqliteExecutor
from tests.integration.test_sqlite_executor import _create, _insert, _values


def _writer_process(path: str, start: int, count: int) -> None:
    async def run() -> None:
        db = SqliteExecutor(path, synchronous="NORMAL")
        db.start()
        try:
            await asyncio.gather(*(db.write(_insert(v)) for v in range(start, start + count)))
        finally:
            db.close()

    asyncio.run(run())


def test_writers_in_several_processes_take_turns_without_losing_a_write(tmp_path: Path):
    path = tmp_path / "x.db"
    _create(path)
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA journal_mode = WAL")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer_process, args=(str(path), i * 1000, 400)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert _values(path) == sorted(v for i in range(3) for v in range(i * 1000, i * 1000 + 400))
    assert (tmp_path / "x.db.writelock").exists()
