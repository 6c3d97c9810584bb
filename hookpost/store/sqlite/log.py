"""SQLite's DeliveryLog: deliveries and attempts as operators read and steer them."""

from __future__ import annotations

from typing import Any

import orjson

from hookpost.domain import ids
from hookpost.domain.errors import NotFound
from hookpost.domain.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointStats,
    Message,
    Page,
    PageRequest,
)
from hookpost.domain.queries import AttemptFilter, Finished
from hookpost.domain.throttle import PaceState
from hookpost.store.paging import finish_page
from hookpost.store.rows import (
    attempt_from_row,
    delivery_from_row,
    endpoint_from_row,
    stats_from_counts,
)
from hookpost.store.sqlite import sql
from hookpost.store.sqlite.core import (
    Conn,
    SqliteBase,
    id_range,
    page_messages,
    paged,
    snapshot,
)
from hookpost.store.sqlite.ordering import park_new, settle_endpoints
from hookpost.store.sqlite.outbox import write_events


def _requeued(c: Conn, endpoint_id: str, message_ids: list[str], now_ms: int) -> None:
    """Deliveries queued again for an ordered endpoint join its queue parked, then it is
    settled (domain.ordering); nothing for another endpoint but one probe."""
    row = c.execute(sql.ORDER_ENDPOINT, (endpoint_id,)).fetchone()
    if row is not None and row[0]:
        park_new(c, endpoint_id, message_ids, now_ms)
        settle_endpoints(c, [endpoint_id], now_ms)


