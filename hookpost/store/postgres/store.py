"""The PostgreSQL backend: many API and worker processes on one database.

PostgreSQL is both the store and the queue: workers claim due deliveries with
``FOR UPDATE SKIP LOCKED`` and are woken by ``LISTEN/NOTIFY``. The behaviour mirrors the
SQLite backend (``tests/contract`` holds both to it); what differs is how:

* hot paths are one statement (one round trip, one implicit transaction) where possible:
  creating a message with its deliveries, claiming, releasing, resending, recording a batch
  of successful attempts;
* ``filters_match`` is the one definition of which endpoints receive a message. The
  one-statement create mirrors it in SQL for the filters SQL can evaluate exactly (a contract
  test holds the two to the same answers); when an endpoint of the app has any other filter,
  the message is created by an explicit transaction of two statements (insert the message
  and read the app's endpoints; insert the deliveries) with the matching done in Python;
* workers are woken by a NOTIFY sent right after the commit, not inside the transaction (see
  ``listener.Notifier`` for the measurement behind that);
* driver errors are translated once, by ``wrap_exceptions`` on every public method.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeVar

import asyncpg
import orjson

from hookpost.domain import ids
from hookpost.domain.errors import NotFound, StaleWrite
from hookpost.domain.matching import filters_match
from hookpost.domain.models import (
    ApiToken,
    Application,
    Attempt,
    AttemptResult,
    AttemptStatus,
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
from hookpost.store.postgres import sql
from hookpost.store.postgres.batching import GroupCommit
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.postgres.health import Health, replay
from hookpost.store.postgres.listener import Notifier, NotifyListener
from hookpost.store.rows import (
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
    endpoint_values,
    event_type_from_row,
    loads_opt,
    message_from_row,
    stats_from_counts,
    token_from_row,
)

log = logging.getLogger("hookpost.store.postgres")

T = TypeVar("T")


APPLICATION_NAME = "hookpost"
# Retried inside the store (whole transactions, so a retry starts from scratch): a deadlock
# victim, or a row deleted between the moment it was read and the moment a new row referring
# to it was written, which the retry then sees as gone.
_RETRIES = 3
_MESSAGE_RACES = frozenset({"deliveries_endpoint_id_fkey"})
_FINISH_RACES = frozenset({"attempts_endpoint_id_fkey", "attempts_message_id_fkey"})
# Errors that prove PostgreSQL refused a batch of creates because of its content (so it wrote
# nothing, and each message may be created alone): constraint violations, deadlock or
# serialization failures, invalid data.
_BATCH_REJECTED = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.DataError,
)


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Pool reset hook. The default one runs ``RESET ALL; UNLISTEN *; ...`` on every release,
    a round trip per operation for session state this store never sets. asyncpg still rolls
    back a transaction left open (``Connection._reset``) before calling this."""


class _Fallback:
    """A sentinel: the one-statement create_message wrote nothing; match in Python."""


_FALLBACK = _Fallback()


def _message_args(m: Message, channels: str | None) -> tuple[Any, ...]:
    """$1-$7 of both message inserts (sql.MESSAGE_CREATE* and sql.MESSAGE_INSERT)."""
    return (m.id, m.app_id, m.event_type, m.event_id, channels, m.payload, m.created_at)


