"""PostgreSQL's DeliveryQueue: claim with SKIP LOCKED, finish and release in batches."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import astuple
from operator import itemgetter
from typing import Any

import asyncpg
import orjson

from hookpost.domain.health import Health, replay
from hookpost.domain.models import (
    AttemptResult,
    AttemptStatus,
    ClaimedDelivery,
    DeliveryOptions,
    DeliveryStatus,
    Trigger,
)
from hookpost.domain.operational import OperationalEvent, applied, auto_disabled, fail_since
from hookpost.domain.ordering import head_left
from hookpost.domain.queries import FinishOutcome, QueueDepth
from hookpost.domain.scheduling import ClaimRounds, Head, Share
from hookpost.domain.stats import late_hours
from hookpost.domain.throttle import Pace
from hookpost.store.postgres import sql
from hookpost.store.postgres.core import PostgresBase, command_status_count
from hookpost.store.postgres.errors import wrap_exceptions
from hookpost.store.postgres.outbox import write_events
from hookpost.store.rows import (
    HEALTH_FIELDS,
    SEALED_HEADER_JSON,
    KeyOpener,
    attempt_values,
    decode_claimed,
    loads_opt,
    open_headers,
)

_FINISH_RACES = frozenset({"attempts_endpoint_id_fkey", "attempts_message_id_fkey"})


class PostgresQueue(PostgresBase):
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
        exclude_deliveries: Sequence[int] = (),
    ) -> list[ClaimedDelivery]:
        if limit <= 0:
            return []
        now = () if self._sql.database_clock else (now_ms,)
        found = await self._db.fetch(self._sql.claim_heads, *now)
        heads = [
            Head(
                r["endpoint_id"],
                r["due_at"],
                r["disabled"],
                None if r["throttle_rate"] is None else Pace(r["throttle_rate"], r["throttle_at"]),
            )
            for r in found
        ]
        # A throttled endpoint's slots are on the due times' clock (the database's).
        clock = found[0]["now"] if found else now_ms
        rounds = ClaimRounds(heads, limit, max_per_endpoint, in_flight, exclude_endpoints, clock)
        lease = secrets.token_hex(8)
        rows: list[asyncpg.Record] = []
        shares = rounds.first
        while shares:
            try:
                taken = await self._take(shares, now_ms, lease_ms, lease, exclude_deliveries, clock)
            except Exception:
                if not rows:
                    raise
                break  # a top-up failed: the rows already leased are delivered now
            rows += taken
            shares = rounds.next(r["endpoint_id"] for r in taken)
        rows = rounds.order(rows, itemgetter("endpoint_id"))
        opener = KeyOpener(self._box)
        return decode_claimed(rows, lambda r: self._claimed(r, lease, opener), itemgetter("id"))

    async def _take(
        self,
        shares: Sequence[Share],
        now_ms: int,
        lease_ms: int,
        lease: str,
        exclude_deliveries: Sequence[int],
        clock: float,
    ) -> list[asyncpg.Record]:
        """One round of a claim: lease the shares' rows, cancel the canceled shares', and move
        the throttled shares' paces (sql.CLAIM)."""
        paced = [(s.endpoint_id, s.pace) for s in shares if s.pace is not None]
        canceled = [s.endpoint_id for s in shares if s.cancel]
        rows: list[asyncpg.Record] = await self._db.fetch(
            self._sql.claim_canceling if canceled else self._sql.claim,
            now_ms,
            [s.endpoint_id for s in shares],
            [s.take for s in shares],
            lease_ms,
            lease,
            list(exclude_deliveries),
            canceled,
            [endpoint_id for endpoint_id, _ in paced],
            [pace.throttle_at for _, pace in paced],
            [pace.base(clock) for _, pace in paced],
            [pace.interval_ms for _, pace in paced],
        )
        if canceled:  # an ordered one's parked rows go with its head (domain.ordering)
            await self._db.execute(sql.ORDER_CANCEL_PARKED, now_ms, canceled)
        return rows

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
            headers=orjson.loads(r["headers"])
            if SEALED_HEADER_JSON not in r["headers"]
            else open_headers(self._box, r["headers"], r["endpoint_id"]),
            keys=open_keys(r["keys"], r["endpoint_id"]),
            signature_scheme=r["signature_scheme"],
            retry_schedule=loads_opt(r["retry_schedule"]),
            due_at=r["due_at"],
            signature_header=r["signature_header"],
            ordered=r["ordered"],
        )

    @wrap_exceptions
    async def finish_attempts(
        self,
        results: Sequence[AttemptResult],
        now_ms: int,
        disable_after_ms: int,
        disable_after_failures: int = 0,
        notify: Sequence[OperationalEvent] = (),
    ) -> FinishOutcome:
        results = list(results)
        outcome = await self._finish(
            results, now_ms, disable_after_ms, disable_after_failures, notify
        )
        # Ordered endpoints whose head finished: the next one goes (domain.ordering), settled
        # after the commit, in a transaction of its own (no lock held across both).
        heads_left = {
            r.attempt.endpoint_id for r in results if r.ordered and head_left(r.next_status)
        }
        if heads_left:
            await self._settle(heads_left, now_ms)
        return outcome

    async def _finish(
        self,
        results: list[AttemptResult],
        now_ms: int,
        disable_after_ms: int,
        disable_after_failures: int,
        notify: Sequence[OperationalEvent],
    ) -> FinishOutcome:
        if not results:
            return FinishOutcome(disabled_endpoints=[], stale=0)
        # Column-wise parameters for unnest(): attempts, then the deliveries' next states.
        rows = [attempt_values(r.attempt) for r in results]
        columns = [list(column) for column in zip(*rows, strict=True)]
        args: list[Any] = columns[:-1]
        headers = columns[-1]
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
        args.append(headers)  # $20, the attempts' last column (sql._ATT_CTE)
        failing = {
            r.attempt.endpoint_id for r in results if r.attempt.status != AttemptStatus.SUCCESS
        }
        # Rare: attempts written so late that their hour may be rolled up (domain.stats).
        late = late_hours((r.attempt for r in results), now_ms)

        if not failing and notify:  # recovered deliveries: with their events, in a transaction

            async def successes_notified() -> FinishOutcome:
                async with self._db.acquire() as conn, conn.transaction():
                    row = await conn.fetchrow(self._sql.finish_successes, *args)
                    await _mark_late(conn, late)
                    notified = await write_events(conn, self._sql, notify)
                stale = len(results) - row["updated"]
                return FinishOutcome(disabled_endpoints=[], stale=stale, notified=notified)

            return self._notified(await self._retrying(successes_notified, _FINISH_RACES))
        if not failing:
            # One statement, one round trip: the common case of a healthy batch.
            async def successes() -> FinishOutcome:
                if late:
                    async with self._db.acquire() as conn, conn.transaction():
                        row = await conn.fetchrow(self._sql.finish_successes, *args)
                        await _mark_late(conn, late)
                else:
                    row = await self._db.fetchrow(self._sql.finish_successes, *args)
                return FinishOutcome(disabled_endpoints=[], stale=len(results) - row["updated"])

            return await self._retrying(successes, _FINISH_RACES)

        async def with_failures() -> FinishOutcome:
            async with self._db.acquire() as conn, conn.transaction():
                rows = await conn.fetch(self._sql.finish_with_failures, *args, sorted(failing))
                await _mark_late(conn, late)
                finished = set(rows[0]["finished"])  # the results whose lease was held
                states = {
                    r["id"]: Health(*(r[c] for c in HEALTH_FIELDS))
                    for r in rows
                    if r["id"] is not None
                }
                changed, disabled = replay(
                    states,
                    (r for r in results if r.attempt.id in finished),
                    now_ms,
                    disable_after_ms,
                    disable_after_failures,
                )
                if changed:
                    await conn.execute(
                        sql.ENDPOINT_HEALTH_UPDATE,
                        list(changed),
                        *map(list, zip(*map(astuple, changed.values()), strict=True)),
                    )
                lost = {r.attempt.id for r in results if r.attempt.id not in finished}
                events = [
                    *applied(notify, lost),
                    *auto_disabled(disabled, fail_since(changed, disabled), now_ms),
                ]
                return FinishOutcome(
                    disabled_endpoints=disabled,
                    stale=len(results) - rows[0]["updated"],
                    notified=await write_events(conn, self._sql, events),
                )

        return self._notified(await self._retrying(with_failures, _FINISH_RACES))

    def _notified(self, outcome: FinishOutcome) -> FinishOutcome:
        if outcome.notified:
            self._notifier.poke()
        return outcome

    @wrap_exceptions
    async def release(self, leases: Sequence[tuple[int, str]], now_ms: int) -> int:
        if not leases:
            return 0
        status = await self._db.execute(
            self._sql.release, now_ms, [d for d, _ in leases], [lease for _, lease in leases]
        )
        released = command_status_count(status)
        if released:
            self._notifier.poke()
        return released

    @wrap_exceptions
    async def renew(self, leases: Sequence[tuple[int, str]], lease_ms: int, now_ms: int) -> int:
        if not leases:
            return 0
        args: list[Any] = [lease_ms, [d for d, _ in leases], [lease for _, lease in leases]]
        if not self._sql.database_clock:
            args.append(now_ms)
        return command_status_count(await self._db.execute(self._sql.renew, *args))

    @wrap_exceptions
    async def queue_depth(self, now_ms: int) -> QueueDepth:
        row = await self._db.fetchrow(self._sql.queue_depth, now_ms)
        return QueueDepth(due=row["due"], oldest_due_at=row["oldest"], scheduled=row["scheduled"])

    @wrap_exceptions
    async def settle_ordered(self, now_ms: int) -> int:
        unsettled = [r[0] for r in await self._db.fetch(sql.ORDER_UNSETTLED)]
        return await self._settle(unsettled, now_ms) if unsettled else 0

    @wrap_exceptions
    async def delivery_options(self) -> DeliveryOptions:
        types = await self._db.fetch(sql.OPTION_TYPE_SCHEDULES)
        timeouts = await self._db.fetch(sql.OPTION_TIMEOUTS)
        traceparent = await self._db.fetch(sql.OPTION_TRACEPARENT)
        return DeliveryOptions(
            type_schedules={r[0]: tuple(orjson.loads(r[1])) for r in types},
            endpoint_timeouts={r[0]: r[1] for r in timeouts},
            endpoint_traceparent={r[0]: r[1] for r in traceparent},
        )

    @wrap_exceptions
    async def next_due_at(self, now_ms: int | None = None) -> int | None:
        if now_ms is None:
            due: int | None = await self._db.fetchval(sql.NEXT_DUE)
        else:
            due = await self._db.fetchval(self._sql.next_due_for, now_ms)
        return due


async def _mark_late(conn: asyncpg.Connection, late: list[tuple[str, int]]) -> None:
    """Mark the hours of late attempts dirty, in the finish's transaction (domain.stats)."""
    if late:
        await conn.execute(sql.STATS_DIRTY, *map(list, zip(*late, strict=True)))
