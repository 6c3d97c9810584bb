"""The SQLite backend: the embedded default, one database file, WAL, one writer."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import orjson

from hookpost.domain import ids
from hookpost.domain.errors import NotFound, StaleWrite
from hookpost.domain.models import (
    ApiToken,
    Application,
    Attempt,
    AttemptResult,
    ClaimedDelivery,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    Page,
    PageRequest,
    Trigger,
)
from hookpost.domain.queries import (
    AttemptFilter,
    CreatedMessage,
    FinishOutcome,
    MessageFilter,
    QueueDepth,
    StoredAnswer,
)
from hookpost.store.paging import finish_page, keyset
from hookpost.store.rows import (
    ATTEMPT_COLUMNS,
    ENDPOINT_COLUMNS,
    NO_LOWER_BOUND,
    KeyOpener,
    SecretBox,
    app_from_row,
    attempt_from_row,
    attempt_values,
    decode_claimed,
    delivery_from_row,
    dumps,
    dumps_opt,
    endpoint_from_row,
    endpoint_update_sql,
    endpoint_values,
    event_type_from_row,
    loads_opt,
    message_from_row,
    stats_from_counts,
    token_from_row,
)
from hookpost.store.sqlite.errors import conflict
from hookpost.store.sqlite.executor import SqliteExecutor
from hookpost.store.sqlite.messages import ANSWERS_PUT, CREATE_MESSAGES, NewMessage
from hookpost.store.sqlite.multirow import execute_values

Conn = sqlite3.Connection
MIN_SQLITE = (3, 33, 0)  # UPDATE ... FROM (multirow)

_ENDPOINT_INSERT = (
    f"INSERT INTO endpoints ({', '.join(ENDPOINT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in ENDPOINT_COLUMNS)})"
)
_ENDPOINT_UPDATE = endpoint_update_sql(lambda column: f":{column}", ":expected_updated_at")
# What a claim reads, in the order SqliteStore._claimed unpacks it. (Packing the claimed rows
# into one JSON row, as create_message does with an app's endpoints, was measured and dropped:
# the payloads, as hex, cost more in the end-to-end bench than the steps they saved. So was
# leasing from a JSON row of ids and reading the rest after the commit: no gain measured, and
# a failed read would leave rows leased until their lease ran out. See BENCHMARKS.md.)
_CLAIM_COLUMNS = (
    "d.id, d.app_id, d.message_id, d.endpoint_id, d.attempts, d.trigger, m.event_type, "
    "m.payload, m.created_at AS msg_created_at, e.url, e.headers, e.keys, e.signature_scheme, "
    "e.retry_schedule, e.disabled, d.due_at"
)
# Skips the attempt of a delivery whose message or endpoint was deleted while it was in
# flight (the cascade would have removed it anyway), instead of failing the whole batch.
# Columns of a VALUES list are column1, column2...: here in ATTEMPT_COLUMNS order (3 is the
# message id, 4 the endpoint id).
_ATTEMPTS_INSERT = (
    f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) "
    f"SELECT {', '.join(f'column{i + 1}' for i in range(len(ATTEMPT_COLUMNS)))} "
    "FROM (VALUES {values}) "
    "WHERE EXISTS (SELECT 1 FROM messages WHERE id = column3) "
    "AND EXISTS (SELECT 1 FROM endpoints WHERE id = column4)"
)
# Only where the lease still matches: a result that lost its lease is stale.
_DELIVERIES_FINISH = (
    "UPDATE deliveries SET status = v.column1, attempts = v.column2, next_attempt_at = v.column3, "
    "due_at = v.column4, lease = NULL, trigger = 0, updated_at = v.column5 "
    "FROM (VALUES {values}) AS v WHERE deliveries.id = v.column6 AND deliveries.lease = v.column7"
)
_ENDPOINTS_RESET = (
    "UPDATE endpoints SET consecutive_failures = 0, first_failure_at = NULL "
    "WHERE consecutive_failures > 0 AND id IN (VALUES {values})"
)
_DELIVERIES_LEASE = (
    "UPDATE deliveries SET status = 1, due_at = ?, lease = ?, updated_at = ? "
    "WHERE id IN (VALUES {values})"
)
_DELIVERIES_CANCEL = (
    "UPDATE deliveries SET status = 4, due_at = NULL, lease = NULL, updated_at = ? "
    "WHERE id IN (VALUES {values})"
)
_DELIVERIES_RELEASE = (  # leading: due_at, updated_at; rows: (id, lease)
    "UPDATE deliveries SET status = 0, due_at = ?, lease = NULL, updated_at = ? "
    "FROM (VALUES {values}) AS v WHERE deliveries.id = v.column1 AND deliveries.lease = v.column2"
)  # a join, not (id, lease) IN (...): SQLite scans the whole table for a row-value IN
# An idempotency key's answer, unless one unexpired at the last parameter is there already.
_ANSWER_PUT_FIRST = (
    ANSWERS_PUT.format(values="(?, ?, ?, ?, ?)") + " WHERE idempotency_keys.expires_at <= ?"
)


def _has_json() -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT json_array(1), count(*) FROM json_each('[1]')")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _paged(
    conn: Conn, sql: str, where: list[str], params: list[Any], page: PageRequest, column: str
) -> list[sqlite3.Row]:
    cond, order, fetch = keyset(page, column, "?")
    if cond:
        where = [*where, cond]
        params = [*params, page.iterator]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return conn.execute(f"{sql}{clause} ORDER BY {order} LIMIT ?", [*params, fetch]).fetchall()


def _id_range(
    where: list[str],
    params: list[Any],
    column: str,
    prefix: str,
    before: int | None,
    after: int | None,
) -> None:
    """Time bounds as id bounds: ids sort by creation time, so no extra index is needed."""
    if before is not None:
        where.append(f"{column} < ?")
        params.append(ids.id_floor(prefix, before))
    if after is not None:
        where.append(f"{column} >= ?")
        params.append(ids.id_floor(prefix, after + 1))


class SqliteStore:
    def __init__(self, path: str, box: SecretBox, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._box = box
        self._db = SqliteExecutor(path, synchronous=synchronous)
        self._listeners: list[Callable[[], None]] = []

    def on_new_work(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _new_work(self) -> None:
        # Only this process hears it; workers in other processes find the work by polling.
        for callback in self._listeners:
            callback()

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise RuntimeError(
                f"hookpost needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer "
                f"(UPDATE ... FROM); this Python links SQLite {sqlite3.sqlite_version}"
            )
        if not _has_json():
            raise RuntimeError(
                f"hookpost needs SQLite's JSON functions (built in since 3.38, the JSON1 "
                f"extension before); this Python's SQLite {sqlite3.sqlite_version} lacks them"
            )
        self._db.start()

    async def close(self) -> None:
        self._db.close()

    async def ping(self) -> None:
        await self._db.read(lambda c: c.execute("SELECT 1").fetchone())

    # -- applications ------------------------------------------------------------------------
    async def create_app(self, app: Application) -> Application:
        def run(c: Conn) -> Application:
            try:
                c.execute(
                    "INSERT INTO applications (id, uid, name, metadata, throttle_rate, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
            row = c.execute(
                "SELECT * FROM applications WHERE id = ? OR uid = ? LIMIT 1",
                (app_id_or_uid, app_id_or_uid),
            ).fetchone()
            if row is None:
                raise NotFound("application", app_id_or_uid)
            return app_from_row(row)

        return await self._db.read(run)

    async def list_apps(self, page: PageRequest) -> Page[Application]:
        def run(c: Conn) -> Page[Application]:
            rows = _paged(c, "SELECT * FROM applications", [], [], page, "id")
            return finish_page([app_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def update_app(self, app: Application) -> Application:
        def run(c: Conn) -> Application:
            try:
                cur = c.execute(
                    "UPDATE applications SET uid = ?, name = ?, metadata = ?, throttle_rate = ?, "
                    "updated_at = ? WHERE id = ?",
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

    async def delete_app(self, app_id: str) -> None:
        def run(c: Conn) -> None:
            if c.execute("DELETE FROM applications WHERE id = ?", (app_id,)).rowcount == 0:
                raise NotFound("application", app_id)

        await self._db.write(run)

    # -- event types -------------------------------------------------------------------------
    async def create_event_type(self, event_type: EventType) -> EventType:
        et = event_type

        def run(c: Conn) -> EventType:
            try:
                c.execute(
                    "INSERT INTO event_types (name, description, schemas, archived, deprecated, "
                    "feature_flag, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
            row = c.execute("SELECT * FROM event_types WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound("event type", name)
            return event_type_from_row(row)

        return await self._db.read(run)

    async def list_event_types(
        self, page: PageRequest, include_archived: bool = False
    ) -> Page[EventType]:
        def run(c: Conn) -> Page[EventType]:
            where = [] if include_archived else ["archived = 0"]
            rows = _paged(c, "SELECT * FROM event_types", where, [], page, "name")
            return finish_page([event_type_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def update_event_type(self, event_type: EventType) -> EventType:
        et = event_type

        def run(c: Conn) -> EventType:
            cur = c.execute(
                "UPDATE event_types SET description = ?, schemas = ?, archived = ?, "
                "deprecated = ?, feature_flag = ?, updated_at = ? WHERE name = ?",
                (
                    et.description,
                    dumps_opt(et.schemas),
                    et.archived,
                    et.deprecated,
                    et.feature_flag,
                    et.updated_at,
                    et.name,
                ),
            )
            if cur.rowcount == 0:
                raise NotFound("event type", et.name)
            return et

        return await self._db.write(run)

    async def delete_event_type(self, name: str) -> None:
        def run(c: Conn) -> None:
            if c.execute("DELETE FROM event_types WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound("event type", name)

        await self._db.write(run)

    # -- endpoints ---------------------------------------------------------------------------
    async def create_endpoint(self, endpoint: Endpoint) -> Endpoint:
        values = endpoint_values(endpoint, self._box)

        def run(c: Conn) -> Endpoint:
            try:
                c.execute(_ENDPOINT_INSERT, values)
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
                    raise NotFound("application", endpoint.app_id) from None
                raise conflict(exc, "an endpoint with this uid") from None
            return endpoint

        return await self._db.write(run)

    async def get_endpoint(self, app_id: str, endpoint_id_or_uid: str) -> Endpoint:
        def run(c: Conn) -> Endpoint:
            row = c.execute(
                "SELECT * FROM endpoints WHERE app_id = ? AND (id = ? OR uid = ?) LIMIT 1",
                (app_id, endpoint_id_or_uid, endpoint_id_or_uid),
            ).fetchone()
            if row is None:
                raise NotFound("endpoint", endpoint_id_or_uid)
            return endpoint_from_row(row, self._box)

        return await self._db.read(run)

    async def list_endpoints(self, app_id: str, page: PageRequest) -> Page[Endpoint]:
        def run(c: Conn) -> Page[Endpoint]:
            rows = _paged(c, "SELECT * FROM endpoints", ["app_id = ?"], [app_id], page, "id")
            return finish_page([endpoint_from_row(r, self._box) for r in rows], page)

        return await self._db.read(run)

    async def update_endpoint(
        self, endpoint: Endpoint, expected_updated_at: int | None = None
    ) -> Endpoint:
        values = {
            **endpoint_values(endpoint, self._box),
            "expected_updated_at": expected_updated_at,
        }

        def run(c: Conn) -> Endpoint:
            try:
                cur = c.execute(_ENDPOINT_UPDATE, values)
            except sqlite3.IntegrityError as exc:
                raise conflict(exc, "an endpoint with this uid") from None
            if cur.rowcount == 0:
                exists = c.execute(
                    "SELECT 1 FROM endpoints WHERE app_id = ? AND id = ?",
                    (endpoint.app_id, endpoint.id),
                ).fetchone()
                if exists is not None:
                    raise StaleWrite(f"endpoint {endpoint.id} changed since it was read")
                raise NotFound("endpoint", endpoint.id)
            return endpoint

        return await self._db.write(run)

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> None:
        def run(c: Conn) -> None:
            cur = c.execute(
                "DELETE FROM endpoints WHERE app_id = ? AND id = ?", (app_id, endpoint_id)
            )
            if cur.rowcount == 0:
                raise NotFound("endpoint", endpoint_id)

        await self._db.write(run)

    # -- messages ----------------------------------------------------------------------------
    async def create_message(
        self,
        message: Message,
        now_ms: int,
        endpoint_ids: Sequence[str] | None = None,
        answer: StoredAnswer | None = None,
    ) -> CreatedMessage:
        only = None if endpoint_ids is None else frozenset(endpoint_ids)
        created: CreatedMessage = await self._db.write_shared(
            CREATE_MESSAGES, NewMessage(message, now_ms, only, answer)
        )
        if created.deliveries:
            self._new_work()
        return created

    async def get_message(self, app_id: str, msg_id_or_event_id: str) -> Message:
        def run(c: Conn) -> Message:
            row = c.execute(
                "SELECT * FROM messages WHERE app_id = ? AND (id = ? OR event_id = ?) LIMIT 1",
                (app_id, msg_id_or_event_id, msg_id_or_event_id),
            ).fetchone()
            if row is None:
                raise NotFound("message", msg_id_or_event_id)
            return message_from_row(row)

        return await self._db.read(run)

    async def list_messages(
        self, app_id: str, page: PageRequest, filt: MessageFilter
    ) -> Page[Message]:
        def run(c: Conn) -> Page[Message]:
            where, params = ["app_id = ?"], [app_id]
            if filt.event_types:
                where.append(f"event_type IN ({', '.join('?' * len(filt.event_types))})")
                params.extend(filt.event_types)
            if filt.channel is not None:
                where.append("EXISTS (SELECT 1 FROM json_each(channels) WHERE value = ?)")
                params.append(filt.channel)
            _id_range(where, params, "id", ids.MESSAGE, filt.before, filt.after)
            rows = _paged(c, "SELECT * FROM messages", where, params, page, "id")
            return finish_page([message_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def expunge_message(self, app_id: str, msg_id: str) -> None:
        def run(c: Conn) -> None:
            cur = c.execute(
                "UPDATE messages SET payload = ?, expunged = 1 WHERE app_id = ? AND id = ?",
                (b"{}", app_id, msg_id),
            )
            if cur.rowcount == 0:
                raise NotFound("message", msg_id)

        await self._db.write(run)

    # -- the delivery queue ------------------------------------------------------------------
    async def claim_due(
        self,
        limit: int,
        lease_ms: int,
        now_ms: int,
        exclude_endpoints: Sequence[str] = (),
        *,
        max_per_endpoint: int | None = None,
        in_flight: Mapping[str, int] | None = None,
        due_from: int | None = None,
    ) -> list[ClaimedDelivery]:
        excluded = list(exclude_endpoints)
        start = NO_LOWER_BOUND if due_from is None else due_from
        lease = secrets.token_hex(8)
        busy = dict(in_flight or {})

        def split(rows: list[sqlite3.Row]) -> tuple[list[sqlite3.Row], list[tuple[int]]]:
            """One pass over the scanned rows: (rows to lease, (id,) of rows to cancel).

            A disabled endpoint's rows are all canceled (capped, a backlog of them would take
            a claim per max_per_endpoint rows to clear). Above its cap, an endpoint's surplus
            stays due untouched, rather than being leased only to be handed back by the
            worker (two more writes per row). Positions: see _CLAIM_COLUMNS.
            """
            counts = dict(busy)  # a job may run twice: no state outside it
            claimed: list[sqlite3.Row] = []
            canceled: list[tuple[int]] = []
            for r in rows:
                if r[14]:  # e.disabled
                    canceled.append((r[0],))  # d.id
                    continue
                if max_per_endpoint is not None:
                    endpoint_id = r[3]  # d.endpoint_id
                    n = counts.get(endpoint_id, 0)
                    if n >= max_per_endpoint:
                        continue
                    counts[endpoint_id] = n + 1
                claimed.append(r)
            return claimed, canceled

        def run(c: Conn) -> list[sqlite3.Row]:
            skip = (
                f" AND d.endpoint_id NOT IN ({', '.join('?' * len(excluded))})" if excluded else ""
            )
            rows = c.execute(
                f"SELECT {_CLAIM_COLUMNS} "
                "FROM deliveries d JOIN messages m ON m.id = d.message_id "
                "JOIN endpoints e ON e.id = d.endpoint_id "
                f"WHERE d.due_at <= ? AND d.due_at >= ?{skip} ORDER BY d.due_at LIMIT ?",
                [now_ms, start, *excluded, limit],
            ).fetchall()
            claimed, canceled = split(rows)
            # an endpoint disabled after the message was sent gets nothing
            execute_values(c, _DELIVERIES_CANCEL, canceled, (now_ms,))
            execute_values(
                c, _DELIVERIES_LEASE, [(r[0],) for r in claimed], (now_ms + lease_ms, lease, now_ms)
            )
            return claimed

        # Decoded after the commit: the write lock is held for the transaction, not for this.
        claimed = await self._db.write(run)
        opener = KeyOpener(self._box)
        return decode_claimed(claimed, lambda r: self._claimed(r, lease, opener), itemgetter(0))

    def _claimed(self, r: sqlite3.Row, lease: str, open_keys: KeyOpener) -> ClaimedDelivery:
        # Unpacked by position (name lookups on a Row cost a scan each): see _CLAIM_COLUMNS.
        (
            delivery_id,
            app_id,
            message_id,
            endpoint_id,
            attempts,
            trigger,
            event_type,
            payload,
            msg_created_at,
            url,
            headers,
            sealed_keys,
            signature_scheme,
            retry_schedule,
            _disabled,
            due_at,
        ) = r
        return ClaimedDelivery(
            delivery_id=delivery_id,
            lease=lease,
            app_id=app_id,
            message_id=message_id,
            endpoint_id=endpoint_id,
            event_type=event_type,
            payload=payload,
            msg_created_at=msg_created_at,
            attempts=attempts,
            trigger=Trigger(trigger),
            url=url,
            headers=orjson.loads(headers),
            keys=open_keys(sealed_keys),
            signature_scheme=signature_scheme,
            retry_schedule=loads_opt(retry_schedule),
            due_at=due_at,
        )

    async def finish_attempts(
        self, results: Sequence[AttemptResult], now_ms: int, disable_after_ms: int
    ) -> FinishOutcome:
        results = list(results)
        # Built before the transaction: the write lock is held for that, not for this.
        attempt_rows = [attempt_values(r.attempt) for r in results]
        delivery_rows = [
            (
                int(r.next_status),
                r.attempts,
                r.next_attempt_at,
                r.next_attempt_at if r.next_status == DeliveryStatus.PENDING else None,
                now_ms,
                r.delivery_id,
                r.lease,
            )
            for r in results
        ]
        # An endpoint with only successes in the batch needs one reset of its failure count;
        # the others are walked result by result, in order (a failure after a success counts).
        failing = {r.attempt.endpoint_id for r in results if r.attempt.status != 0}
        only_ok = [(ep_id,) for ep_id in dict.fromkeys(r.attempt.endpoint_id for r in results)]
        only_ok = [row for row in only_ok if row[0] not in failing]
        mixed = [r for r in results if r.attempt.endpoint_id in failing]

        def run(c: Conn) -> FinishOutcome:
            execute_values(c, _ATTEMPTS_INSERT, attempt_rows)
            stale = len(results) - execute_values(c, _DELIVERIES_FINISH, delivery_rows)
            execute_values(c, _ENDPOINTS_RESET, only_ok)
            disabled: list[tuple[str, str, str]] = []
            reset: set[str] = set()  # endpoints reset in this batch with no failure since
            for r in mixed:
                ep_id = r.attempt.endpoint_id
                if r.attempt.status == 0:
                    if ep_id not in reset:  # a second reset in a row would change nothing
                        c.execute(
                            "UPDATE endpoints SET consecutive_failures = 0, "
                            "first_failure_at = NULL WHERE id = ? AND consecutive_failures > 0",
                            (ep_id,),
                        )
                        reset.add(ep_id)
                    continue
                reset.discard(ep_id)
                c.execute(
                    "UPDATE endpoints SET consecutive_failures = consecutive_failures + 1, "
                    "first_failure_at = COALESCE(first_failure_at, ?) WHERE id = ?",
                    (r.attempt.created_at, ep_id),
                )
                reason = r.disable_endpoint_reason
                cur = c.execute(
                    "UPDATE endpoints SET disabled = 1, disabled_reason = ?,"
                    " updated_at = max(?, updated_at + 1)"  # endpoint updates compare it
                    " WHERE id = ? AND disabled = 0 AND (? OR first_failure_at <= ?)",
                    (
                        reason or "failing for too long",
                        now_ms,
                        ep_id,
                        reason is not None,
                        now_ms - disable_after_ms,
                    ),
                )
                if cur.rowcount:
                    disabled.append((r.attempt.app_id, ep_id, reason or "failing for too long"))
            return FinishOutcome(disabled_endpoints=disabled, stale=stale)

        return await self._db.write(run)

    async def release(self, leases: Sequence[tuple[int, str]], now_ms: int) -> int:
        rows = list(leases)

        def run(c: Conn) -> int:
            return execute_values(c, _DELIVERIES_RELEASE, rows, (now_ms, now_ms))

        released = await self._db.write(run)
        if released:
            self._new_work()
        return released

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now_ms: int) -> None:
        def run(c: Conn) -> None:
            # Both must belong to the app: no foreign-key error, no cross-tenant delivery.
            for table, kind, ident in (
                ("messages", "message", msg_id),
                ("endpoints", "endpoint", endpoint_id),
            ):
                sql = f"SELECT 1 FROM {table} WHERE id = ? AND app_id = ?"
                if c.execute(sql, (ident, app_id)).fetchone() is None:
                    raise NotFound(kind, ident)
            c.execute(
                "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, "
                "trigger, due_at, next_attempt_at, updated_at) VALUES (?, ?, ?, 0, 0, 1, ?, ?, ?) "
                "ON CONFLICT (message_id, endpoint_id) DO UPDATE SET status = 0, trigger = 1, "
                "due_at = excluded.due_at, next_attempt_at = excluded.next_attempt_at, "
                "lease = NULL, updated_at = excluded.updated_at",
                (app_id, msg_id, endpoint_id, now_ms, now_ms, now_ms),
            )

        await self._db.write(run)
        self._new_work()

    async def recover(
        self, app_id: str, endpoint_id: str, since_ms: int, until_ms: int | None, now_ms: int
    ) -> int:
        def run(c: Conn) -> int:
            where = ["app_id = ?", "endpoint_id = ?", "status IN (3, 4)"]
            params: list[Any] = [app_id, endpoint_id]
            _id_range(where, params, "message_id", ids.MESSAGE, until_ms, since_ms - 1)
            cur = c.execute(
                "UPDATE deliveries SET status = 0, attempts = 0, trigger = 0, due_at = ?, "
                f"next_attempt_at = ?, lease = NULL, updated_at = ? WHERE {' AND '.join(where)}",
                [now_ms, now_ms, now_ms, *params],
            )
            return cur.rowcount

        recovered = await self._db.write(run)
        if recovered:
            self._new_work()
        return recovered

    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery:
        def run(c: Conn) -> Delivery:
            row = c.execute(
                "SELECT * FROM deliveries WHERE message_id = ? AND endpoint_id = ?",
                (msg_id, endpoint_id),
            ).fetchone()
            if row is None:
                raise NotFound("delivery", f"{msg_id}/{endpoint_id}")
            return delivery_from_row(row)

        return await self._db.read(run)

    async def queue_depth(self, now_ms: int) -> QueueDepth:
        def run(c: Conn) -> QueueDepth:
            due, oldest = c.execute(
                "SELECT count(*), min(due_at) FROM deliveries WHERE due_at <= ?", (now_ms,)
            ).fetchone()
            (scheduled,) = c.execute(
                "SELECT count(*) FROM deliveries WHERE due_at > ? AND status = 0", (now_ms,)
            ).fetchone()
            return QueueDepth(due=due, oldest_due_at=oldest, scheduled=scheduled)

        return await self._db.read(run)

    async def next_due_at(self) -> int | None:
        def run(c: Conn) -> int | None:
            row = c.execute("SELECT min(due_at) FROM deliveries WHERE due_at IS NOT NULL")
            due: int | None = row.fetchone()[0]
            return due

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
            _id_range(where, params, "id", ids.ATTEMPT, filt.before, filt.after)
            rows = _paged(c, "SELECT * FROM attempts", where, params, page, "id")
            return finish_page([attempt_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def get_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> Attempt:
        def run(c: Conn) -> Attempt:
            row = c.execute(
                "SELECT * FROM attempts WHERE app_id = ? AND message_id = ? AND id = ?",
                (app_id, msg_id, attempt_id),
            ).fetchone()
            if row is None:
                raise NotFound("attempt", attempt_id)
            return attempt_from_row(row)

        return await self._db.read(run)

    async def expunge_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> None:
        def run(c: Conn) -> None:
            cur = c.execute(
                "UPDATE attempts SET response = '' WHERE app_id = ? AND message_id = ? AND id = ?",
                (app_id, msg_id, attempt_id),
            )
            if cur.rowcount == 0:
                raise NotFound("attempt", attempt_id)

        await self._db.write(run)

    async def list_deliveries_for_message(
        self, app_id: str, msg_id: str, page: PageRequest
    ) -> Page[tuple[Delivery, Endpoint]]:
        def run(c: Conn) -> Page[tuple[Delivery, Endpoint]]:
            rows = _paged(
                c,
                "SELECT e.*, d.id AS d_id, d.app_id AS d_app_id, d.message_id AS d_message_id, "
                "d.endpoint_id AS d_endpoint_id, d.status AS d_status, d.attempts AS d_attempts, "
                "d.next_attempt_at AS d_next_attempt_at, d.updated_at AS d_updated_at "
                "FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id",
                ["d.app_id = ?", "d.message_id = ?"],
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
    ) -> Page[tuple[Delivery, Message]]:
        def run(c: Conn) -> Page[tuple[Delivery, Message]]:
            where: list[str] = ["d.app_id = ?", "d.endpoint_id = ?"]
            params: list[Any] = [app_id, endpoint_id]
            if status is not None:
                where.append("d.status = ?")
                params.append(int(status))
            rows = _paged(
                c,
                "SELECT m.*, d.id AS d_id, d.app_id AS d_app_id, d.message_id AS d_message_id, "
                "d.endpoint_id AS d_endpoint_id, d.status AS d_status, d.attempts AS d_attempts, "
                "d.next_attempt_at AS d_next_attempt_at, d.updated_at AS d_updated_at "
                "FROM deliveries d JOIN messages m ON m.id = d.message_id",
                where,
                params,
                page,
                "d.message_id",
            )
            items = [(delivery_from_row(r, "d_"), message_from_row(r)) for r in rows]
            return finish_page(items, page)

        return await self._db.read(run)

    async def endpoint_stats(
        self, app_id: str, endpoint_id: str, since_ms: int | None, until_ms: int | None
    ) -> EndpointStats:
        def run(c: Conn) -> EndpointStats:
            where, params = ["app_id = ?", "endpoint_id = ?"], [app_id, endpoint_id]
            after = None if since_ms is None else since_ms - 1
            _id_range(where, params, "message_id", ids.MESSAGE, until_ms, after)
            counts = dict(
                c.execute(
                    f"SELECT status, count(*) FROM deliveries WHERE {' AND '.join(where)} "
                    "GROUP BY status",
                    params,
                ).fetchall()
            )
            return stats_from_counts(counts)

        return await self._db.read(run)

    # -- tokens and idempotency --------------------------------------------------------------
    async def create_token(self, token: ApiToken) -> None:
        t = token

        def run(c: Conn) -> None:
            try:
                c.execute(
                    "INSERT INTO api_tokens (id, token_hash, app_id, name, created_at, "
                    "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (t.id, t.token_hash, t.app_id, t.name, t.created_at, t.expires_at),
                )
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
                    raise NotFound("application", t.app_id or "") from None
                raise conflict(exc, "this token") from None

        await self._db.write(run)

    async def find_token(self, token_hash: str) -> ApiToken | None:
        def run(c: Conn) -> ApiToken | None:
            row = c.execute(
                "SELECT * FROM api_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            return None if row is None else token_from_row(row)

        return await self._db.read(run)

    async def delete_token(self, token_hash: str) -> bool:
        def run(c: Conn) -> bool:
            cur = c.execute("DELETE FROM api_tokens WHERE token_hash = ?", (token_hash,))
            return cur.rowcount > 0

        return await self._db.write(run)

    async def count_admin_tokens(self) -> int:
        def run(c: Conn) -> int:
            row = c.execute("SELECT count(*) FROM api_tokens WHERE app_id IS NULL").fetchone()
            return int(row[0])

        return await self._db.read(run)

    async def any_sealed_keys(self) -> str | None:
        def run(c: Conn) -> str | None:
            row = c.execute("SELECT keys FROM endpoints LIMIT 1").fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(run)

    async def get_idempotent(self, scope: str, key: str, now_ms: int) -> tuple[int, bytes] | None:
        def run(c: Conn) -> tuple[int, bytes] | None:
            row = c.execute(
                "SELECT status, body FROM idempotency_keys "
                "WHERE scope = ? AND key = ? AND expires_at > ?",
                (scope, key, now_ms),
            ).fetchone()
            return None if row is None else (row[0], bytes(row[1]))

        return await self._db.read(run)

    async def put_idempotent(
        self, scope: str, key: str, status: int, body: bytes, expires_at: int, now_ms: int
    ) -> tuple[int, bytes] | None:
        def run(c: Conn) -> tuple[int, bytes] | None:
            cur = c.execute(_ANSWER_PUT_FIRST, (scope, key, status, body, expires_at, now_ms))
            if cur.rowcount:
                return None
            row = c.execute(
                "SELECT status, body FROM idempotency_keys WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
            return (row[0], bytes(row[1]))

        return await self._db.write(run)