def _command_status_count(status: str) -> int:
    """Rows affected, from a command tag such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class _Args(list[Any]):
    """Query parameters that hand out their own ``$n`` placeholders."""

    def add(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


def _id_range(
    where: list[str],
    args: _Args,
    column: str,
    prefix: str,
    before: int | None,
    after: int | None,
) -> None:
    """Time bounds as id bounds: ids sort by creation time, so no extra index is needed."""
    if before is not None:
        where.append(f"{column} < {args.add(ids.id_floor(prefix, before))}")
    if after is not None:
        where.append(f"{column} >= {args.add(ids.id_floor(prefix, after + 1))}")


def _paged_query(base: str, where: list[str], args: _Args, page: PageRequest, column: str) -> str:
    cond, order, fetch = keyset(page, column, f"${len(args) + 1}")
    if cond:
        args.append(page.iterator)
        where = [*where, cond]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{base}{clause} ORDER BY {order} LIMIT {args.add(fetch)}"


class PostgresStore:
    def __init__(
        self,
        dsn: str,
        box: SecretBox,
        *,
        min_size: int = 2,
        max_size: int = 10,
        command_timeout: float | None = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.dsn = dsn
        self._box = box
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout = command_timeout
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._listener = NotifyListener(
            dsn, sql.NOTIFY_CHANNEL, self._callbacks, connect_timeout=connect_timeout
        )
        self._notifier = Notifier(lambda query: self._db.execute(query), sql.NOTIFY_CHANNEL)
        self._create_batch: GroupCommit[
            tuple[Message, str | None, int, StoredAnswer | None], CreatedMessage | _Fallback
        ]
        self._create_batch = GroupCommit(self._create_many)

    def on_new_work(self, callback: Callable[[], None]) -> None:
        # The listener connection is opened by open() and reads this list on every
        # notification, so a callback registered before or after open() is heard alike.
        self._callbacks.append(callback)

    @property
    def listener(self) -> NotifyListener:
        return self._listener

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not open")
        return self._pool

    # -- lifecycle ---------------------------------------------------------------------------
    @wrap_exceptions
    async def open(self) -> None:
        # A pool connection that breaks (database restart) is closed by asyncpg and replaced
        # by a new one on the next acquire; the failing call raises StoreUnavailable.
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            command_timeout=self._command_timeout,
            timeout=self._connect_timeout,
            reset=_no_reset,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            await self._listener.start()
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        await self._notifier.close()
        await self._listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self._connect_timeout)
            except Exception:
                pool.terminate()

    @wrap_exceptions
    async def ping(self) -> None:
        await self._db.fetchval("SELECT 1")

    async def _retrying(
        self, op: Callable[[], Awaitable[T]], fk_races: frozenset[str] = frozenset()
    ) -> T:
        for attempt in range(1, _RETRIES + 1):
            try:
                return await op()
            except asyncpg.exceptions.TransactionRollbackError as exc:
                if attempt == _RETRIES:
                    raise
                log.debug("retrying after %s", exc)
            except asyncpg.ForeignKeyViolationError as exc:
                if attempt == _RETRIES or exc.constraint_name not in fk_races:
                    raise
                log.debug("retrying after %s", exc)
        raise AssertionError("unreachable")

    # -- applications ------------------------------------------------------------------------
    @wrap_exceptions
    async def create_app(self, app: Application) -> Application:
        await self._db.execute(
            sql.APP_INSERT,
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
        row = await self._db.fetchrow(sql.APP_GET, app_id_or_uid)
        if row is None:
            raise NotFound("application", app_id_or_uid)
        return app_from_row(row)

    @wrap_exceptions
    async def list_apps(self, page: PageRequest) -> Page[Application]:
        args = _Args()
        query = _paged_query("SELECT * FROM applications", [], args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([app_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def update_app(self, app: Application) -> Application:
        status = await self._db.execute(
            sql.APP_UPDATE,
            app.id,
            app.uid,
            app.name,
            dumps(app.metadata),
            app.throttle_rate,
            app.updated_at,
        )
        if _command_status_count(status) == 0:
            raise NotFound("application", app.id)
        return app

    @wrap_exceptions
    async def delete_app(self, app_id: str) -> None:
        if _command_status_count(await self._db.execute(sql.APP_DELETE, app_id)) == 0:
            raise NotFound("application", app_id)

    # -- event types -------------------------------------------------------------------------
    @wrap_exceptions
    async def create_event_type(self, event_type: EventType) -> EventType:
        et = event_type
        await self._db.execute(
            sql.EVENT_TYPE_INSERT,
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
        row = await self._db.fetchrow(sql.EVENT_TYPE_GET, name)
        if row is None:
            raise NotFound("event type", name)
        return event_type_from_row(row)

    @wrap_exceptions
    async def list_event_types(
        self, page: PageRequest, include_archived: bool = False
    ) -> Page[EventType]:
        args = _Args()
        where = [] if include_archived else ["NOT archived"]
        query = _paged_query("SELECT * FROM event_types", where, args, page, "name")
        rows = await self._db.fetch(query, *args)
        return finish_page([event_type_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def update_event_type(self, event_type: EventType) -> EventType:
        et = event_type
        status = await self._db.execute(
            sql.EVENT_TYPE_UPDATE,
            et.name,
            et.description,
            dumps_opt(et.schemas),
            et.archived,
            et.deprecated,
            et.feature_flag,
            et.updated_at,
        )
        if _command_status_count(status) == 0:
            raise NotFound("event type", et.name)
        return et

    @wrap_exceptions
    async def delete_event_type(self, name: str) -> None:
        if _command_status_count(await self._db.execute(sql.EVENT_TYPE_DELETE, name)) == 0:
            raise NotFound("event type", name)

    # -- endpoints ---------------------------------------------------------------------------
    @wrap_exceptions
    async def create_endpoint(self, endpoint: Endpoint) -> Endpoint:
        values = endpoint_values(endpoint, self._box)
        await self._db.execute(sql.ENDPOINT_INSERT, *(values[c] for c in ENDPOINT_COLUMNS))
        return endpoint

    @wrap_exceptions
    async def get_endpoint(self, app_id: str, endpoint_id_or_uid: str) -> Endpoint:
        row = await self._db.fetchrow(sql.ENDPOINT_GET, app_id, endpoint_id_or_uid)
        if row is None:
            raise NotFound("endpoint", endpoint_id_or_uid)
        return endpoint_from_row(row, self._box)

    @wrap_exceptions
    async def list_endpoints(self, app_id: str, page: PageRequest) -> Page[Endpoint]:
        args = _Args()
        where = [f"app_id = {args.add(app_id)}"]
        query = _paged_query("SELECT * FROM endpoints", where, args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([endpoint_from_row(r, self._box) for r in rows], page)

    @wrap_exceptions
    async def update_endpoint(
        self, endpoint: Endpoint, expected_updated_at: int | None = None
    ) -> Endpoint:
        values = endpoint_values(endpoint, self._box)
        status = await self._db.execute(
            sql.ENDPOINT_UPDATE,
            *(values[c] for c in sql.ENDPOINT_UPDATE_COLUMNS),
            expected_updated_at,
        )
        if _command_status_count(status) == 0:
            if await self._db.fetchval(sql.ENDPOINT_EXISTS, endpoint.app_id, endpoint.id):
                raise StaleWrite(f"endpoint {endpoint.id} changed since it was read")
            raise NotFound("endpoint", endpoint.id)
        return endpoint

    @wrap_exceptions
    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> None:
        status = await self._db.execute(sql.ENDPOINT_DELETE, app_id, endpoint_id)
        if _command_status_count(status) == 0:
            raise NotFound("endpoint", endpoint_id)

    # -- messages ----------------------------------------------------------------------------
    @wrap_exceptions
    async def create_message(
        self,
        message: Message,
        now_ms: int,
        endpoint_ids: Sequence[str] | None = None,
        answer: StoredAnswer | None = None,
    ) -> CreatedMessage:
        m = message
        channels = dumps_opt(m.channels)
        only = None if endpoint_ids is None else list(endpoint_ids)
        # A NUL cannot be a text[] element (the JSON column escapes it): match in Python.
        one_statement = not any("\x00" in c for c in m.channels or ())

        if one_statement and only is None:
            created = await self._create_batch.submit((m, channels, now_ms, answer))
            if isinstance(created, CreatedMessage):  # its key checked and answer stored too
                if created.deliveries:
                    self._notifier.poke()
                return created
            # Its app needs Python matching, its eventId is taken, or the batch's statement
            # failed (and wrote nothing): this message alone, the way that handles each case.
        if answer is not None:
            # Not in the message's statement here: two processes sending one key at the same
            # moment can both create (on SQLite the write lock rules that out).
            stored = await self.get_idempotent(answer.scope, answer.key, now_ms)
            if stored is not None:
                return CreatedMessage(message, created=False, deliveries=0, replayed=stored)
        created = await self._create_alone(m, channels, now_ms, only, one_statement)
        if answer is not None and created.created:
            # After the message's own statement (a crash in between leaves the message
            # without its stored answer).
            a = answer
            try:
                # If another process answered the key first, its answer stays; the message
                # is created all the same, and our 202 says so.
                await self.put_idempotent(a.scope, a.key, a.status, a.body, a.expires_at, now_ms)
            except Exception:  # the message is accepted: say so (a 5xx would make it resent)
                log.warning("could not store the idempotency key of message %s", message.id)
        return created

    async def _create_alone(
        self,
        m: Message,
        channels: str | None,
        now_ms: int,
        only: list[str] | None,
        one_statement: bool,
    ) -> CreatedMessage:
        async def run() -> CreatedMessage | None:
            if one_statement:
                created = await self._create_in_one_statement(m, channels, now_ms, only)
                if not isinstance(created, _Fallback):
                    return created
            return await self._create_in_transaction(m, channels, now_ms, only)

        for _ in range(_RETRIES):
            result = await self._retrying(run, _MESSAGE_RACES)
            if result is not None:
                if result.deliveries:
                    self._notifier.poke()
                return result
        raise NotFound("message", m.event_id or m.id)

    async def _create_many(
        self, batch: list[tuple[Message, str | None, int, StoredAnswer | None]]
    ) -> list[CreatedMessage | _Fallback]:
        """The group commit of concurrent creates (``self._create_batch``): one statement for
        the whole batch. Answers ``_FALLBACK`` for each message the caller must create alone:
        one whose app needs Python matching or whose eventId is taken, or all of them when
        PostgreSQL rejected the statement for something in the batch (``_BATCH_REJECTED``: it
        then wrote nothing; a deadlock between two batches sharing eventIds, an endpoint
        deleted meanwhile). Any other failure (the connection, which asyncpg also reports as
        a PostgresError, a shutdown, a timeout) may come after the commit: it is raised to
        every caller, as it would be without batching, and never retried one by one (that
        would insert an accepted message a second time)."""
        if len(batch) == 1 and batch[0][3] is None:
            # Alone (light load): the single-message statement, ~30% cheaper than the
            # batch statement for one row (measured with 3,000 sequential creates).
            m, channels, now_ms, _ = batch[0]
            try:
                created = await self._create_in_one_statement(m, channels, now_ms, None)
            except _BATCH_REJECTED:
                return [_FALLBACK]
            return [_FALLBACK if created is None else created]
        results: list[CreatedMessage | _Fallback] = [_FALLBACK] * len(batch)
        # One key twice in a statement would fail it (ON CONFLICT updates a row once): a
        # repeat goes alone, after this batch, and finds the first one's answer.
        keys: set[tuple[str, str]] = set()
        taken: list[int] = []
        columns: tuple[list[Any], ...] = tuple([] for _ in range(13))
        for i, (m, channels, now_ms, answer) in enumerate(batch):
            if answer is not None:
                if (answer.scope, answer.key) in keys:
                    continue
                keys.add((answer.scope, answer.key))
                a: tuple[Any, ...] = (
                    answer.scope,
                    answer.key,
                    answer.status,
                    answer.body,
                    answer.expires_at,
                )
            else:
                a = (None,) * 5
            taken.append(i)
            values = (*_message_args(m, channels), now_ms, *a)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        args = (*columns[:8], list(set(columns[1])), *columns[8:])
        try:
            if keys:
                rows = await self._create_many_keyed(sorted(f"{s}\n{k}" for s, k in keys), args)
            else:
                rows = await self._db.fetch(sql.MESSAGE_CREATE_MANY, *args)
        except _BATCH_REJECTED as exc:
            log.debug("batch of %d creates falls back to one by one: %s", len(batch), exc)
            return results
        for i, row in zip(taken, rows, strict=True):
            m = batch[i][0]
            if row["replay_status"] is not None:
                replayed = (row["replay_status"], bytes(row["replay_body"]))
                results[i] = CreatedMessage(m, created=False, deliveries=0, replayed=replayed)
            elif row["inserted"] and not row["fallback"]:
                results[i] = CreatedMessage(m, created=True, deliveries=row["deliveries"])
        return results

    async def _create_many_keyed(self, locks: list[str], args: tuple[Any, ...]) -> list[Any]:
        """MESSAGE_CREATE_MANY after taking its idempotency keys' locks (sql.IDEMPOTENCY_LOCK):
        without them, two processes sending one key at once would both find it unanswered
        and both create the message. One transaction: two more round trips per batch."""
        async with self._db.acquire() as conn, conn.transaction():
            await conn.execute(sql.IDEMPOTENCY_LOCK, locks)
            return list(await conn.fetch(sql.MESSAGE_CREATE_MANY, *args))

    async def _create_in_one_statement(
        self, m: Message, channels: str | None, now_ms: int, only: list[str] | None
    ) -> CreatedMessage | _Fallback | None:
        """The common case: one round trip. ``_FALLBACK`` (nothing written) when an endpoint
        of the app has a filter only Python can evaluate."""
        # $9 is what the deliveries are chosen by: the channels to match, or the endpoints.
        if only is None:
            query, chosen_by = sql.MESSAGE_CREATE, m.channels or []
        else:
            query, chosen_by = sql.MESSAGE_CREATE_FOR, only
        row = await self._db.fetchrow(query, *_message_args(m, channels), now_ms, chosen_by)
        if row["fallback"]:
            return _FALLBACK
        if not row["inserted"]:
            return await self._first_with_event_id(self._db, m)
        return CreatedMessage(m, created=True, deliveries=row["deliveries"])

    async def _create_in_transaction(
        self, m: Message, channels: str | None, now_ms: int, only: list[str] | None
    ) -> CreatedMessage | None:
        """Matching in Python (``filters_match``): insert the message and read the app's
        endpoints, then insert the deliveries, in one transaction."""
        async with self._db.acquire() as conn, conn.transaction():
            rows = await conn.fetch(sql.MESSAGE_INSERT, *_message_args(m, channels))
            if not rows:  # the eventId is taken: return the first message
                return await self._first_with_event_id(conn, m)
            wanted = None if only is None else set(only)
            targets = [
                r["id"]
                for r in rows
                if r["id"] is not None
                and (
                    r["id"] in wanted
                    if wanted is not None
                    else filters_match(
                        loads_opt(r["event_types"]),
                        loads_opt(r["channels"]),
                        m.event_type,
                        m.channels,
                    )
                )
            ]
            created = 0
            if targets:
                status = await conn.execute(sql.DELIVERIES_INSERT, m.app_id, m.id, targets, now_ms)
                created = _command_status_count(status)
            return CreatedMessage(m, created=True, deliveries=created)

    @staticmethod
    async def _first_with_event_id(
        db: asyncpg.Pool | asyncpg.Connection, m: Message
    ) -> CreatedMessage | None:
        """The message that took ``m``'s eventId, or None if it was deleted since (the caller
        tries again)."""
        row = await db.fetchrow(sql.MESSAGE_BY_EVENT_ID, m.app_id, m.event_id)
        if row is None:
            return None
        return CreatedMessage(message_from_row(row), created=False, deliveries=0)

    @wrap_exceptions
    async def get_message(self, app_id: str, msg_id_or_event_id: str) -> Message:
        row = await self._db.fetchrow(sql.MESSAGE_GET, app_id, msg_id_or_event_id)
        if row is None:
            raise NotFound("message", msg_id_or_event_id)
        return message_from_row(row)

    @wrap_exceptions
    async def list_messages(
        self, app_id: str, page: PageRequest, filt: MessageFilter
    ) -> Page[Message]:
        args = _Args()
        where = [f"app_id = {args.add(app_id)}"]
        if filt.event_types:
            where.append(f"event_type = ANY({args.add(list(filt.event_types))}::text[])")
        if filt.channel is not None:
            # channels is a JSON array of strings; `?` tests for one of its elements.
            where.append(f"channels::jsonb ? {args.add(filt.channel)}")
        _id_range(where, args, "id", ids.MESSAGE, filt.before, filt.after)
        query = _paged_query("SELECT * FROM messages", where, args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([message_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def expunge_message(self, app_id: str, msg_id: str) -> None:
        status = await self._db.execute(sql.MESSAGE_EXPUNGE, app_id, msg_id, b"{}")
        if _command_status_count(status) == 0:
            raise NotFound("message", msg_id)

    # -- the delivery queue ------------------------------------------------------------------
    @wrap_exceptions
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
        if limit <= 0:
            return []
        lease = secrets.token_hex(8)
        busy = in_flight or {}
        rows = await self._db.fetch(
            sql.CLAIM,
            now_ms,
            limit,
            list(exclude_endpoints),
            lease_ms,
            lease,
            list(busy),
            list(busy.values()),
            max_per_endpoint,
            NO_LOWER_BOUND if due_from is None else due_from,
        )
        opener = KeyOpener(self._box)
        return decode_claimed(rows, lambda r: self._claimed(r, lease, opener), itemgetter("id"))

    def _claimed(self, r: asyncpg.Record, lease: str, open_keys: KeyOpener) -> ClaimedDelivery:
        return ClaimedDelivery(
            delivery_id=r["id"],
            lease=lease,
            app_id=r["app_id"],
            message_id=r["message_id"],
            endpoint_id=r["endpoint_id"],
            event_type=r["event_type"],
            payload=r["payload"],
            msg_created_at=r["msg_created_at"],
            attempts=r["attempts"],
            trigger=Trigger(r["trigger"]),
            url=r["url"],
            headers=orjson.loads(r["headers"]),
            keys=open_keys(r["keys"]),
            signature_scheme=r["signature_scheme"],
            retry_schedule=loads_opt(r["retry_schedule"]),
            due_at=r["due_at"],
        )

    @wrap_exceptions
    async def finish_attempts(
        self, results: Sequence[AttemptResult], now_ms: int, disable_after_ms: int
    ) -> FinishOutcome:
        results = list(results)
        if not results:
            return FinishOutcome(disabled_endpoints=[], stale=0)
        # Column-wise parameters for unnest(): attempts, then the deliveries' next states.
        rows = [attempt_values(r.attempt) for r in results]
        args: list[Any] = [list(column) for column in zip(*rows, strict=True)]
        args.append(now_ms)
        args.append([r.delivery_id for r in results])
        args.append([r.lease for r in results])
        args.append([int(r.next_status) for r in results])
        args.append([r.attempts for r in results])
        args.append([r.next_attempt_at for r in results])
        args.append(
            [
                r.next_attempt_at if r.next_status == DeliveryStatus.PENDING else None
                for r in results
            ]
        )
        failing = sorted(
            {r.attempt.endpoint_id for r in results if r.attempt.status != AttemptStatus.SUCCESS}
        )
        every = sorted({r.attempt.endpoint_id for r in results})

        if not failing:
            # One statement, one round trip: the common case of a healthy batch.
            async def successes() -> FinishOutcome:
                row = await self._db.fetchrow(sql.FINISH_SUCCESSES, *args, every)
                return FinishOutcome(disabled_endpoints=[], stale=len(results) - row["updated"])

            return await self._retrying(successes, _FINISH_RACES)

        async def with_failures() -> FinishOutcome:
            async with self._db.acquire() as conn, conn.transaction():
                rows = await conn.fetch(sql.FINISH_WITH_FAILURES, *args, failing, every)
                inserted = set(rows[0]["inserted"])
                states = {
                    r["id"]: Health(
                        r["consecutive_failures"],
                        r["first_failure_at"],
                        r["disabled"],
                        r["disabled_reason"],
                        r["updated_at"],
                    )
                    for r in rows
                    if r["id"] is not None
                }
                changed, disabled = replay(
                    states,
                    (r for r in results if r.attempt.id in inserted),
                    now_ms,
                    disable_after_ms,
                )
                if changed:
                    await conn.execute(
                        sql.ENDPOINT_HEALTH_UPDATE,
                        list(changed),
                        [h.consecutive_failures for h in changed.values()],
                        [h.first_failure_at for h in changed.values()],
                        [h.disabled for h in changed.values()],
                        [h.disabled_reason for h in changed.values()],
                        [h.updated_at for h in changed.values()],
                    )
                return FinishOutcome(
                    disabled_endpoints=disabled, stale=len(results) - rows[0]["updated"]
                )

        return await self._retrying(with_failures, _FINISH_RACES)

    @wrap_exceptions
    async def release(self, leases: Sequence[tuple[int, str]], now_ms: int) -> int:
        if not leases:
            return 0
        status = await self._db.execute(
            sql.RELEASE, now_ms, [d for d, _ in leases], [lease for _, lease in leases]
        )
        released = _command_status_count(status)
        if released:
            self._notifier.poke()
        return released

    @wrap_exceptions
    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now_ms: int) -> None:
        for _ in range(_RETRIES):
            status = await self._db.execute(sql.RESEND, app_id, msg_id, endpoint_id, now_ms)
            if _command_status_count(status):
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
        self, app_id: str, endpoint_id: str, since_ms: int, until_ms: int | None, now_ms: int
    ) -> int:
        args = _Args([now_ms])
        where = [
            f"app_id = {args.add(app_id)}",
            f"endpoint_id = {args.add(endpoint_id)}",
            "status IN (3, 4)",
        ]
        _id_range(where, args, "message_id", ids.MESSAGE, until_ms, since_ms - 1)
        status = await self._db.execute(
            "UPDATE deliveries SET status = 0, attempts = 0, trigger = 0, due_at = $1, "
            f"next_attempt_at = $1, lease = NULL, updated_at = $1 WHERE {' AND '.join(where)}",
            *args,
        )
        recovered = _command_status_count(status)
        if recovered:
            self._notifier.poke()
        return recovered

    @wrap_exceptions
    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery:
        row = await self._db.fetchrow(sql.DELIVERY_GET, msg_id, endpoint_id)
        if row is None:
            raise NotFound("delivery", f"{msg_id}/{endpoint_id}")
        return delivery_from_row(row)

    @wrap_exceptions
    async def queue_depth(self, now_ms: int) -> QueueDepth:
        row = await self._db.fetchrow(sql.QUEUE_DEPTH, now_ms)
        return QueueDepth(due=row["due"], oldest_due_at=row["oldest"], scheduled=row["scheduled"])

    @wrap_exceptions
    async def next_due_at(self) -> int | None:
        due: int | None = await self._db.fetchval(sql.NEXT_DUE)
        return due

    # -- attempts and delivery views ---------------------------------------------------------
    @wrap_exceptions
    async def list_attempts(
        self, app_id: str, page: PageRequest, filt: AttemptFilter
    ) -> Page[Attempt]:
        args = _Args()
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
        _id_range(where, args, "id", ids.ATTEMPT, filt.before, filt.after)
        query = _paged_query("SELECT * FROM attempts", where, args, page, "id")
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
        if _command_status_count(status) == 0:
            raise NotFound("attempt", attempt_id)

    @wrap_exceptions
    async def list_deliveries_for_message(
        self, app_id: str, msg_id: str, page: PageRequest
    ) -> Page[tuple[Delivery, Endpoint]]:
        args = _Args()
        where = [f"d.app_id = {args.add(app_id)}", f"d.message_id = {args.add(msg_id)}"]
        query = _paged_query(sql.DELIVERIES_OF_MESSAGE, where, args, page, "d.endpoint_id")
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
    ) -> Page[tuple[Delivery, Message]]:
        args = _Args()
        where = [f"d.app_id = {args.add(app_id)}", f"d.endpoint_id = {args.add(endpoint_id)}"]
        if status is not None:
            where.append(f"d.status = {args.add(int(status))}")
        query = _paged_query(sql.DELIVERIES_OF_ENDPOINT, where, args, page, "d.message_id")
        rows = await self._db.fetch(query, *args)
        items = [(delivery_from_row(r, "d_"), message_from_row(r)) for r in rows]
        return finish_page(items, page)

    @wrap_exceptions
    async def endpoint_stats(
        self, app_id: str, endpoint_id: str, since_ms: int | None, until_ms: int | None
    ) -> EndpointStats:
        args = _Args()
        where = [f"app_id = {args.add(app_id)}", f"endpoint_id = {args.add(endpoint_id)}"]
        after = None if since_ms is None else since_ms - 1
        _id_range(where, args, "message_id", ids.MESSAGE, until_ms, after)
        rows = await self._db.fetch(
            f"SELECT status, count(*) AS n FROM deliveries WHERE {' AND '.join(where)} "
            "GROUP BY status",
            *args,
        )
        return stats_from_counts({r["status"]: r["n"] for r in rows})

    # -- tokens and idempotency --------------------------------------------------------------
    @wrap_exceptions
    async def create_token(self, token: ApiToken) -> None:
        t = token
        await self._db.execute(
            sql.TOKEN_INSERT, t.id, t.token_hash, t.app_id, t.name, t.created_at, t.expires_at
        )

    @wrap_exceptions
    async def find_token(self, token_hash: str) -> ApiToken | None:
        row = await self._db.fetchrow(sql.TOKEN_FIND, token_hash)
        return None if row is None else token_from_row(row)

    @wrap_exceptions
    async def delete_token(self, token_hash: str) -> bool:
        return _command_status_count(await self._db.execute(sql.TOKEN_DELETE, token_hash)) > 0

    @wrap_exceptions
    async def count_admin_tokens(self) -> int:
        count: int = await self._db.fetchval(sql.ADMIN_TOKENS)
        return count

    @wrap_exceptions
    async def any_sealed_keys(self) -> str | None:
        sealed: str | None = await self._db.fetchval("SELECT keys FROM endpoints LIMIT 1")
        return sealed

    @wrap_exceptions
    async def get_idempotent(self, scope: str, key: str, now_ms: int) -> tuple[int, bytes] | None:
        row = await self._db.fetchrow(sql.IDEMPOTENT_GET, scope, key, now_ms)
        return None if row is None else (row["status"], bytes(row["body"]))

    @wrap_exceptions
    async def put_idempotent(
        self, scope: str, key: str, status: int, body: bytes, expires_at: int, now_ms: int
    ) -> tuple[int, bytes] | None:
        written = await self._db.fetchval(
            sql.IDEMPOTENT_PUT, scope, key, status, body, expires_at, now_ms
        )
        if written is not None:
            return None
        # The answer there was committed before our statement skipped it (ON CONFLICT waits
        # for a concurrent insert of the key), so a new statement sees it.
        return await self.get_idempotent(scope, key, now_ms)
