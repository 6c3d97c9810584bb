"""The SQLite executor's group commit: one failing job rolls back only itself, and writers in
several processes take turns through the write lock without losing a write."""

from __future__ import annotations

import asyncio
import fcntl
import multiprocessing
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from hookpost.store.sqlite.executor import GIL_SWITCH_S, SqliteExecutor
from tests.support.polling import eventually


def _insert(value: int):
    def job(c: sqlite3.Connection) -> int:
        c.execute("INSERT INTO t (v) VALUES (?)", (value,))
        if value < 0:
            raise ValueError(f"refused {value}")
        return value

    return job


def _queued(db: SqliteExecutor):
    async def probe() -> int:
        return db._jobs.qsize()

    return probe


def _values(path: Path) -> list[int]:
    with sqlite3.connect(path) as c:
        return sorted(v for (v,) in c.execute("SELECT v FROM t"))


def _create(path: Path) -> None:
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (v INTEGER NOT NULL)")


async def test_a_failing_job_rolls_back_alone_within_its_group(tmp_path: Path):
    path = tmp_path / "x.db"
    _create(path)
    db = SqliteExecutor(str(path), synchronous="FULL")
    db.start()
    lock = os.open(f"{path}.writelock", os.O_RDWR)
    try:
        # Hold the write lock until all five are queued: then they share one transaction.
        fcntl.flock(lock, fcntl.LOCK_EX)
        writes = asyncio.gather(
            *(db.write(_insert(v)) for v in (1, 2, -3, 4, 5)), return_exceptions=True
        )
        await eventually(_queued(db), lambda n: n == 4)  # the writer holds the first one
        fcntl.flock(lock, fcntl.LOCK_UN)
        results = await writes
    finally:
        os.close(lock)
        db.close()
    assert results[:2] == [1, 2] and results[3:] == [4, 5]
    assert isinstance(results[2], ValueError)
    assert _values(path) == [1, 2, 4, 5]  # the failed job's own insert is gone


async def test_a_lone_failing_job_leaves_nothing(tmp_path: Path):
    path = tmp_path / "x.db"
    _create(path)
    db = SqliteExecutor(str(path), synchronous="FULL")
    db.start()
    try:
        with pytest.raises(ValueError):
            await db.write(_insert(-1))
        assert await db.write(_insert(7)) == 7
    finally:
        db.close()
    assert _values(path) == [7]


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


def test_starting_lowers_the_gil_switch_interval_but_never_raises_it(tmp_path: Path):
    # The writer holds the cross-process lock while it waits to get the GIL back.
    before = sys.getswitchinterval()
    try:
        for start_at, expected in ((0.005, GIL_SWITCH_S), (0.0001, 0.0001)):
            sys.setswitchinterval(start_at)
            db = SqliteExecutor(str(tmp_path / f"s{start_at}.db"))
            db.start()
            db.close()
            assert sys.getswitchinterval() == pytest.approx(expected)
    finally:
        sys.setswitchinterval(before)
