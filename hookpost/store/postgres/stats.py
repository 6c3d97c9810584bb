"""PostgreSQL's Stats: the hourly rollups (domain.stats), filled an hour per transaction.

One pass at a time across every process: each hour's transaction first tries a transaction
advisory lock (never waited for) and re-reads the progress mark under it, so an hour is written
once however many workers run the pass. A dirty (application, hour) is rolled up again under the
same lock (docs/decisions/0033-stats.md).
"""

from __future__ import annotations

from typing import Any

import asyncpg

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
from hookpost.store.postgres.core import PostgresBase
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.stats_sql import (
    APP_LATENCY,
    CANCELED_CELLS,
    CELLS_GROUP,
    DIRTY_NEXT,
    LATENCY,
    REASONS,
    SUMS,
    TYPES_WITH_CANCELED,
    cells_select,
)

ROLLUP_LOCK_KEY = 0x686F6F6B_737473  # "hook" "sts"
TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"
# domain.retry.error_class: the text before the first ':', stripped, at most 60 characters.
_ERROR_CLASS = (
    "COALESCE(NULLIF(left(btrim(split_part(a.error, ':', 1), E' \\t\\n\\r\\x0b\\x0c'), 60),"
    " ''), 'error')"
)
CELLS = cells_select(_ERROR_CLASS) + " WHERE a.id >= $1 AND a.id < $2"
CANCELS = CANCELED_CELLS + " WHERE canceled_at >= $1 AND canceled_at < $2"
STATE = "SELECT rolled_until FROM stats_rollup_state WHERE id = 1"
# The raw reads' ranges run from minutes (the open tail) to a whole report (nothing rolled up
# yet). After a long one PostgreSQL's plan cache may keep a generic plan that scans the
# messages whole for every later short one (measured: 75 ms a raw part instead of 2-6 ms at
# 1 M attempts), so these statements are always planned for their own bounds.
CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"
FIRST_ATTEMPT = "SELECT min(id) FROM attempts WHERE id >= $1"
FIRST_CANCEL = "SELECT min(canceled_at) FROM stats_cancellations WHERE canceled_at >= $1"
PUT_CANCELED = (
    "INSERT INTO stats_canceled (hour, app_id, endpoint_id, event_type, deliveries)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
)
_ROLLUPS = (
    "stats_hourly",
    "stats_latency",
    "stats_latency_app",
    "stats_failures",
    "stats_canceled",
)
DROP_HOUR = [f"DELETE FROM {t} WHERE app_id = $1 AND hour = $2" for t in _ROLLUPS]
DIRTY_DONE = "DELETE FROM stats_dirty WHERE app_id = $1 AND hour = $2 AND gen = $3"
INIT = "INSERT INTO stats_rollup_state (id, rolled_until) VALUES (1, $1) ON CONFLICT DO NOTHING"
MARK = "UPDATE stats_rollup_state SET rolled_until = $1 WHERE id = 1"
PUT_COUNTS = (
    "INSERT INTO stats_hourly (hour, app_id, endpoint_id, event_type, succeeded, failed)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
    " $6::bigint[])"
)
PUT_LATENCY = (
    "INSERT INTO stats_latency (hour, app_id, endpoint_id, bucket, attempts)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::bigint[])"
)
PUT_APP_LATENCY = (
    "INSERT INTO stats_latency_app (hour, app_id, bucket, attempts)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::bigint[])"
)
PUT_FAILURES = (
    "INSERT INTO stats_failures (hour, app_id, endpoint_id, reason, attempts)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
)
# The three breakdowns of stats_hourly in one scan; GROUPING() tells them apart (a bit set for
# each column not grouped by): 3 by event type, 5 by hour, 6 by endpoint.
BREAKDOWNS = (
    f"SELECT GROUPING(event_type, hour, endpoint_id), event_type, hour, endpoint_id, {SUMS}"
    " FROM stats_hourly{where} GROUP BY GROUPING SETS ((event_type), (hour), (endpoint_id))"
)
_APP_ENDPOINTS = "SELECT id FROM endpoints WHERE app_id = $1"
# The queue's partial indexes (ix_deliveries_endpoint_due, ix_deliveries_parked) hold what is
# live: pending with a due time or sending, and parked.
LIVE = (
    "SELECT d.status, count(*) FROM deliveries d WHERE d.endpoint_id IN ({endpoints})"
    " AND d.due_at IS NOT NULL AND d.message_id >= $2 AND d.message_id < $3 GROUP BY d.status"
    " UNION ALL SELECT 5, count(*) FROM deliveries d WHERE d.endpoint_id IN ({endpoints})"
    " AND d.status = 0 AND d.due_at IS NULL AND d.message_id >= $2 AND d.message_id < $3"
)


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[r[i] for r in rows] for i in range(width)]


