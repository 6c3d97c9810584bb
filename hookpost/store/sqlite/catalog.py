"""SQLite's Catalog: applications, event types and endpoints."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from hookpost.domain.errors import NotFound, StaleWrite
from hookpost.domain.limits import too_many_endpoints, too_many_event_types
from hookpost.domain.models import Application, Endpoint, EventType, Page, PageRequest
from hookpost.domain.operational import OperationalEvent
from hookpost.store.paging import finish_page
from hookpost.store.purge import BatchedDeletes
from hookpost.store.rows import (
    app_from_row,
    dumps,
    dumps_opt,
    endpoint_from_row,
    endpoint_values,
    event_type_from_row,
)
from hookpost.store.sqlite import sql
from hookpost.store.sqlite.core import Conn, SqliteBase, paged
from hookpost.store.sqlite.errors import conflict
from hookpost.store.sqlite.ordering import settle_endpoints
from hookpost.store.sqlite.outbox import write_events


class SqliteCatalog(SqliteBase, BatchedDeletes):
    # -- applications ------------------------------------------------------------------------
    async def create_app(self, app: Application) -> Application:
        def run(c: Conn) -> Application:
            try:
                c.execute(
                    sql.APP_INSERT,
                    (
                        app.id,
                        app.uid,
                        app.name,
                        dumps(app.metadata),
                        app.throttle_rate,
                        app.created_at,
                        app.updated_at,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise conflict(exc, "an application with this uid") from None
            return app

        return await self._db.write(run)

    async def get_app(self, app_id_or_uid: str) -> Application:
        def run(c: Conn) -> Application:
            row = c.execute(sql.APP_GET, (app_id_or_uid,)).fetchone()
            if row is None:
                raise NotFound("application", app_id_or_uid)
            return app_from_row(row)

        return await self._db.read(run)

    async def list_apps(self, page: PageRequest) -> Page[Application]:
        def run(c: Conn) -> Page[Application]:
            rows = paged(c, "SELECT * FROM applications", ["NOT deleted"], [], page, "id")
            return finish_page([app_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def update_app(self, app: Application) -> Application:
        def run(c: Conn) -> Application:
            try:
                cur = c.execute(
                    sql.APP_UPDATE,
                    (
                        app.uid,
                        app.name,
                        dumps(app.metadata),
                        app.throttle_rate,
                        app.updated_at,
                        app.id,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise conflict(exc, "an application with this uid") from None
            if cur.rowcount == 0:
                raise NotFound("application", app.id)
            return app

        return await self._db.write(run)

    # -- deletes in batches (store.purge) ----------------------------------------------------
    async def _flag_app(self, app_id: str) -> list[str]:
        def run(c: Conn) -> list[str]:
            if c.execute(sql.APP_FLAG, (app_id,)).rowcount == 0:
                raise NotFound("application", app_id)
            c.execute(sql.APP_ENDPOINTS_FLAG, (app_id,))
            c.execute(sql.APP_TOKENS_DELETE, (app_id,))
            return [r[0] for r in c.execute(sql.APP_ENDPOINT_IDS, (app_id,))]

        return await self._db.write(run)

    async def _flag_endpoint(
        self, app_id: str, endpoint_id: str, notify: Sequence[OperationalEvent] = ()
    ) -> None:
        def run(c: Conn) -> int:
            if c.execute(sql.ENDPOINT_FLAG, (app_id, endpoint_id)).rowcount == 0:
                raise NotFound("endpoint", endpoint_id)
            return write_events(c, notify)

        if await self._db.write(run):
            self._new_work()

    async def _delete_some(self, table: str, column: str, value: str, limit: int) -> int:
        query = (
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} = ? LIMIT ?)"
        )
        return await self._db.write(lambda c: c.execute(query, (value, limit)).rowcount)

    async def _delete_flagged(self, table: str, row_id: str) -> None:
        query = f"DELETE FROM {table} WHERE id = ? AND deleted"
        await self._db.write(lambda c: c.execute(query, (row_id,)))

    async def _flagged(self) -> tuple[dict[str, list[str]], list[str]]:
        def run(c: Conn) -> tuple[dict[str, list[str]], list[str]]:
            apps: dict[str, list[str]] = {r[0]: [] for r in c.execute(sql.FLAGGED_APPS)}
            alone: list[str] = []
            for app_id, endpoint_id in c.execute(sql.FLAGGED_ENDPOINTS):
                apps.get(app_id, alone).append(endpoint_id)
            return apps, alone

        return await self._db.read(run)

    # -- event types -------------------------------------------------------------------------
    async def create_event_type(
        self, event_type: EventType, max_count: int | None = None
    ) -> EventType:
        et = event_type

        def run(c: Conn) -> EventType:
            if max_count is not None and c.execute(sql.EVENT_TYPE_COUNT).fetchone()[0] >= max_count:
                if c.execute(sql.EVENT_TYPE_GET, (et.name,)).fetchone() is None:
                    raise too_many_event_types(max_count)  # else: the insert's Conflict
            try:
                c.execute(
                    sql.EVENT_TYPE_INSERT,
                    (
                        et.name,
                        et.description,
                        dumps_opt(et.schemas),
                        et.archived,
                        et.deprecated,
                        et.feature_flag,
                        et.created_at,
                        et.updated_at,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise conflict(exc, "an event type with this name") from None
            return et

        return await self._db.write(run)

    async def get_event_type(self, name: str) -> EventType:
        def run(c: Conn) -> EventType:
            row = c.execute(sql.EVENT_TYPE_GET, (name,)).fetchone()
            if row is None:
                raise NotFound("event type", name)
            return event_type_from_row(row)

        return await self._db.read(run)

    async def list_event_types(
        self, page: PageRequest, include_archived: bool = False
    ) -> Page[EventType]:
        def run(c: Conn) -> Page[EventType]:
            where = [] if include_archived else ["archived = 0"]
            rows = paged(c, "SELECT * FROM event_types", where, [], page, "name")
            return finish_page([event_type_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def update_event_type(self, event_type: EventType) -> EventType:
        et = event_type

        def run(c: Conn) -> EventType:
            cur = c.execute(
                sql.EVENT_TYPE_UPDATE,
                (
                    et.description,
                    dumps_opt(et.schemas),
                    et.archived,
                    et.deprecated,
                    et.feature_flag,
                    et.updated_at,
                    dumps_opt(et.retry_schedule),
                    et.name,
                ),
            )
            if cur.rowcount == 0:
                raise NotFound("event type", et.name)
            return et

        return await self._db.write(run)

    async def delete_event_type(self, name: str) -> None:
        def run(c: Conn) -> None:
            if c.execute(sql.EVENT_TYPE_DELETE, (name,)).rowcount == 0:
                raise NotFound("event type", name)

        await self._db.write(run)

    # -- endpoints ---------------------------------------------------------------------------
    async def create_endpoint(
        self,
        endpoint: Endpoint,
        max_per_app: int | None = None,
        notify: Sequence[OperationalEvent] = (),
    ) -> Endpoint:
        values = endpoint_values(endpoint, self._box)
        app_id = endpoint.app_id

        def run(c: Conn) -> int:
            # In the write transaction: no other writer can add one in between.
            if c.execute(sql.APP_LIVE, (app_id,)).fetchone() is None:
                raise NotFound("application", app_id)
            if max_per_app is not None:
                if c.execute(sql.ENDPOINT_COUNT, (app_id,)).fetchone()[0] >= max_per_app:
                    raise too_many_endpoints(max_per_app)
            try:
                c.execute(sql.ENDPOINT_INSERT, values)
            except sqlite3.IntegrityError as exc:
                raise conflict(exc, "an endpoint with this uid") from None
            return write_events(c, notify)

        if await self._db.write(run):
            self._new_work()
        return endpoint

    async def get_endpoint(self, app_id: str, endpoint_id_or_uid: str) -> Endpoint:
        def run(c: Conn) -> Endpoint:
            row = c.execute(sql.ENDPOINT_GET, (app_id, endpoint_id_or_uid)).fetchone()
            if row is None:
                raise NotFound("endpoint", endpoint_id_or_uid)
            return endpoint_from_row(row, self._box)

        return await self._db.read(run)

    async def list_endpoints(self, app_id: str, page: PageRequest) -> Page[Endpoint]:
        def run(c: Conn) -> Page[Endpoint]:
            where = ["app_id = ?", "NOT deleted"]
            rows = paged(c, "SELECT * FROM endpoints", where, [app_id], page, "id")
            return finish_page([endpoint_from_row(r, self._box) for r in rows], page)

        return await self._db.read(run)

    async def update_endpoint(
        self,
        endpoint: Endpoint,
        expected_updated_at: int | None = None,
        notify: Sequence[OperationalEvent] = (),
    ) -> Endpoint:
        values = {
            **endpoint_values(endpoint, self._box),
            "expected_updated_at": expected_updated_at,
        }

        def run(c: Conn) -> int:
            try:
                cur = c.execute(sql.ENDPOINT_UPDATE, values)
            except sqlite3.IntegrityError as exc:
                raise conflict(exc, "an endpoint with this uid") from None
            if cur.rowcount == 0:
                exists = c.execute(sql.ENDPOINT_EXISTS, (endpoint.app_id, endpoint.id)).fetchone()
                if exists is not None:
                    raise StaleWrite(f"endpoint {endpoint.id} changed since it was read")
                raise NotFound("endpoint", endpoint.id)
            # `ordered` switched, or re-enabled: its queue as domain.ordering wants it.
            due = settle_endpoints(c, [endpoint.id], values["updated_at"])
            return write_events(c, notify) + due

        if await self._db.write(run):
            self._new_work()
        return endpoint

    async def any_sealed_keys(self) -> tuple[str, str] | None:
        def run(c: Conn) -> tuple[str, str] | None:
            row = c.execute(sql.ANY_SEALED_KEYS).fetchone()
            return None if row is None else (str(row[0]), str(row[1]))

        return await self._db.read(run)
