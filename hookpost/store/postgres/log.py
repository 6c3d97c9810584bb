"""PostgreSQL's DeliveryLog: deliveries and attempts as operators read and steer them."""

from __future__ import annotations

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
from hookpost.store.postgres import sql
from hookpost.store.postgres.core import (
    RETRIES,
    Args,
    PostgresBase,
    command_status_count,
    id_range,
    page_messages,
    paged_query,
)
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.postgres.outbox import write_events
from hookpost.store.rows import (
    attempt_from_row,
    delivery_from_row,
    endpoint_from_row,
    stats_from_counts,
)


class PostgresLog(PostgresBase):
    @wrap_exceptions
    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now_ms: int) -> None:
        for _ in range(RETRIES):
            parked = await self._db.fetchval(self._sql.resend, app_id, msg_id, endpoint_id, now_ms)
            if parked is not None:  # a row was queued (parked, for an ordered endpoint)
                if parked:
                    await self._settle([endpoint_id], now_ms)
                self._notifier.poke()
                return
            # Both must belong to the app: no cross-tenant delivery. Say which is missing.
            found = await self._db.fetchrow(sql.RESEND_MISSING, app_id, msg_id, endpoint_id)
            if not found["message"]:
                raise NotFound("message", msg_id)
            if not found["endpoint"]:
                raise NotFound("endpoint", endpoint_id)
        raise NotFound("message", msg_id)  # kept vanishing and reappearing: give up

    @wrap_exceptions
    async def recover(
        self,
        app_id: str,
        endpoint_id: str,
        since_ms: int,
        until_ms: int | None,
        now_ms: int,
        finished: Finished | None = None,
    ) -> int:
        since = ids.id_floor(ids.MESSAGE, since_ms)
        until = None if until_ms is None else ids.id_floor(ids.MESSAGE, until_ms)
        recovered: int = 0
        parked = False
        after = None
        args = (app_id, endpoint_id, self.batch_rows, since, until)
        while True:
            notified = 0
            async with self._db.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(self._sql.recover, now_ms, *args, after)
                recovered += row["recovered"]
                parked = parked or row["parked"]
                last = row["scanned"] < self.batch_rows
                if last and finished is not None:  # the last batch: its events with it
                    notified = await write_events(conn, self._sql, finished(recovered))
            if last and parked:  # queued behind an ordered endpoint's head (domain.ordering)
                await self._settle([endpoint_id], now_ms)
            if row["recovered"] or notified:
                self._notifier.poke()
            if last:
                return recovered
            after = row["last"]

    @wrap_exceptions
    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery:
        row = await self._db.fetchrow(sql.DELIVERY_GET, msg_id, endpoint_id)
        if row is None:
            raise NotFound("delivery", f"{msg_id}/{endpoint_id}")
        return delivery_from_row(row)

    # -- attempts and delivery views ---------------------------------------------------------
    @wrap_exceptions
    async def list_attempts(
        self, app_id: str, page: PageRequest, filt: AttemptFilter
    ) -> Page[Attempt]:
        args = Args()
        where = [f"app_id = {args.add(app_id)}"]
        if filt.endpoint_id is not None:
            where.append(f"endpoint_id = {args.add(filt.endpoint_id)}")
        if filt.message_id is not None:
            where.append(f"message_id = {args.add(filt.message_id)}")
        if filt.status is not None:
            where.append(f"status = {args.add(int(filt.status))}")
        if filt.event_types:
            where.append(
                "message_id IN (SELECT id FROM messages WHERE app_id = $1 AND "
                f"event_type = ANY({args.add(list(filt.event_types))}::text[]))"
            )
        id_range(where, args, "id", ids.ATTEMPT, filt.before, filt.after)
        query = paged_query("SELECT * FROM attempts", where, args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([attempt_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def get_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> Attempt:
        row = await self._db.fetchrow(sql.ATTEMPT_GET, app_id, msg_id, attempt_id)
        if row is None:
            raise NotFound("attempt", attempt_id)
        return attempt_from_row(row)

    @wrap_exceptions
    async def expunge_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> None:
        status = await self._db.execute(sql.ATTEMPT_EXPUNGE, app_id, msg_id, attempt_id)
        if command_status_count(status) == 0:
            raise NotFound("attempt", attempt_id)

    @wrap_exceptions
    async def list_deliveries_for_message(
        self, app_id: str, msg_id: str, page: PageRequest
    ) -> Page[tuple[Delivery, Endpoint]]:
        args = Args()
        where = [
            f"d.app_id = {args.add(app_id)}",
            f"d.message_id = {args.add(msg_id)}",
            "NOT e.deleted",
        ]
        query = paged_query(sql.DELIVERIES_OF_MESSAGE, where, args, page, "d.endpoint_id")
        rows = await self._db.fetch(query, *args)
        items = [(delivery_from_row(r, "d_"), endpoint_from_row(r, self._box)) for r in rows]
        return finish_page(items, page)

    @wrap_exceptions
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
        args = Args()
        where = [f"d.app_id = {args.add(app_id)}", f"d.endpoint_id = {args.add(endpoint_id)}"]
        if status is not None:
            where.append(f"d.status = {args.add(int(status))}")
        query = paged_query(sql.DELIVERIES_OF_ENDPOINT, where, args, page, "d.message_id")
        rows, found, keep = await page_messages(
            self._db, query, args, page, with_content, max_content_bytes
        )
        items = [(delivery_from_row(r, "d_"), m) for r, m in zip(rows, found, strict=True)]
        return finish_page(items, page, keep)

    @wrap_exceptions
    async def endpoint_stats(
        self, app_id: str, endpoint_id: str, since_ms: int | None, until_ms: int | None
    ) -> EndpointStats:
        args = Args()
        where = [f"app_id = {args.add(app_id)}", f"endpoint_id = {args.add(endpoint_id)}"]
        after = None if since_ms is None else since_ms - 1
        id_range(where, args, "message_id", ids.MESSAGE, until_ms, after)
        rows = await self._db.fetch(
            f"SELECT status, count(*) AS n FROM deliveries WHERE {' AND '.join(where)} "
            "GROUP BY status",
            *args,
        )
        return stats_from_counts({r["status"]: r["n"] for r in rows})

    @wrap_exceptions
    async def endpoint_pace(self, endpoint_id: str, now_ms: int) -> PaceState:
        now = () if self._sql.database_clock else (now_ms,)
        row = await self._db.fetchrow(self._sql.endpoint_pace, endpoint_id, *now)
        if row is None:
            raise NotFound("endpoint", endpoint_id)
        return PaceState(row["throttle_rate"], row["throttle_at"], row["oldest_due"], row["now"])