def _endpoints(scope: Scope) -> tuple[str, Any]:
    if scope.endpoint_id is None:
        return _APP_ENDPOINTS, scope.app_id
    return "$1", scope.endpoint_id


class PostgresStats(PostgresBase):
    @wrap_exceptions
    async def rolled_until(self) -> int:
        value = await self._db.fetchval(STATE)
        return 0 if value is None else int(value)

    @staticmethod
    async def _first_hour_from(conn: asyncpg.Connection, ms: int) -> int | None:
        """The first hour from ``ms`` on with an attempt or a cancellation."""
        first = await conn.fetchval(FIRST_ATTEMPT, ids.id_floor(ids.ATTEMPT, ms))
        cancel = await conn.fetchval(FIRST_CANCEL, ms)
        return first_hour(None if first is None else ids.id_time_ms(first), cancel)

    @wrap_exceptions
    async def roll_up_next(self, now_ms: int) -> int | None:
        end = closed_until(now_ms)
        async with self._db.acquire() as conn, conn.transaction():
            if not await conn.fetchval(TRY_LOCK, ROLLUP_LOCK_KEY):
                return None  # another process's pass
            await conn.execute(CUSTOM_PLANS)
            hour = await conn.fetchval(STATE)
            if hour is None:  # the first pass starts at the oldest attempt
                first = await self._first_hour_from(conn, 0)
                hour = end if first is None else min(first, end)
                await conn.execute(INIT, hour)
            if hour >= end:
                return None
            rollup = await _hour_rollup(conn, hour, None)
            mark = hour + HOUR_MS
            if not rollup:  # on to the next hour with attempts (or to the end)
                later = await self._first_hour_from(conn, mark)
                mark = max(mark, min(end, end if later is None else later))
            await _put(conn, rollup)
            await conn.execute(MARK, mark)
            return int(mark)

    @wrap_exceptions
    async def reroll_next(self) -> tuple[str, int] | None:
        async with self._db.acquire() as conn, conn.transaction():
            if not await conn.fetchval(TRY_LOCK, ROLLUP_LOCK_KEY):
                return None  # another process's pass
            dirty = await conn.fetchrow(DIRTY_NEXT)
            if dirty is None:
                return None
            await conn.execute(CUSTOM_PLANS)
            app_id, hour, gen = dirty
            rolled_until = await conn.fetchval(STATE)
            # The gen is read before the attempts: a late write committed after this read
            # bumps it, and the mark stays for the next time.
            if rolled_until is not None and hour < rolled_until:
                rollup = await _hour_rollup(conn, hour, app_id)
                for statement in DROP_HOUR:
                    await conn.execute(statement, app_id, hour)
                await _put(conn, rollup)
            await conn.execute(DIRTY_DONE, app_id, hour, gen)
            return app_id, int(hour)

    @wrap_exceptions
    async def stats_rollups(self, scope: Scope, from_hour: int, to_hour: int) -> Marginals:
        args: list[Any] = [scope.app_id]
        if scope.endpoint_id is None:
            where = " WHERE app_id = $1"
        else:
            where = " WHERE endpoint_id = $2 AND app_id = $1"
            args.append(scope.endpoint_id)
        n = len(args)
        where += f" AND hour >= ${n + 1} AND hour < ${n + 2}"
        args += [from_hour, to_hour]
        async with (
            self._db.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            breakdowns = await conn.fetch(BREAKDOWNS.format(where=where), *args)
            latency = APP_LATENCY if scope.endpoint_id is None else LATENCY
            buckets = await conn.fetch(latency.format(where=where), *args)
            reasons = await conn.fetch(REASONS.format(where=where), *args)
        column = {3: 1, 5: 2, 6: 3}  # GROUPING() -> the column grouped by
        parts: dict[int, list[Any]] = {3: [], 5: [], 6: []}
        for r in breakdowns:
            parts[r[0]].append((r[column[r[0]]], r[4], r[5]))
        return Marginals(
            parts[3],
            parts[5],
            parts[6],
            [(r[0], r[1]) for r in buckets],
            [(r[0], r[1]) for r in reasons],
        )

    @wrap_exceptions
    async def stats_cells(self, scope: Scope, since_ms: int, until_ms: int) -> list[Cell]:
        args: list[Any] = [ids.id_floor(ids.ATTEMPT, since_ms), ids.id_floor(ids.ATTEMPT, until_ms)]
        query = CELLS + " AND a.app_id = $3"
        args.append(scope.app_id)
        if scope.endpoint_id is not None:
            query += " AND a.endpoint_id = $4"
            args.append(scope.endpoint_id)
        async with self._db.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(CUSTOM_PLANS)
            rows = await conn.fetch(query + CELLS_GROUP, *args)
        return [Cell(*r) for r in rows]

    async def _deliveries(
        self, query: str, scope: Scope, since_ms: int, until_ms: int
    ) -> list[asyncpg.Record]:
        """``query``'s rows over the scope's deliveries of messages created in [since, until)."""
        endpoints, first = _endpoints(scope)
        bounds = (ids.id_floor(ids.MESSAGE, since_ms), ids.id_floor(ids.MESSAGE, until_ms))
        rows: list[asyncpg.Record] = await self._db.fetch(
            query.format(endpoints=endpoints), first, *bounds
        )
        return rows

    @wrap_exceptions
    async def stats_live(self, scope: Scope, since_ms: int, until_ms: int) -> tuple[int, int]:
        counts = {r[0]: r[1] for r in await self._deliveries(LIVE, scope, since_ms, until_ms)}
        return counts.get(0, 0) + counts.get(5, 0), counts.get(1, 0)

    @wrap_exceptions
    async def stats_canceled(self, scope: Scope, since_ms: int, until_ms: int) -> list[Canceled]:
        query, args = CANCELS + " AND app_id = $3", [since_ms, until_ms, scope.app_id]
        if scope.endpoint_id is not None:
            query += " AND endpoint_id = $4"
            args.append(scope.endpoint_id)
        async with self._db.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(CUSTOM_PLANS)
            rows = await conn.fetch(query + " GROUP BY 1, 2, 3, 4", *args)
        return [Canceled(*r) for r in rows]

    @wrap_exceptions
    async def stats_types(
        self, scope: Scope, from_hour: int, to_hour: int
    ) -> list[tuple[str, int, int, int]]:
        args: list[Any] = [scope.app_id, from_hour, to_hour]
        where = " WHERE app_id = $1 AND hour >= $2 AND hour < $3"
        if scope.endpoint_id is not None:
            where += " AND endpoint_id = $4"
            args.append(scope.endpoint_id)
        rows = await self._db.fetch(TYPES_WITH_CANCELED.format(where=where), *args)
        return [(r[0], r[1], r[2], r[3]) for r in rows]


async def _hour_rollup(conn: asyncpg.Connection, hour: int, app_id: str | None) -> Rollup:
    """An hour's attempts and cancellations (of one application, or of all) as rollup rows."""
    cells, cancels = CELLS, CANCELS
    args: list[Any] = [ids.id_floor(ids.ATTEMPT, hour), ids.id_floor(ids.ATTEMPT, hour + HOUR_MS)]
    bounds: list[Any] = [hour, hour + HOUR_MS]
    if app_id is not None:
        cells += " AND a.app_id = $3"
        cancels += " AND app_id = $3"
        args.append(app_id)
        bounds.append(app_id)
    rollup = fold(Cell(*r) for r in await conn.fetch(cells + CELLS_GROUP, *args))
    rows = await conn.fetch(cancels + " GROUP BY 1, 2, 3, 4", *bounds)
    return rollup.add_canceled(Canceled(*r) for r in rows)


async def _put(conn: asyncpg.Connection, rollup: Rollup) -> None:
    if rollup.counts:
        await conn.execute(PUT_COUNTS, *_columns(rollup.count_rows(), 6))
        await conn.execute(PUT_LATENCY, *_columns(rollup.latency_rows(), 5))
        await conn.execute(PUT_APP_LATENCY, *_columns(rollup.app_latency_rows(), 4))
    if rollup.failures:
        await conn.execute(PUT_FAILURES, *_columns(rollup.failure_rows(), 5))
    if rollup.canceled:
        await conn.execute(PUT_CANCELED, *_columns(rollup.canceled_rows(), 5))
