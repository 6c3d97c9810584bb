"""PostgreSQL's Catalog: applications, event types and endpoints."""

from __future__ import annotations

from collections.abc import Sequence

from hookpost.domain.errors import NotFound, StaleWrite
from hookpost.domain.limits import too_many_endpoints, too_many_event_types
from hookpost.domain.models import Application, Endpoint, EventType, Page, PageRequest
from hookpost.domain.operational import OperationalEvent
from hookpost.store.paging import finish_page
from hookpost.store.postgres import sql_catalog
from hookpost.store.postgres.core import Args, PostgresBase, command_status_count, paged_query
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.postgres.ordering import settle_endpoints
from hookpost.store.postgres.outbox import write_events
from hookpost.store.purge import BatchedDeletes
from hookpost.store.rows import (
    ENDPOINT_COLUMNS,
    app_from_row,
    dumps,
    dumps_opt,
    endpoint_from_row,
    endpoint_values,
    event_type_from_row,
)


class PostgresCatalog(PostgresBase, BatchedDeletes):
    # -- applications ------------------------------------------------------------------------
    @wrap_exceptions
    async def create_app(self, app: Application) -> Application:
        await self._db.execute(
            sql_catalog.APP_INSERT,
            app.id,
            app.uid,
            app.name,
            dumps(app.metadata),
            app.throttle_rate,
            app.created_at,
            app.updated_at,
        )
        return app

    @wrap_exceptions
    async def get_app(self, app_id_or_uid: str) -> Application:
        row = await self._db.fetchrow(sql_catalog.APP_GET, app_id_or_uid)
        if row is None:
            raise NotFound("application", app_id_or_uid)
        return app_from_row(row)

    @wrap_exceptions
    async def list_apps(self, page: PageRequest) -> Page[Application]:
        args = Args()
        query = paged_query("SELECT * FROM applications", ["NOT deleted"], args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([app_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def update_app(self, app: Application) -> Application:
        status = await self._db.execute(
            sql_catalog.APP_UPDATE,
            app.id,
            app.uid,
            app.name,
            dumps(app.metadata),
            app.throttle_rate,
            app.updated_at,
        )
        if command_status_count(status) == 0:
            raise NotFound("application", app.id)
        return app

    # -- deletes in batches (store.purge) ----------------------------------------------------
    @wrap_exceptions
    async def _flag_app(self, app_id: str) -> list[str]:
        # Statements apart: each sees the rows committed while the one before waited for locks.
        async with self._db.acquire() as conn, conn.transaction():
            if command_status_count(await conn.execute(sql_catalog.APP_FLAG, app_id)) == 0:
                raise NotFound("application", app_id)
            await conn.execute(sql_catalog.APP_ENDPOINTS_FLAG, app_id)
            await conn.execute(sql_catalog.APP_TOKENS_DELETE, app_id)
            return [r["id"] for r in await conn.fetch(sql_catalog.APP_ENDPOINT_IDS, app_id)]

    @wrap_exceptions
    async def _flag_endpoint(
        self, app_id: str, endpoint_id: str, notify: Sequence[OperationalEvent] = ()
    ) -> None:
        async with self._db.acquire() as conn, conn.transaction():
            status = await conn.execute(sql_catalog.ENDPOINT_FLAG, app_id, endpoint_id)
            if command_status_count(status) == 0:
                raise NotFound("endpoint", endpoint_id)
            notified = await write_events(conn, self._sql, notify)
        if notified:
            self._notifier.poke()

    @wrap_exceptions
    async def _delete_some(self, table: str, column: str, value: str, limit: int) -> int:
        query = (
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} = $1 LIMIT $2)"
        )
        return command_status_count(await self._db.execute(query, value, limit))

    @wrap_exceptions
    async def _delete_flagged(self, table: str, row_id: str) -> None:
        await self._db.execute(f"DELETE FROM {table} WHERE id = $1 AND deleted", row_id)

    @wrap_exceptions
    async def _flagged(self) -> tuple[dict[str, list[str]], list[str]]:
        apps: dict[str, list[str]] = {
            r["id"]: [] for r in await self._db.fetch(sql_catalog.FLAGGED_APPS)
        }
        alone: list[str] = []
        for r in await self._db.fetch(sql_catalog.FLAGGED_ENDPOINTS):
            apps.get(r["app_id"], alone).append(r["id"])
        return apps, alone

    # -- event types -------------------------------------------------------------------------
    @wrap_exceptions
    async def create_event_type(
        self, event_type: EventType, max_count: int | None = None
    ) -> EventType:
        et = event_type
        async with self._db.acquire() as conn, conn.transaction():
            if max_count is not None:
                await conn.execute(sql_catalog.EVENT_TYPES_LOCK)
                if await conn.fetchval(sql_catalog.EVENT_TYPE_COUNT) >= max_count:
                    if await conn.fetchrow(sql_catalog.EVENT_TYPE_GET, et.name) is None:
                        raise too_many_event_types(max_count)  # else: the insert's Conflict
            await conn.execute(
                sql_catalog.EVENT_TYPE_INSERT,
                et.name,
                et.description,
                dumps_opt(et.schemas),
                et.archived,
                et.deprecated,
                et.feature_flag,
                et.created_at,
                et.updated_at,
            )
        return et

    @wrap_exceptions
    async def get_event_type(self, name: str) -> EventType:
        row = await self._db.fetchrow(sql_catalog.EVENT_TYPE_GET, name)
        if row is None:
            raise NotFound("event type", name)
        return event_type_from_row(row)

    @wrap_exceptions
    async def list_event_types(
        self, page: PageRequest, include_archived: bool = False
    ) -> Page[EventType]:
        args = Args()
        where = [] if include_archived else ["NOT archived"]
        query = paged_query("SELECT * FROM event_types", where, args, page, "name")
        rows = await self._db.fetch(query, *args)
        return finish_page([event_type_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def update_event_type(self, event_type: EventType) -> EventType:
        et = event_type
        status = await self._db.execute(
            sql_catalog.EVENT_TYPE_UPDATE,
            et.name,
            et.description,
            dumps_opt(et.schemas),
            et.archived,
            et.deprecated,
            et.feature_flag,
            et.updated_at,
            dumps_opt(et.retry_schedule),
        )
        if command_status_count(status) == 0:
            raise NotFound("event type", et.name)
        return et

    @wrap_exceptions
    async def delete_event_type(self, name: str) -> None:
        if command_status_count(await self._db.execute(sql_catalog.EVENT_TYPE_DELETE, name)) == 0:
            raise NotFound("event type", name)

    # -- endpoints ---------------------------------------------------------------------------
    @wrap_exceptions
    async def create_endpoint(
        self,
        endpoint: Endpoint,
        max_per_app: int | None = None,
        notify: Sequence[OperationalEvent] = (),
    ) -> Endpoint:
        values = endpoint_values(endpoint, self._box)
        app_id = endpoint.app_id
        async with self._db.acquire() as conn, conn.transaction():
            # The count is read after taking the lock, so it holds every earlier create.
            if await conn.fetchval(sql_catalog.APP_LOCK, app_id) is None:
                raise NotFound("application", app_id)
            if max_per_app is not None:
                if await conn.fetchval(sql_catalog.ENDPOINT_COUNT, app_id) >= max_per_app:
                    raise too_many_endpoints(max_per_app)
            await conn.execute(sql_catalog.ENDPOINT_INSERT, *(values[c] for c in ENDPOINT_COLUMNS))
            notified = await write_events(conn, self._sql, notify)
        if notified:
            self._notifier.poke()
        return endpoint

    @wrap_exceptions
    async def get_endpoint(self, app_id: str, endpoint_id_or_uid: str) -> Endpoint:
        row = await self._db.fetchrow(sql_catalog.ENDPOINT_GET, app_id, endpoint_id_or_uid)
        if row is None:
            raise NotFound("endpoint", endpoint_id_or_uid)
        return endpoint_from_row(row, self._box)

    @wrap_exceptions
    async def list_endpoints(self, app_id: str, page: PageRequest) -> Page[Endpoint]:
        args = Args()
        where = [f"app_id = {args.add(app_id)}", "NOT deleted"]
        query = paged_query("SELECT * FROM endpoints", where, args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([endpoint_from_row(r, self._box) for r in rows], page)

    @wrap_exceptions
    async def update_endpoint(
        self,
        endpoint: Endpoint,
        expected_updated_at: int | None = None,
        notify: Sequence[OperationalEvent] = (),
    ) -> Endpoint:
        values = endpoint_values(endpoint, self._box)
        async with self._db.acquire() as conn, conn.transaction():
            status = await conn.execute(
                sql_catalog.ENDPOINT_UPDATE,
                *(values[c] for c in sql_catalog.ENDPOINT_UPDATE_COLUMNS),
                expected_updated_at,
            )
            if command_status_count(status) == 0:
                if await conn.fetchval(sql_catalog.ENDPOINT_EXISTS, endpoint.app_id, endpoint.id):
                    raise StaleWrite(f"endpoint {endpoint.id} changed since it was read")
                raise NotFound("endpoint", endpoint.id)
            notified = await write_events(conn, self._sql, notify)
            # `ordered` switched, or re-enabled: its queue as domain.ordering wants it (the
            # UPDATE holds the row's lock already).
            notified += await settle_endpoints(conn, self._sql, [endpoint.id], endpoint.updated_at)
        if notified:
            self._notifier.poke()
        return endpoint

    @wrap_exceptions
    async def any_sealed_keys(self) -> tuple[str, str] | None:
        row = await self._db.fetchrow("SELECT id, keys FROM endpoints LIMIT 1")
        return None if row is None else (row["id"], row["keys"])
