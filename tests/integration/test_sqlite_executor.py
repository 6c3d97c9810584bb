"""The SQLite executor's group commit: one failing job rolls back only itself, and writers in
several processes take turns through the write lock without losing a write."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookpost.domain.errors import StoreUnavailable
from hookpost.store.sqlite.executor import (
    GIL_SWITCH_S,
    MAX_GROUP,
    Shared,
    SqliteExecutor,
    tune_process,
)
from tests.support.polling import eventually


def _insert(value: int):
    def job(c: sqlite3.Connection) -> int:
        c.execute("INSERT INTO t (v) VALUES (?)", (value,))
        if value < 0:
            raise ValueError(f"refused {value}")
        return value

    return job


def _taken(db: SqliteExecutor):
    """True once the writer thread has taken every write handed over so far."""

    async def probe() -> bool:
        return not db._pending and db._jobs.qsize() == 0

    return probe


class _GroupRecorder(SqliteExecutor):
    """Records the size of every group the writer commits."""

    def __init__(self, path: str) -> None:
        super().__init__(path, synchronous="FULL")
        self.groups: list[int] = []

    def _transaction(self, conn, batch):  # type: ignore[no-untyped-def]
        self.groups.append(len(batch))
        return super()._transaction(conn, batch)


def _values(path: Path) -> list[int]:
    with sqlite3.connect(path) as c:
        return sorted(v for (v,) in c.execute("SELECT v FROM t"))


def _create(path: Path) -> None:
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (v INTEGER NOT NULL)")


def _started(tmp_path: Path) -> tuple[Path, SqliteExecutor]:
    """A database with table ``t`` and a started executor on it."""
    path = tmp_path / "x.db"
    _create(path)
    db = SqliteExecutor(str(path), synchronous="FULL")
    db.start()
    return path, db


async def test_a_failing_job_rolls_back_alone_within_its_group(tmp_path: Path):
    path, db = _started(tmp_path)
    lock = os.open(f"{path}.writelock", os.O_RDWR)
    try:
        # Hold the write lock until the writer has taken all five (written in one loop
        # turn, they are handed over together): then they share one transaction.
        fcntl.flock(lock, fcntl.LOCK_EX)
        writes = asyncio.gather(
            *(db.write(_insert(v)) for v in (1, 2, -3, 4, 5)), return_exceptions=True
        )
        await eventually(_taken(db), lambda taken: taken)
        fcntl.flock(lock, fcntl.LOCK_UN)
        results = await writes
    finally:
        os.close(lock)
        db.close()
    assert results[:2] == [1, 2] and results[3:] == [4, 5]
    assert isinstance(results[2], ValueError)
    assert _values(path) == [1, 2, 4, 5]  # the failed job's own insert is gone


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[_GroupRecorder]:
    _create(tmp_path / "x.db")
    db = _GroupRecorder(str(tmp_path / "x.db"))
    db.start()
    try:
        yield db
    finally:
        db.close()


async def test_the_writes_of_one_loop_turn_share_one_transaction(recorder: _GroupRecorder):
    # Handed to the writer thread one by one, the first would start a group of its own
    # while the others were still being queued: one commit (an fsync) more per turn.
    for _ in range(3):
        recorder.groups.clear()
        results = await asyncio.gather(*(recorder.write(_insert(v)) for v in range(200)))
        assert results == list(range(200))
        assert recorder.groups == [200]


async def test_writes_past_a_full_group_go_into_the_next_one(
    recorder: _GroupRecorder, tmp_path: Path
):
    count = MAX_GROUP + 10
    results = await asyncio.gather(*(recorder.write(_insert(v)) for v in range(count)))
    assert results == list(range(count))
    assert recorder.groups == [MAX_GROUP, 10]
    assert _values(tmp_path / "x.db") == list(range(count))


class _InsertMany:
    """A :class:`Shared` kind of write that records the items of every call it gets."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.kind = Shared(self._run_many)

    def _run_many(self, c: sqlite3.Connection, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        c.execute(
            f"INSERT INTO t (v) VALUES {', '.join('(?)' for _ in items)}", items
        )  # one statement for all: a refused item fails them all, as a real one would
        if any(v < 0 for v in items):
            raise ValueError(f"refused {min(items)}")
        return [v * 10 for v in items]


async def test_shared_writes_of_a_group_run_as_one_call_between_the_others(
    recorder: _GroupRecorder, tmp_path: Path
):
    many = _InsertMany()
    writes = [recorder.write(_insert(1))]
    writes += [recorder.write_shared(many.kind, v) for v in (2, 3, 4)]
    writes += [recorder.write(_insert(5)), recorder.write_shared(many.kind, 6)]
    assert await asyncio.gather(*writes) == [1, 20, 30, 40, 5, 60]
    assert recorder.groups == [6]
    assert many.calls == [[2, 3, 4, 6]]
    assert _values(tmp_path / "x.db") == [1, 2, 3, 4, 5, 6]


async def test_a_failing_shared_item_fails_alone(recorder: _GroupRecorder, tmp_path: Path):
    many = _InsertMany()
    writes = [recorder.write_shared(many.kind, v) for v in (1, -2, 3)]
    writes.append(recorder.write(_insert(4)))
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results[0] == 10 and results[2:] == [30, 4]
    assert isinstance(results[1], ValueError) and "refused -2" in str(results[1])
    # Once together (rolled back), then each item alone, each in its own savepoint.
    assert many.calls == [[1, -2, 3], [1], [-2], [3]]
    assert _values(tmp_path / "x.db") == [1, 3, 4]


async def test_closing_runs_the_writes_of_an_unfinished_loop_turn(tmp_path: Path):
    path, db = _started(tmp_path)
    tasks = [asyncio.ensure_future(db.write(_insert(v))) for v in (1, 2)]
    await asyncio.sleep(0)  # both have queued their write, not yet handed over
    assert db._pending
    db.close()  # hands them over before it stops the writer
    assert await asyncio.gather(*tasks) == [1, 2]
    assert _values(path) == [1, 2]


async def test_a_lone_failing_job_leaves_nothing(tmp_path: Path):
    path, db = _started(tmp_path)
    try:
        with pytest.raises(ValueError):
            await db.write(_insert(-1))
        assert await db.write(_insert(7)) == 7
    finally:
        db.close()
    assert _values(path) == [7]


def test_tune_process_lowers_the_gil_switch_interval_but_never_raises_it():
    # The writer holds the cross-process lock while it waits to get the GIL back.
    before = sys.getswitchinterval()
    try:
        for start_at, expected in ((0.005, GIL_SWITCH_S), (0.0001, 0.0001)):
            sys.setswitchinterval(start_at)
            tune_process()
            assert sys.getswitchinterval() == pytest.approx(expected)
    finally:
        sys.setswitchinterval(before)


@pytest.mark.parametrize("start_at", [0.005, 0.0001])
def test_starting_leaves_the_gil_switch_interval_alone(tmp_path: Path, start_at: float):
    # Process-wide state belongs to the program embedding hookpost (the CLI calls tune_process).
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(start_at)
        db = SqliteExecutor(str(tmp_path / "s.db"))
        db.start()
        db.close()
        assert sys.getswitchinterval() == pytest.approx(start_at)
    finally:
        sys.setswitchinterval(before)


def _raises_stop_iteration(c: sqlite3.Connection) -> int:
    raise StopIteration  # a future cannot hold it


async def test_a_job_raising_stop_iteration_does_not_strand_the_rest_of_its_group(
    recorder: _GroupRecorder,
):
    both = asyncio.gather(
        recorder.write(_raises_stop_iteration), recorder.write(_insert(1)), return_exceptions=True
    )
    results = await asyncio.wait_for(both, 10)  # before: both stayed pending for ever
    assert recorder.groups[-1] == 2  # one turn, one group
    assert isinstance(results[0], RuntimeError) and "StopIteration" in str(results[0])
    assert results[1] == 1


def test_results_for_a_closed_loop_do_not_stop_the_writer(tmp_path: Path):
    # A loop that wrote and then closed before its result came back: the writer must go on
    # serving the others (it used to die on "Event loop is closed").
    path, db = _started(tmp_path)
    try:
        gone = asyncio.new_event_loop()
        fut = gone.create_future()
        lock = os.open(f"{path}.writelock", os.O_RDWR)
        fcntl.flock(lock, fcntl.LOCK_EX)  # its job waits until the loop is closed
        db._jobs.put([(_insert(1), (), fut, gone)])
        gone.close()
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
        assert asyncio.run(asyncio.wait_for(db.write(_insert(2)), 10)) == 2
    finally:
        db.close()
    assert _values(path) == [1, 2]


async def test_a_write_after_close_is_refused_not_left_waiting(tmp_path: Path):
    path = tmp_path / "x.db"
    _create(path)
    db = SqliteExecutor(str(path), synchronous="FULL")
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(db.write(_insert(1)), timeout=5)  # not started yet
    db.start()
    assert await db.write(_insert(2)) == 2
    db.close()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(db.write(_insert(3)), timeout=5)
    assert _values(path) == [2]


def _too_many_variables(c: sqlite3.Connection) -> None:
    c.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 3)
    c.execute("SELECT ?, ?, ?, ?", (1, 2, 3, 4))


def _cannot_open(c: sqlite3.Connection) -> None:
    sqlite3.connect("/nonexistent-dir/hookpost.db")


async def test_only_transient_sqlite_errors_say_the_store_is_unavailable(tmp_path: Path):
    # A statement SQLite refuses is a bug (a 500), not an outage the client should retry.
    _, db = _started(tmp_path)
    try:
        for run in (db.read, db.write):
            with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):
                await run(_too_many_variables)
            with pytest.raises(StoreUnavailable, match="unable to open"):
                await run(_cannot_open)
        # In a group, each job's error is its own.
        results = await asyncio.gather(
            db.write(_too_many_variables),
            db.write(_cannot_open),
            db.write(_insert(7)),
            return_exceptions=True,
        )
        assert [type(r) for r in results] == [sqlite3.OperationalError, StoreUnavailable, int]
    finally:
        db.close()
