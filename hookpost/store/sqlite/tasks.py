"""SQLite's Tasks: background tasks, claimed in the one writer's transactions (across
processes, writers take turns: docs/decisions/0002), and the work they do."""

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
from hookpost.store.rows import loads_opt, message_from_row, message_head, task_from_row
from hookpost.store.sqlite.core import Conn, SqliteBase, id_range, paged
from hookpost.store.sqlite.outbox import write_events

TASK_INSERT = (
    "INSERT INTO background_tasks (id, kind, status, params, data, runs, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, 0, ?, ?)"
)
TASK_GET = "SELECT * FROM background_tasks WHERE id = ?"
TASK_NEXT = (
    "SELECT id FROM background_tasks WHERE status = 'running'"
    " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY id LIMIT 1"
)
TASK_TAKE = "UPDATE background_tasks SET lease = ?, lease_until = ?, runs = runs + 1 WHERE id = ?"
TASK_RENEW = (
    "UPDATE background_tasks SET lease_until = ? WHERE id = ? AND lease = ? AND status = 'running'"
)
TASK_RELEASE = "UPDATE background_tasks SET lease_until = NULL WHERE id = ? AND lease = ?"
TASK_FINISH = (
    "UPDATE background_tasks SET status = ?, data = ?, updated_at = ?, lease = NULL,"
    " lease_until = NULL WHERE id = ? AND lease = ? AND status = 'running'"
)
QUEUE_MISSING = (
    "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger,"
    " due_at, next_attempt_at, updated_at)"
    " SELECT m.app_id, m.id, e.id, 0, 0, 1, ?, ?, ? FROM messages m, endpoints e"
    " WHERE m.app_id = ? AND m.id IN (SELECT value FROM json_each(?))"
    " AND e.id = ? AND e.app_id = m.app_id AND NOT e.deleted"
    " ON CONFLICT (message_id, endpoint_id) DO NOTHING"
)
REPLAY = (
    "UPDATE deliveries SET status = 0, attempts = 0, trigger = 1, due_at = ?,"
    " next_attempt_at = ?, lease = NULL, updated_at = ?"
    " WHERE id IN (SELECT value FROM json_each(?)) AND status IN (2, 3, 4)"
)
EXPUNGE_NEXT = (
    "SELECT id FROM messages WHERE app_id = ? AND NOT expunged AND id > ? ORDER BY id LIMIT ?"
)
EXPUNGE_MANY = (
    "UPDATE messages SET payload = ?, expunged = 1"
    " WHERE id IN (SELECT value FROM json_each(?)) AND NOT expunged"
)
SUBSCRIPTIONS = "SELECT app_id, event_types FROM endpoints WHERE NOT deleted AND app_id <> ?"
USAGE = (
    "SELECT a.id, a.uid, (SELECT count(*) FROM endpoints e JOIN deliveries d"
    " ON d.endpoint_id = e.id AND d.message_id >= ? AND d.message_id < ?"
    " WHERE e.app_id = a.id) FROM applications a WHERE NOT a.deleted AND a.id <> ?"
)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class SqliteTasks(SqliteBase):
    async def create_task(self, task: BackgroundTask) -> None:
        row = (
            task.id,
            task.task,
            task.status,
            _json(task.params),
            _json(task.data),
            task.created_at,
            task.updated_at,
        )
        await self._db.write(lambda c: c.execute(TASK_INSERT, row))
        self._new_work()  # wakes this process's task runner (serve's child: its wake pipe)

    async def get_task(self, task_id: str) -> BackgroundTask:
        def run(c: Conn) -> BackgroundTask:
            row = c.execute(TASK_GET, (task_id,)).fetchone()
            if row is None:
                raise NotFound("background task", task_id)
            return task_from_row(row)

        return await self._db.read(run)

    async def list_tasks(
        self, page: PageRequest, status: str | None = None, kind: str | None = None
    ) -> Page[BackgroundTask]:
        def run(c: Conn) -> Page[BackgroundTask]:
            where: list[str] = []
            params: list[Any] = []
            for column, value in (("status", status), ("kind", kind)):
                if value is not None:
                    where.append(f"{column} = ?")
                    params.append(value)
            rows = paged(c, "SELECT * FROM background_tasks", where, params, page, "id")
            return finish_page([task_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def claim_task(self, lease: str, lease_ms: int, now_ms: int) -> BackgroundTask | None:
        # A read first: an idle runner's poll must not take the one writer's turn.
        if await self._db.read(lambda c: c.execute(TASK_NEXT, (now_ms,)).fetchone()) is None:
            return None

        def run(c: Conn) -> BackgroundTask | None:
            row = c.execute(TASK_NEXT, (now_ms,)).fetchone()
            if row is None:
                return None
            c.execute(TASK_TAKE, (lease, now_ms + lease_ms, row[0]))
            return task_from_row(c.execute(TASK_GET, (row[0],)).fetchone())

        return await self._db.write(run)

    async def renew_task(self, task_id: str, lease: str, lease_ms: int, now_ms: int) -> bool:
        args = (now_ms + lease_ms, task_id, lease)
        return bool(await self._db.write(lambda c: c.execute(TASK_RENEW, args).rowcount))

    async def release_task(self, task_id: str, lease: str) -> None:
        await self._db.write(lambda c: c.execute(TASK_RELEASE, (task_id, lease)))

    async def finish_task(
        self,
        task_id: str,
        lease: str,
        status: str,
        data: Mapping[str, object],
        now_ms: int,
        notify: Sequence[OperationalEvent] = (),
    ) -> bool:
        def run(c: Conn) -> tuple[bool, int]:
            args = (status, _json(data), now_ms, task_id, lease)
            if not c.execute(TASK_FINISH, args).rowcount:
                return False, 0
            return True, write_events(c, notify)

        done, notified = await self._db.write(run)
        if notified:
            self._new_work()
        return done

    # -- the work ----------------------------------------------------------------------------
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
        def run(c: Conn) -> list[Message]:
            where = ["m.app_id = ?"]
            params: list[Any] = [app_id]
            id_range(where, params, "m.id", ids.MESSAGE, until_ms, since_ms - 1)
            if after is not None:
                where.append("m.id > ?")
                params.append(after)
            where.append(
                "NOT EXISTS (SELECT 1 FROM deliveries d"
                " WHERE d.message_id = m.id AND d.endpoint_id = ?)"
            )
            params.append(endpoint_id)
            columns = "m.*" if with_payload else message_head("m")
            query = f"SELECT {columns} FROM messages m WHERE {' AND '.join(where)}"
            rows = c.execute(f"{query} ORDER BY m.id LIMIT ?", [*params, limit]).fetchall()
            return [message_from_row(r, None if with_payload else b"") for r in rows]

        return await self._db.read(run)

    async def queue_missing(
        self, app_id: str, endpoint_id: str, msg_ids: Sequence[str], now_ms: int
    ) -> int:
        args = (now_ms, now_ms, now_ms, app_id, _json(list(msg_ids)), endpoint_id)
        count: int = await self._db.write(lambda c: c.execute(QUEUE_MISSING, args).rowcount)
        if count:
            self._new_work()
        return count

    async def replay_deliveries(
        self, selection: ReplayRange, now_ms: int, dry_run: bool = False
    ) -> int:
        r = selection
        if r.selects_nothing:
            return 0
        where = [
            "d.endpoint_id = ?",
            "d.app_id = ?",
            "d.status IN (SELECT value FROM json_each(?))",
            "d.updated_at < ?",
        ]
        params: list[Any] = [r.endpoint_id, r.app_id, _json(r.replayable), r.before_ms]
        id_range(where, params, "d.message_id", ids.MESSAGE, r.until_ms, r.since_ms - 1)
        if r.event_types is not None:
            where.append("m.event_type IN (SELECT value FROM json_each(?))")
            params.append(_json(list(r.event_types)))
        base = "FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE " + " AND ".join(
            where
        )
        if dry_run:
            counted: int = await self._db.read(
                lambda c: c.execute(f"SELECT count(*) {base}", params).fetchone()[0]
            )
            return counted
        limit = self.batch_rows

        def step(c: Conn, after: str) -> tuple[int, str | None]:
            query = f"SELECT d.id, d.message_id {base} AND d.message_id > ?"
            batch = c.execute(f"{query} ORDER BY d.message_id LIMIT ?", [*params, after, limit])
            rows = batch.fetchall()
            if not rows:
                return 0, None
            chosen = _json([r[0] for r in rows])
            count = c.execute(REPLAY, (now_ms, now_ms, now_ms, chosen)).rowcount
            return count, rows[-1][1] if len(rows) == limit else None

        replayed = 0
        cursor: str | None = ""
        while cursor is not None:
            count, cursor = await self._db.write(step, cursor)
            replayed += count
            if count:
                self._new_work()
        return replayed

    async def app_usage(
        self, app_ids: Sequence[str] | None, since_ms: int, until_ms: int
    ) -> list[tuple[str, str | None, int]]:
        def run(c: Conn) -> list[tuple[str, str | None, int]]:
            bounds = (ids.id_floor(ids.MESSAGE, since_ms), ids.id_floor(ids.MESSAGE, until_ms))
            query, params = USAGE, [*bounds, OPERATIONAL_APP_ID]
            if app_ids is not None:
                query += " AND a.id IN (SELECT value FROM json_each(?))"
                params.append(_json(list(app_ids)))
            rows = c.execute(query + " ORDER BY a.id", params).fetchall()
            return [(r[0], r[1], r[2]) for r in rows]

        return await self._db.read(run)

    async def endpoint_subscriptions(self) -> list[tuple[str, list[str] | None]]:
        def run(c: Conn) -> list[tuple[str, list[str] | None]]:
            rows = c.execute(SUBSCRIPTIONS, (OPERATIONAL_APP_ID,)).fetchall()
            return [(r[0], loads_opt(r[1])) for r in rows]

        return await self._db.read(run)

    async def expunge_all_contents(self, app_id: str) -> int:
        limit = self.batch_rows

        def step(c: Conn, after: str) -> tuple[int, str | None]:
            rows = c.execute(EXPUNGE_NEXT, (app_id, after, limit)).fetchall()
            if not rows:
                return 0, None
            count = c.execute(EXPUNGE_MANY, (b"{}", _json([r[0] for r in rows]))).rowcount
            return count, rows[-1][0] if len(rows) == limit else None

        expunged = 0
        cursor: str | None = ""
        while cursor is not None:
            count, cursor = await self._db.write(step, cursor)
            expunged += count
        return expunged
