"""SQLite's Stats: the hourly rollups (domain.stats), filled an hour per write job.

The pass reads an hour's attempts and cancellations on a read connection and writes the rollup
rows with the progress mark in one write job that first checks the mark is still that hour:
writers of every process take turns (decision 0002), so an hour is written once however many
workers run the pass, and the write lock is held only for the inserts. A dirty (application,
hour) is rolled up again the same way, its write checking that the mark is as read
(docs/decisions/0033-stats.md).
"""

from __future__ import annotations

from typing import Any

from hookpost.domain import ids
from hookpost.domain.stats import (
    HOUR_MS,
    Canceled,
    Cell,
    Marginals,
    Rollup,
    Scope,
    closed_until,
    first_hour,
    fold,
)
from hookpost.store.sqlite.core import Conn, SqliteBase, snapshot
from hookpost.store.stats_sql import (
    APP_LATENCY,
    BY_ENDPOINT,
    BY_HOUR,
    BY_TYPE,
    CANCELED_CELLS,
    CELLS_GROUP,
    DIRTY_NEXT,
    LATENCY,
    REASONS,
    TYPES_WITH_CANCELED,
    cells_select,
)

# domain.retry.error_class: the text before the first ':', stripped, at most 60 characters.
_WS = "' ' || char(9, 10, 11, 12, 13)"
_ERROR_CLASS = (
    "COALESCE(NULLIF(substr(trim(CASE WHEN instr(a.error, ':') > 0"
    " THEN substr(a.error, 1, instr(a.error, ':') - 1) ELSE a.error END, "
    f"{_WS}), 1, 60), ''), 'error')"
)
CELLS = cells_select(_ERROR_CLASS) + " WHERE a.id >= ? AND a.id < ?"
CANCELS = CANCELED_CELLS + " WHERE canceled_at >= ? AND canceled_at < ?"
STATE = "SELECT rolled_until FROM stats_rollup_state WHERE id = 1"
FIRST_ATTEMPT = "SELECT min(id) FROM attempts WHERE id >= ?"
FIRST_CANCEL = "SELECT min(canceled_at) FROM stats_cancellations WHERE canceled_at >= ?"
PUT_CANCELED = (
    "INSERT INTO stats_canceled (hour, app_id, endpoint_id, event_type, deliveries)"
    " VALUES (?, ?, ?, ?, ?)"
)
# Rolling an (application, hour) up again: its rows go, the new ones come, the mark goes if it
# is still the one read.
_ROLLUPS = (
    "stats_hourly",
    "stats_latency",
    "stats_latency_app",
    "stats_failures",
    "stats_canceled",
)
DROP_HOUR = [f"DELETE FROM {t} WHERE app_id = ? AND hour = ?" for t in _ROLLUPS]
DIRTY_GEN = "SELECT gen FROM stats_dirty WHERE app_id = ? AND hour = ?"
DIRTY_DONE = "DELETE FROM stats_dirty WHERE app_id = ? AND hour = ? AND gen = ?"
INIT = "INSERT OR IGNORE INTO stats_rollup_state (id, rolled_until) VALUES (1, ?)"
MARK = "UPDATE stats_rollup_state SET rolled_until = ? WHERE id = 1"
PUT_COUNTS = (
    "INSERT INTO stats_hourly (hour, app_id, endpoint_id, event_type, succeeded, failed)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
PUT_LATENCY = (
    "INSERT INTO stats_latency (hour, app_id, endpoint_id, bucket, attempts) VALUES (?, ?, ?, ?, ?)"
)
PUT_APP_LATENCY = (
    "INSERT INTO stats_latency_app (hour, app_id, bucket, attempts) VALUES (?, ?, ?, ?)"
)
PUT_FAILURES = (
    "INSERT INTO stats_failures (hour, app_id, endpoint_id, reason, attempts)"
    " VALUES (?, ?, ?, ?, ?)"
)
_APP_ENDPOINTS = "SELECT id FROM endpoints WHERE app_id = ?"
# The queue's indexes (ix_deliveries_endpoint_due, ix_deliveries_parked): what is live, not
# every delivery of the range.
LIVE = (
    "SELECT d.status, count(*) FROM deliveries d INDEXED BY ix_deliveries_endpoint_due"
    " WHERE d.endpoint_id IN ({endpoints}) AND d.due_at IS NOT NULL"
    " AND d.message_id >= ? AND d.message_id < ? GROUP BY d.status"
)
PARKED = (
    "SELECT count(*) FROM deliveries d INDEXED BY ix_deliveries_parked"
    " WHERE d.endpoint_id IN ({endpoints}) AND d.status = 0 AND d.due_at IS NULL"
    " AND d.message_id >= ? AND d.message_id < ?"
)


def _scoped(scope: Scope) -> tuple[str, list[Any]]:
    if scope.endpoint_id is None:
        return " WHERE app_id = ?", [scope.app_id]
    return " WHERE endpoint_id = ? AND app_id = ?", [scope.endpoint_id, scope.app_id]


def _endpoints(scope: Scope) -> tuple[str, list[Any]]:
    if scope.endpoint_id is None:
        return _APP_ENDPOINTS, [scope.app_id]
    return "?", [scope.endpoint_id]


def _msg_bounds(since_ms: int, until_ms: int) -> list[str]:
    return [ids.id_floor(ids.MESSAGE, since_ms), ids.id_floor(ids.MESSAGE, until_ms)]


def _attempt_bounds(since_ms: int, until_ms: int) -> list[str]:
    return [ids.id_floor(ids.ATTEMPT, since_ms), ids.id_floor(ids.ATTEMPT, until_ms)]


def _put(conn: Conn, rollup: Rollup) -> None:
    conn.executemany(PUT_COUNTS, rollup.count_rows())
    conn.executemany(PUT_LATENCY, rollup.latency_rows())
    conn.executemany(PUT_APP_LATENCY, rollup.app_latency_rows())
    conn.executemany(PUT_FAILURES, rollup.failure_rows())
    conn.executemany(PUT_CANCELED, rollup.canceled_rows())


def _write_hour(conn: Conn, hour: int, mark: int, rollup: Rollup) -> bool:
    row = conn.execute(STATE).fetchone()
    if row is None or row[0] != hour:
        return False  # another process's pass wrote it
    _put(conn, rollup)
    conn.execute(MARK, (mark,))
    return True


def _rewrite_hour(conn: Conn, app_id: str, hour: int, gen: int, rollup: Rollup | None) -> bool:
    """Replace the (application, hour)'s rows by ``rollup`` (None: not rolled up yet, the
    mark only goes) if the dirty mark is still ``gen``: else another late write came (it is
    rolled up again next time) or another process did it."""
    row = conn.execute(DIRTY_GEN, (app_id, hour)).fetchone()
    if row is None or row[0] != gen:
        return False
    if rollup is not None:
        for statement in DROP_HOUR:
            conn.execute(statement, (app_id, hour))
        _put(conn, rollup)
    conn.execute(DIRTY_DONE, (app_id, hour, gen))
    return True


def _init(conn: Conn, start: int) -> int:
    conn.execute(INIT, (start,))
    return int(conn.execute(STATE).fetchone()[0])


class SqliteStats(SqliteBase):
    async def rolled_until(self) -> int:
        row = await self._db.read(lambda c: c.execute(STATE).fetchone())
        return 0 if row is None else int(row[0])

    def _first_hour_from(self, conn: Conn, ms: int) -> int | None:
        """The first hour from ``ms`` on with an attempt or a cancellation."""
        first = conn.execute(FIRST_ATTEMPT, (ids.id_floor(ids.ATTEMPT, ms),)).fetchone()[0]
        cancel = conn.execute(FIRST_CANCEL, (ms,)).fetchone()[0]
        return first_hour(None if first is None else ids.id_time_ms(first), cancel)

    async def roll_up_next(self, now_ms: int) -> int | None:
        end = closed_until(now_ms)
        hour = await self.rolled_until()
        if hour == 0:  # the first pass starts at the oldest attempt
            first = await self._db.read(self._first_hour_from, 0)
            hour = await self._db.write(_init, end if first is None else min(first, end))
        if hour >= end:
            return None

        def read(conn: Conn) -> tuple[Rollup, int | None]:
            with snapshot(conn):
                rollup = _hour_rollup(conn, hour, None)
                later = None if rollup else self._first_hour_from(conn, hour + HOUR_MS)
            return rollup, later

        rollup, later = await self._db.read(read)
        # An hour without attempts: on to the next one that has some (or to the end).
        mark = hour + HOUR_MS
        if not rollup:
            mark = max(mark, min(end, end if later is None else later))
        written = await self._db.write(_write_hour, hour, mark, rollup)
        return mark if written else None

    async def reroll_next(self) -> tuple[str, int] | None:
        def read(conn: Conn) -> tuple[str, int, int, Rollup | None] | None:
            with snapshot(conn):
                dirty = conn.execute(DIRTY_NEXT).fetchone()
                if dirty is None:
                    return None
                app_id, hour, gen = dirty
                state = conn.execute(STATE).fetchone()
                if state is None or hour >= state[0]:  # the pass has not come to it yet
                    return app_id, hour, gen, None
                return app_id, hour, gen, _hour_rollup(conn, hour, app_id)

        found = await self._db.read(read)
        if found is None:
            return None
        app_id, hour, gen, rollup = found
        await self._db.write(_rewrite_hour, app_id, hour, gen, rollup)
        return app_id, hour

    async def stats_rollups(self, scope: Scope, from_hour: int, to_hour: int) -> Marginals:
        where, params = _scoped(scope)
        where += " AND hour >= ? AND hour < ?"
        params += [from_hour, to_hour]

        queries = _APP_MARGINALS if scope.endpoint_id is None else _MARGINALS

        def run(c: Conn) -> Marginals:
            with snapshot(c):
                q = [c.execute(s.format(where=where), params).fetchall() for s in queries]
            return Marginals(*q)

        return await self._db.read(run)

    async def stats_cells(self, scope: Scope, since_ms: int, until_ms: int) -> list[Cell]:
        query, params = CELLS, _attempt_bounds(since_ms, until_ms)
        if scope.endpoint_id is None:
            query += " AND a.app_id = ?"
            params.append(scope.app_id)
        else:
            query += " AND a.endpoint_id = ? AND a.app_id = ?"
            params += [scope.endpoint_id, scope.app_id]
        query += CELLS_GROUP
        rows = await self._db.read(lambda c: c.execute(query, params).fetchall())
        return [Cell(*r) for r in rows]

    async def stats_live(self, scope: Scope, since_ms: int, until_ms: int) -> tuple[int, int]:
        endpoints, params = _endpoints(scope)
        params += _msg_bounds(since_ms, until_ms)

        def run(c: Conn) -> tuple[int, int]:
            with snapshot(c):
                live = dict(c.execute(LIVE.format(endpoints=endpoints), params).fetchall())
                parked = c.execute(PARKED.format(endpoints=endpoints), params).fetchone()[0]
            return live.get(0, 0) + parked, live.get(1, 0)

        return await self._db.read(run)

    async def stats_canceled(self, scope: Scope, since_ms: int, until_ms: int) -> list[Canceled]:
        query = CANCELS + " AND app_id = ?"
        params: list[Any] = [since_ms, until_ms, scope.app_id]
        if scope.endpoint_id is not None:
            query += " AND endpoint_id = ?"
            params.append(scope.endpoint_id)
        query += " GROUP BY 1, 2, 3, 4"
        rows = await self._db.read(lambda c: c.execute(query, params).fetchall())
        return [Canceled(*r) for r in rows]

    async def stats_types(
        self, scope: Scope, from_hour: int, to_hour: int
    ) -> list[tuple[str, int, int, int]]:
        where, params = _scoped(scope)
        where += " AND hour >= ? AND hour < ?"
        query = TYPES_WITH_CANCELED.format(where=where)
        params = [*params, from_hour, to_hour, *params, from_hour, to_hour]
        rows = await self._db.read(lambda c: c.execute(query, params).fetchall())
        return [(r[0], r[1], r[2], r[3]) for r in rows]


def _hour_rollup(conn: Conn, hour: int, app_id: str | None) -> Rollup:
    """An hour's attempts and cancellations (of one application, or of all) as rollup rows."""
    cells, cancels = CELLS, CANCELS
    params: list[Any] = _attempt_bounds(hour, hour + HOUR_MS)
    bounds: list[Any] = [hour, hour + HOUR_MS]
    if app_id is not None:
        cells += " AND a.app_id = ?"
        cancels += " AND app_id = ?"
        params.append(app_id)
        bounds.append(app_id)
    rollup = fold(Cell(*r) for r in conn.execute(cells + CELLS_GROUP, params))
    return rollup.add_canceled(
        Canceled(*r) for r in conn.execute(cancels + " GROUP BY 1, 2, 3, 4", bounds)
    )


_MARGINALS = (BY_TYPE, BY_HOUR, BY_ENDPOINT, LATENCY, REASONS)
_APP_MARGINALS = (BY_TYPE, BY_HOUR, BY_ENDPOINT, APP_LATENCY, REASONS)
