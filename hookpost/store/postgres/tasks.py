"""PostgreSQL's Tasks: background tasks claimed with ``FOR UPDATE SKIP LOCKED`` (one claimer
gets a task, whatever the number of worker processes), and the work they do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from hookpost.domain import ids
from hookpost.domain.errors import NotFound
from hookpost.domain.models import BackgroundTask, Message, Page, PageRequest
from hookpost.domain.operational import OPERATIONAL_APP_ID, OperationalEvent
from hookpost.domain.tasks import ReplayRange
from hookpost.store.paging import finish_page
from hookpost.store.postgres.core import Args, PostgresBase, command_status_count, paged_query
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.postgres.outbox import write_events
from hookpost.store.rows import loads_opt, message_from_row, message_head, task_from_row

TASK_INSERT = (
    "INSERT INTO background_tasks (id, kind, status, params, data, runs, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, 0, $6, $7)"
)
TASK_GET = "SELECT * FROM background_tasks WHERE id = $1"
TASK_CLAIM = (
    "UPDATE background_tasks SET lease = $1, lease_until = $2::bigint + $3::bigint,"
    " runs = runs + 1 WHERE id = (SELECT id FROM background_tasks WHERE status = 'running'"
    " AND (lease_until IS NULL OR lease_until <= $2) ORDER BY id LIMIT 1"
    " FOR UPDATE SKIP LOCKED) RETURNING *"
)
TASK_RENEW = (
    "UPDATE background_tasks SET lease_until = $4::bigint + $3::bigint"
    " WHERE id = $1 AND lease = $2 AND status = 'running'"
)
TASK_RELEASE = "UPDATE background_tasks SET lease_until = NULL WHERE id = $1 AND lease = $2"
TASK_FINISH = (
    "UPDATE background_tasks SET status = $3, data = $4, updated_at = $5, lease = NULL,"
    " lease_until = NULL WHERE id = $1 AND lease = $2 AND status = 'running'"
)
# {now}: the database's clock, or $1 (clocked.Clocked.now); $1 is the caller's now either way.
QUEUE_MISSING = (
    "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger,"
    " due_at, next_attempt_at, updated_at)"
    " SELECT m.app_id, m.id, e.id, 0, 0, 1, {now}, {now}, $1 FROM messages m, endpoints e"
    " WHERE m.app_id = $2 AND m.id = ANY($3::text[])"
    " AND e.id = $4 AND e.app_id = m.app_id AND NOT e.deleted"
    " ON CONFLICT (message_id, endpoint_id) DO NOTHING"
)
REPLAY = (
    "UPDATE deliveries SET status = 0, attempts = 0, trigger = 1, due_at = {now},"
    " next_attempt_at = {now}, lease = NULL, updated_at = $1"
    " WHERE id = ANY($2::bigint[]) AND status IN (2, 3, 4)"
)
EXPUNGE_MANY = (
    "WITH batch AS (SELECT id FROM messages WHERE app_id = $1 AND NOT expunged AND id > $2"
    " ORDER BY id LIMIT $3 FOR UPDATE), "
    "upd AS (UPDATE messages m SET payload = $4, expunged = true FROM batch"
    " WHERE m.id = batch.id RETURNING 1) "
    "SELECT (SELECT count(*) FROM upd) AS expunged, (SELECT count(*) FROM batch) AS scanned,"
    " (SELECT max(id) FROM batch) AS last"
)
SUBSCRIPTIONS = "SELECT app_id, event_types FROM endpoints WHERE NOT deleted AND app_id <> $1"
USAGE = (
    "SELECT a.id, a.uid, (SELECT count(*) FROM endpoints e JOIN deliveries d"
    " ON d.endpoint_id = e.id AND d.message_id >= $1 AND d.message_id < $2"
    " WHERE e.app_id = a.id) AS n FROM applications a WHERE NOT a.deleted AND a.id <> $3"
    " AND ($4::text[] IS NULL OR a.id = ANY($4)) ORDER BY a.id"
)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class PostgresTasks(PostgresBase):
    @wrap_exceptions
    async def create_task(self, task: BackgroundTask) -> None:
        await self._db.execute(
            TASK_INSERT,
            task.id,
            task.task,
            task.status,
            _json(task.params),
            _json(task.data),
            task.created_at,
            task.updated_at,
        )
        self._notifier.poke()  # workers in every process wake, their task runners with them

    @wrap_exceptions
    async def get_task(self, task_id: str) -> BackgroundTask:
        row = await self._db.fetchrow(TASK_GET, task_id)
        if row is None:
            raise NotFound("background task", task_id)
        return task_from_row(row)

    @wrap_exceptions
    async def list_tasks(
        self, page: PageRequest, status: str | None = None, kind: str | None = None
    ) -> Page[BackgroundTask]:
        where: list[str] = []
        args = Args()
        for column, value in (("status", status), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = {args.add(value)}")
        query = paged_query("SELECT * FROM background_tasks", where, args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([task_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def claim_task(self, lease: str, lease_ms: int, now_ms: int) -> BackgroundTask | None:
        row = await self._db.fetchrow(TASK_CLAIM, lease, now_ms, lease_ms)
        return None if row is None else task_from_row(row)

    @wrap_exceptions
    async def renew_task(self, task_id: str, lease: str, lease_ms: int, now_ms: int) -> bool:
        status = await self._db.execute(TASK_RENEW, task_id, lease, lease_ms, now_ms)
        return command_status_count(status) > 0

    @wrap_exceptions
    async def release_task(self, task_id: str, lease: str) -> None:
        await self._db.execute(TASK_RELEASE, task_id, lease)

    @wrap_exceptions
    async def finish_task(
        self,
        task_id: str,
        lease: str,
        status: str,
        data: Mapping[str, object],
        now_ms: int,
        notify: Sequence[OperationalEvent] = (),
    ) -> bool:
        notified = 0
        async with self._db.acquire() as conn, conn.transaction():
            done = await conn.execute(TASK_FINISH, task_id, lease, status, _json(data), now_ms)
            if not command_status_count(done):
                return False
            notified = await write_events(conn, self._sql, notify)
        if notified:
            self._notifier.poke()
        return True

    # -- the work ----------------------------------------------------------------------------
    @wrap_exceptions
    async def messages_missing(
        self,
        app_id: str,
        endpoint_id: str,
        since_ms: int,
        until_ms: int | None,
        after: str | None,
        limit: int,
        with_payload: bool,
    ) -> list[Message]:
        args = Args([app_id, endpoint_id, ids.id_floor(ids.MESSAGE, since_ms)])
        where = [
            "m.app_id = $1",
            "m.id >= $3",
            "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id"
            " AND d.endpoint_id = $2)",
        ]
        if until_ms is not None:
            where.append(f"m.id < {args.add(ids.id_floor(ids.MESSAGE, until_ms))}")
        if after is not None:
            where.append(f"m.id > {args.add(after)}")
        columns = "m.*" if with_payload else message_head("m")
        query = (
            f"SELECT {columns} FROM messages m WHERE {' AND '.join(where)}"
            f" ORDER BY m.id LIMIT {args.add(limit)}"
        )
        rows = await self._db.fetch(query, *args)
        return [message_from_row(r, None if with_payload else b"") for r in rows]

    @wrap_exceptions
    async def queue_missing(
        self, app_id: str, endpoint_id: str, msg_ids: Sequence[str], now_ms: int
    ) -> int:
        query = QUEUE_MISSING.format(now=self._sql.now)
        status = await self._db.execute(query, now_ms, app_id, list(msg_ids), endpoint_id)
        count = command_status_count(status)
        if count:
            self._notifier.poke()
        return count

    @wrap_exceptions
    async def replay_deliveries(
        self, selection: ReplayRange, now_ms: int, dry_run: bool = False
    ) -> int:
        r = selection
        if r.selects_nothing:
            return 0
        since = ids.id_floor(ids.MESSAGE, r.since_ms)
        args = Args([r.endpoint_id, r.app_id, r.replayable, r.before_ms, since])
        where = [
            "d.endpoint_id = $1",
            "d.app_id = $2",
            "d.status = ANY($3::smallint[])",
            "d.updated_at < $4",
            "d.message_id >= $5",
        ]
        if r.until_ms is not None:
            where.append(f"d.message_id < {args.add(ids.id_floor(ids.MESSAGE, r.until_ms))}")
        if r.event_types is not None:
            where.append(f"m.event_type = ANY({args.add(list(r.event_types))}::text[])")
        base = "FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE " + " AND ".join(
            where
        )
        if dry_run:
            counted: int = await self._db.fetchval(f"SELECT count(*) {base}", *args)
            return counted
        limit = self.batch_rows
        after_at = f"${len(args) + 1}"
        select = (
            f"SELECT d.id, d.message_id {base} AND d.message_id > {after_at}"
            f" ORDER BY d.message_id LIMIT {limit} FOR UPDATE OF d SKIP LOCKED"
        )
        replay = REPLAY.format(now=self._sql.now)
        replayed = 0
        after = ""
        while True:
            async with self._db.acquire() as conn, conn.transaction():
                rows = await conn.fetch(select, *args, after)
                count = 0
                if rows:
                    chosen = [r["id"] for r in rows]
                    count = command_status_count(await conn.execute(replay, now_ms, chosen))
            replayed += count
            if count:
                self._notifier.poke()
            if len(rows) < limit:
                return replayed
            after = rows[-1]["message_id"]

    @wrap_exceptions
    async def app_usage(
        self, app_ids: Sequence[str] | None, since_ms: int, until_ms: int
    ) -> list[tuple[str, str | None, int]]:
        bounds = (ids.id_floor(ids.MESSAGE, since_ms), ids.id_floor(ids.MESSAGE, until_ms))
        wanted = None if app_ids is None else list(app_ids)
        rows = await self._db.fetch(USAGE, *bounds, OPERATIONAL_APP_ID, wanted)
        return [(r["id"], r["uid"], r["n"]) for r in rows]

    @wrap_exceptions
    async def endpoint_subscriptions(self) -> list[tuple[str, list[str] | None]]:
        rows = await self._db.fetch(SUBSCRIPTIONS, OPERATIONAL_APP_ID)
        return [(r["app_id"], loads_opt(r["event_types"])) for r in rows]

    @wrap_exceptions
    async def expunge_all_contents(self, app_id: str) -> int:
        expunged = 0
        after = ""
        while True:
            row = await self._db.fetchrow(EXPUNGE_MANY, app_id, after, self.batch_rows, b"{}")
            expunged += int(row["expunged"])
            if row["scanned"] < self.batch_rows:
                return expunged
            after = row["last"]