class SqliteLog(SqliteBase):
    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now_ms: int) -> None:
        def run(c: Conn) -> None:
            # Both must belong to the app: no foreign-key error, no cross-tenant delivery.
            for table, kind, ident, live in (
                ("messages", "message", msg_id, ""),
                ("endpoints", "endpoint", endpoint_id, " AND NOT deleted"),
            ):
                query = f"SELECT 1 FROM {table} WHERE id = ? AND app_id = ?{live}"
                if c.execute(query, (ident, app_id)).fetchone() is None:
                    raise NotFound(kind, ident)
            c.execute(sql.RESEND, (app_id, msg_id, endpoint_id, now_ms, now_ms, now_ms))
            _requeued(c, endpoint_id, [msg_id], now_ms)

        await self._db.write(run)
        self._new_work()

    async def recover(
        self,
        app_id: str,
        endpoint_id: str,
        since_ms: int,
        until_ms: int | None,
        now_ms: int,
        finished: Finished | None = None,
    ) -> int:
        limit = self.batch_rows
        recovered = 0

        def run(c: Conn, after: str | None) -> tuple[int, str | None]:
            count, after = step(c, after)
            if after is None and finished is not None:  # the last batch: its events with it
                write_events(c, finished(recovered + count))
            return count, after

        def step(c: Conn, after: str | None) -> tuple[int, str | None]:
            # Walks the endpoint's deliveries in message order (ix_deliveries_endpoint), so a
            # delivery that fails again meanwhile is not queued twice by one recover.
            where = ["endpoint_id = ?", "app_id = ?", "status IN (3, 4)"]
            params: list[Any] = [endpoint_id, app_id]
            id_range(where, params, "message_id", ids.MESSAGE, until_ms, since_ms - 1)
            if after is not None:
                where.append("message_id > ?")
                params.append(after)
            query = sql.RECOVER_NEXT + " AND ".join(where) + sql.RECOVER_ORDER
            batch = c.execute(query, [*params, limit]).fetchall()
            if not batch:
                return 0, None
            chosen = orjson.dumps([r[0] for r in batch]).decode()
            cur = c.execute(sql.RECOVER, (now_ms, now_ms, now_ms, chosen))
            _requeued(c, endpoint_id, [r[1] for r in batch], now_ms)
            return cur.rowcount, batch[-1][1] if len(batch) == limit else None

        after = None
        while True:
            count, after = await self._db.write(run, after)
            recovered += count
            if count or (after is None and finished is not None):
                self._new_work()
            if after is None:
                return recovered

    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery:
        def run(c: Conn) -> Delivery:
            row = c.execute(sql.DELIVERY_GET, (msg_id, endpoint_id)).fetchone()
            if row is None:
                raise NotFound("delivery", f"{msg_id}/{endpoint_id}")
            return delivery_from_row(row)

        return await self._db.read(run)

    # -- attempts and delivery views ---------------------------------------------------------
    async def list_attempts(
        self, app_id: str, page: PageRequest, filt: AttemptFilter
    ) -> Page[Attempt]:
        def run(c: Conn) -> Page[Attempt]:
            where: list[str] = ["app_id = ?"]
            params: list[Any] = [app_id]
            for column, value in (
                ("endpoint_id", filt.endpoint_id),
                ("message_id", filt.message_id),
            ):
                if value is not None:
                    where.append(f"{column} = ?")
                    params.append(value)
            if filt.status is not None:
                where.append("status = ?")
                params.append(int(filt.status))
            if filt.event_types:
                where.append(
                    "message_id IN (SELECT id FROM messages WHERE app_id = ? AND event_type IN "
                    f"({', '.join('?' * len(filt.event_types))}))"
                )
                params.extend([app_id, *filt.event_types])
            id_range(where, params, "id", ids.ATTEMPT, filt.before, filt.after)
            rows = paged(c, "SELECT * FROM attempts", where, params, page, "id")
            return finish_page([attempt_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def get_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> Attempt:
        def run(c: Conn) -> Attempt:
            row = c.execute(sql.ATTEMPT_GET, (app_id, msg_id, attempt_id)).fetchone()
            if row is None:
                raise NotFound("attempt", attempt_id)
            return attempt_from_row(row)

        return await self._db.read(run)

    async def expunge_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> None:
        def run(c: Conn) -> None:
            cur = c.execute(sql.ATTEMPT_EXPUNGE, (app_id, msg_id, attempt_id))
            if cur.rowcount == 0:
                raise NotFound("attempt", attempt_id)

        await self._db.write(run)

    async def list_deliveries_for_message(
        self, app_id: str, msg_id: str, page: PageRequest
    ) -> Page[tuple[Delivery, Endpoint]]:
        def run(c: Conn) -> Page[tuple[Delivery, Endpoint]]:
            rows = paged(
                c,
                sql.DELIVERIES_OF_MESSAGE,
                ["d.app_id = ?", "d.message_id = ?", "NOT e.deleted"],
                [app_id, msg_id],
                page,
                "d.endpoint_id",
            )
            items = [(delivery_from_row(r, "d_"), endpoint_from_row(r, self._box)) for r in rows]
            return finish_page(items, page)

        return await self._db.read(run)

    async def list_deliveries_for_endpoint(
        self,
        app_id: str,
        endpoint_id: str,
        page: PageRequest,
        status: DeliveryStatus | None = None,
        *,
        with_content: bool = True,
        max_content_bytes: int | None = None,
    ) -> Page[tuple[Delivery, Message]]:
        def run(c: Conn) -> Page[tuple[Delivery, Message]]:
            where: list[str] = ["d.app_id = ?", "d.endpoint_id = ?"]
            params: list[Any] = [app_id, endpoint_id]
            if status is not None:
                where.append("d.status = ?")
                params.append(int(status))
            with snapshot(c):
                rows = paged(c, sql.DELIVERIES_OF_ENDPOINT, where, params, page, "d.message_id")
                found, keep = page_messages(c, rows, page, with_content, max_content_bytes)
            items = [(delivery_from_row(r, "d_"), m) for r, m in zip(rows, found, strict=True)]
            return finish_page(items, page, keep)

        return await self._db.read(run)

    async def endpoint_stats(
        self, app_id: str, endpoint_id: str, since_ms: int | None, until_ms: int | None
    ) -> EndpointStats:
        def run(c: Conn) -> EndpointStats:
            where, params = ["app_id = ?", "endpoint_id = ?"], [app_id, endpoint_id]
            after = None if since_ms is None else since_ms - 1
            id_range(where, params, "message_id", ids.MESSAGE, until_ms, after)
            counts = dict(
                c.execute(
                    f"SELECT status, count(*) FROM deliveries WHERE {' AND '.join(where)} "
                    "GROUP BY status",
                    params,
                ).fetchall()
            )
            return stats_from_counts(counts)

        return await self._db.read(run)

    async def endpoint_pace(self, endpoint_id: str, now_ms: int) -> PaceState:
        def run(c: Conn) -> PaceState:
            row = c.execute(sql.ENDPOINT_PACE, (endpoint_id,)).fetchone()
            if row is None:
                raise NotFound("endpoint", endpoint_id)
            return PaceState(row[0], row[1], row[2], now_ms)

        return await self._db.read(run)
