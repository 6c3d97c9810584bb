"""Running SQLite work off the event loop.

One writer thread owns the only write connection. It takes whatever write jobs are queued and
runs them in ONE transaction (group commit). The event loop hands its writes over once per loop
turn, all of the turn's at once, and is woken once per group for the results: handed over one
by one, the first write of a burst woke the writer, which committed it nearly alone while the
turn's other writes were still being queued, and every commit is an fsync that holds the write
lock (see docs/decisions/0016-sqlite-group-commit-per-loop-turn.md).

A write may also be *shared* (:meth:`SqliteExecutor.write_shared`): the group's writes of one
kind then run as ONE call over all their items, e.g. every message of the group inserted by one
multi-row statement instead of one statement each (each statement is a GIL hand-off made with
the write lock held; see below).

A job's error must roll back only that job, yet a savepoint per job costs two statements each:
so a group first runs without savepoints, and only if a job fails is it rolled back and run
again with one savepoint per job. A job may therefore run twice: it must be a plain function
of the connection, with no effects outside it.

Reads run on a small pool of read-only connections, which WAL lets proceed while the writer
commits. Every job is a plain function of a connection, so a whole store operation costs one
hop between threads, not one per statement.

Processes sharing the file (``hookpost serve``'s API and its worker child) take turns through
an ``flock`` on ``<db>.writelock`` around each transaction. SQLite's own busy handler would do
it too, but it polls with sleeps of 1, 2, 5, 10... ms, while a blocked ``flock`` wakes the
moment the lock is free, and the jobs queued meanwhile join the next group (see
docs/decisions/0002-sqlite-writers-take-turns-through-flock.md).

The writer thread holds that lock for its whole transaction, and every ``sqlite3`` call inside
it lets go of the GIL: taking it back from a busy event-loop thread waits up to the
interpreter's switch interval (5 ms by default), all of it with the other process locked out.
So :func:`tune_process` lowers the switch interval to ``GIL_SWITCH_S`` (see
docs/decisions/0009-sqlite-lowers-the-gil-switch-interval.md). It is process-wide state: the
``hookpost`` CLI's processes call it; a program embedding hookpost decides for itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from hookpost.domain.errors import StoreUnavailable
from hookpost.store.sqlite.errors import is_transient, translate

T = TypeVar("T")
Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any], asyncio.AbstractEventLoop]
Outcome = tuple[Any, BaseException | None]


@dataclass(frozen=True)
class Shared:
    """A kind of write whose items a group runs in one call: ``run_many(conn, items)`` returns
    one result per item, in order, or raises if any item fails (the group is then run again
    with each item alone, ``run_many(conn, [item])``, so that the error is that item's alone).
    """

    run_many: Callable[[sqlite3.Connection, list[Any]], list[Any]]

    def __call__(self, conn: sqlite3.Connection, item: Any) -> Any:
        """The write of one item alone."""
        (result,) = self.run_many(conn, [item])
        return result


MAX_GROUP = 256  # jobs per transaction; bounds the latency one commit adds
GIL_SWITCH_S = 0.0005  # see the module docstring


def tune_process() -> None:
    """Lower this process's GIL switch interval to ``GIL_SWITCH_S`` (never raise it): for the
    ``hookpost`` CLI's processes only, which own their interpreter (see the module docstring)."""
    if sys.getswitchinterval() > GIL_SWITCH_S:
        sys.setswitchinterval(GIL_SWITCH_S)


def create_private(path: str) -> None:
    """Create the database file readable by its owner only, if it does not exist yet. SQLite
    gives the ``-wal`` and ``-shm`` files the database file's permissions."""
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def connect(path: str, *, synchronous: str, readonly: bool = False) -> sqlite3.Connection:
    if not readonly:
        create_private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    return conn


def _open_write_lock(path: str) -> int | None:
    if path in ("", ":memory:") or path.startswith("file:"):
        return None  # not shared between processes
    return os.open(f"{path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)


@contextlib.contextmanager
def _exclusive(fd: int | None) -> Iterator[None]:
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _resolve_many(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, result, error in results:
        if fut.cancelled():
            continue
        if error is None:
            fut.set_result(result)
            continue
        try:
            fut.set_exception(error)
        except TypeError:  # StopIteration cannot be set: answer anyway, or the rest would hang
            fut.set_exception(RuntimeError(f"write job raised {error!r}"))


class SqliteExecutor:
    def __init__(self, path: str, *, synchronous: str = "NORMAL", readers: int = 2) -> None:
        self._path = path
        self._synchronous = synchronous
        self._jobs: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._pending: dict[asyncio.AbstractEventLoop, list[Job]] = {}  # this loop turn's writes
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="hookpost-sqlite-read")
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._open = False  # writes are refused before start() and from close() on

    def start(self) -> None:
        self._lock_fd = _open_write_lock(self._path)
        conn = connect(self._path, synchronous=self._synchronous)
        conn.execute("PRAGMA journal_mode = WAL")
        self._writer = threading.Thread(
            target=self._write_loop, args=(conn,), name="hookpost-sqlite-write", daemon=True
        )
        self._writer.start()
        self._open = True

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._open:  # no writer would ever answer it
            raise StoreUnavailable("sqlite: the store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            # The first write of this loop turn: hand the turn's writes over in one piece
            # once the turn is done (see the module docstring, "group commit").
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append((fn, args, fut, loop))
        return await fut

    async def write_shared(self, kind: Shared, item: Any) -> Any:
        """Like :meth:`write` of ``kind(conn, item)``, but run in one call with the same
        group's other items of that ``kind`` (see :class:`Shared`)."""
        return await self.write(kind, item)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs = self._pending.pop(loop, None)
        if jobs:  # close() may have handed them over already
            self._jobs.put(jobs)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, fn, args)

    def _run_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, synchronous=self._synchronous, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._read_conns.append(conn)
        try:
            return fn(conn, *args)
        except sqlite3.Error as exc:
            if is_transient(exc):
                raise StoreUnavailable(f"sqlite: {exc}") from exc
            raise

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        carried: list[Job] = []  # jobs past the last group's MAX_GROUP
        while True:
            jobs = carried or self._jobs.get()
            if jobs is None:
                break
            # Gather the group once the lock is ours: what arrived while waiting joins it.
            with _exclusive(self._lock_fd):
                batch = self._more_jobs(jobs)
                batch, carried = batch[:MAX_GROUP], batch[MAX_GROUP:]
                outcomes = self._transaction(conn, batch)
            self._resolve_all(batch, outcomes)
        conn.close()

    def _more_jobs(self, jobs: list[Job]) -> list[Job]:
        """``jobs`` and whatever else is queued, until the group holds MAX_GROUP jobs."""
        more = list(jobs)
        while len(more) < MAX_GROUP:
            try:
                nxt = self._jobs.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._jobs.put(None)  # finish this group, then stop
                break
            more.extend(nxt)
        return more

    def _resolve_all(self, batch: list[Job], outcomes: list[Outcome]) -> None:
        """One wake-up per event loop, not one per job."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, ...]]] = {}
        for (_fn, _args, fut, loop), (result, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((fut, result, error))
        for loop, results in by_loop.items():
            # A loop closed since it wrote has nobody left to answer; the other loops still do.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve_many, results)

    def _transaction(self, conn: sqlite3.Connection, batch: list[Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = self._run_group(conn, batch)
            except Exception as exc:
                conn.execute("ROLLBACK")
                if len(batch) == 1:
                    return [(None, translate(exc))]
                conn.execute("BEGIN IMMEDIATE")
                outcomes = [self._in_savepoint(conn, fn, args) for fn, args, _f, _l in batch]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(None, translate(exc))] * len(batch)
        return outcomes

    @staticmethod
    def _run_group(conn: sqlite3.Connection, batch: list[Job]) -> list[Outcome]:
        """Every job of ``batch``, a :class:`Shared` kind's items in one call where its first
        item stands (the group's jobs are concurrent: no order among them is promised)."""
        outcomes: list[Outcome] = [(None, None)] * len(batch)
        units: list[tuple[Callable[..., Any], list[int]]] = []
        shared: dict[Shared, list[int]] = {}
        for i, (fn, _args, _fut, _loop) in enumerate(batch):
            if isinstance(fn, Shared):
                members = shared.get(fn)
                if members is None:
                    members = shared[fn] = []
                    units.append((fn, members))
                members.append(i)
            else:
                units.append((fn, [i]))
        for fn, members in units:
            if len(members) == 1:
                i = members[0]
                outcomes[i] = (fn(conn, *batch[i][1]), None)
                continue
            items = [batch[i][1][0] for i in members]
            results = cast(Shared, fn).run_many(conn, items)
            for i, result in zip(members, results, strict=True):
                outcomes[i] = (result, None)
        return outcomes

    @staticmethod
    def _in_savepoint(
        conn: sqlite3.Connection, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> Outcome:
        conn.execute("SAVEPOINT job")
        try:
            result = fn(conn, *args)
        except Exception as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            return None, translate(exc)
        conn.execute("RELEASE job")
        return result, None

    def close(self) -> None:
        self._open = False
        if self._writer is not None:
            for loop in list(self._pending):
                self._hand_over(loop)  # writes of an unfinished loop turn still run
            self._jobs.put(None)
            self._writer.join(timeout=30)
            self._writer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
