"""SQLite's DeliveryQueue: claim, finish and release deliveries under the one write lock."""

from __future__ import annotations

import dataclasses
import math
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from operator import itemgetter

import orjson

from hookpost.domain.health import Health, last_successes, replay
from hookpost.domain.models import (
    AttemptResult,
    ClaimedDelivery,
    DeliveryOptions,
    DeliveryStatus,
    Trigger,
)
from hookpost.domain.operational import OperationalEvent, applied, auto_disabled, fail_since
from hookpost.domain.ordering import head_left
from hookpost.domain.queries import FinishOutcome, QueueDepth
from hookpost.domain.scheduling import ClaimRounds, Head
from hookpost.domain.stats import late_hours
from hookpost.domain.throttle import Pace
from hookpost.store.rows import (
    SEALED_HEADER_JSON,
    KeyOpener,
    attempt_values,
    decode_claimed,
    loads_opt,
    open_headers,
)
from hookpost.store.sqlite.core import Conn, SqliteBase
from hookpost.store.sqlite.multirow import execute_values
from hookpost.store.sqlite.ordering import settle_endpoints, unsettled
from hookpost.store.sqlite.outbox import write_events
from hookpost.store.sqlite.sql import (
    ATTEMPTS_INSERT,
    CANCELS_LOG,
    CLAIM,
    CLAIM_CANCELED,
    CLAIM_HEADS,
    CLAIM_NOT_HELD,
    CLAIM_ORDER,
    DELIVERIES_CANCEL,
    DELIVERIES_FINISH,
    DELIVERIES_LEASE,
    DELIVERIES_RELEASE,
    DELIVERIES_RENEW,
    ENDPOINTS_HEALTH,
    ENDPOINTS_HEALTH_UPDATE,
    ENDPOINTS_RESET,
    LEASES_HELD,
    NEXT_DUE,
    OPTION_TIMEOUTS,
    OPTION_TRACEPARENT,
    OPTION_TYPE_SCHEDULES,
    ORDER_CANCEL_PARKED,
    ORDER_CANCEL_PARKED_LOG,
    QUEUE_DUE,
    QUEUE_SCHEDULED,
    STATS_DIRTY,
    THROTTLE_MOVE,
)


def _endpoint_of(row: sqlite3.Row) -> str:
    return row[3]  # type: ignore[no-any-return]  # d.endpoint_id (sql.CLAIM's columns)


class _LeaseLost(Exception):
    """A batch of results holds some whose lease was lost: its write is rolled back and done
    again by ``finish_attempts``'s careful path, which reads first which leases are held."""


class SqliteQueue(SqliteBase):
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
        lease = secrets.token_hex(8)
        held = [orjson.dumps(list(exclude_deliveries)).decode()] if exclude_deliveries else []
        take = f"{CLAIM}{CLAIM_NOT_HELD if held else ''}{CLAIM_ORDER}"

        def run(c: Conn) -> list[sqlite3.Row]:
            heads = [
                Head(ep, due, bool(off), None if rate is None else Pace(rate, at))
                for ep, due, off, rate, at in c.execute(CLAIM_HEADS, (now_ms,))
            ]
            rounds = ClaimRounds(
                heads, limit, max_per_endpoint, in_flight, exclude_endpoints, now_ms
            )
            claimed: list[sqlite3.Row] = []
            shares = rounds.first
            while shares:
                taken: list[sqlite3.Row] = []
                canceled: list[tuple[int]] = []
                for share in shares:
                    if share.cancel:  # an endpoint disabled after the message was sent
                        canceled += c.execute(
                            CLAIM_CANCELED, (share.endpoint_id, now_ms, share.take)
                        )
                        # an ordered one's parked rows go with its head (domain.ordering)
                        c.execute(ORDER_CANCEL_PARKED_LOG, (now_ms, share.endpoint_id))
                        c.execute(ORDER_CANCEL_PARKED, (now_ms, share.endpoint_id))
                    else:
                        taken += c.execute(take, (share.endpoint_id, now_ms, *held, share.take))
                execute_values(c, CANCELS_LOG, canceled, (now_ms,))
                execute_values(c, DELIVERIES_CANCEL, canceled, (now_ms,))
                lease_until = (now_ms + lease_ms, lease, now_ms)
                execute_values(c, DELIVERIES_LEASE, [(r[0],) for r in taken], lease_until)
                claimed += taken
                shares = rounds.next(map(_endpoint_of, taken))
            paced = rounds.paced()
            if paced:
                c.executemany(THROTTLE_MOVE, [(at, ep) for ep, at in paced])
            return rounds.order(claimed, _endpoint_of)

        # Decoded after the commit: the write lock is held for the transaction, not for this.
        claimed = await self._db.write(run)
        opener = KeyOpener(self._box)
        return decode_claimed(claimed, lambda r: self._claimed(r, lease, opener), itemgetter(0))

    def _claimed(self, r: sqlite3.Row, lease: str, open_keys: KeyOpener) -> ClaimedDelivery:
        # Unpacked by position (name lookups on a Row cost a scan each): see sql.CLAIM.
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
            signature_header,
            ordered,
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
            headers=orjson.loads(headers)
            if SEALED_HEADER_JSON not in headers
            else open_headers(self._box, headers, endpoint_id),
            keys=open_keys(sealed_keys, endpoint_id),
            signature_scheme=signature_scheme,
            retry_schedule=loads_opt(retry_schedule),
            due_at=due_at,
            signature_header=signature_header,
            ordered=bool(ordered),
        )

    async def finish_attempts(
        self,
        results: Sequence[AttemptResult],
        now_ms: int,
        disable_after_ms: int,
        disable_after_failures: int = 0,
        notify: Sequence[OperationalEvent] = (),
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
        health = _Health(results)
        # Ordered endpoints whose head finished: the next one goes (domain.ordering).
        heads_left = [
            r.attempt.endpoint_id for r in results if r.ordered and head_left(r.next_status)
        ]
        promoted = 0
        late = late_hours((r.attempt for r in results), now_ms)  # rare: one comparison each

        def run(c: Conn) -> FinishOutcome:
            nonlocal promoted
            execute_values(c, ATTEMPTS_INSERT, attempt_rows)
            if late:
                c.executemany(STATS_DIRTY, late)
            if execute_values(c, DELIVERIES_FINISH, delivery_rows) < len(results):
                raise _LeaseLost  # rare: which results are stale is read by held_only
            if heads_left:
                promoted = settle_endpoints(c, heads_left, now_ms)
            return health.apply(
                c, now_ms, disable_after_ms, disable_after_failures, stale=0, notify=notify
            )

        def held_only(c: Conn) -> FinishOutcome:
            """Every attempt is recorded; only results whose lease is held change their
            delivery and their endpoint's health."""
            nonlocal promoted
            execute_values(c, ATTEMPTS_INSERT, attempt_rows)
            if late:
                c.executemany(STATS_DIRTY, late)
            pairs = orjson.dumps([(r.delivery_id, r.lease) for r in results]).decode()
            held = set(map(tuple, c.execute(LEASES_HELD, (pairs,))))
            fresh = [i for i, r in enumerate(results) if (r.delivery_id, r.lease) in held]
            updated = execute_values(c, DELIVERIES_FINISH, [delivery_rows[i] for i in fresh])
            if heads_left:  # settling is safe whatever the stale ones' state
                promoted = settle_endpoints(c, heads_left, now_ms)
            fresh_health = _Health([results[i] for i in fresh])
            kept = set(fresh)
            lost = {r.attempt.id for i, r in enumerate(results) if i not in kept}
            return fresh_health.apply(
                c,
                now_ms,
                disable_after_ms,
                disable_after_failures,
                len(results) - updated,
                applied(notify, lost),
            )

        try:
            outcome = await self._db.write(run)
        except _LeaseLost:
            outcome = await self._db.write(held_only)
        if outcome.notified or promoted:
            self._new_work()
        return outcome

    async def settle_ordered(self, now_ms: int) -> int:
        def unsettled_now(c: Conn) -> list[str]:
            return unsettled(c)

        if not await self._db.read(unsettled_now):  # the usual answer: no write lock taken
            return 0

        def run(c: Conn) -> int:
            return settle_endpoints(c, unsettled(c), now_ms)

        due = await self._db.write(run)
        if due:
            self._new_work()
        return due

    async def release(self, leases: Sequence[tuple[int, str]], now_ms: int) -> int:
        rows = list(leases)

        def run(c: Conn) -> int:
            return execute_values(c, DELIVERIES_RELEASE, rows, (now_ms, now_ms))

        released = await self._db.write(run)
        if released:
            self._new_work()
        return released

    async def renew(self, leases: Sequence[tuple[int, str]], lease_ms: int, now_ms: int) -> int:
        if not leases:
            return 0
        pairs = orjson.dumps(list(leases)).decode()

        def run(c: Conn) -> int:
            renewed: int = c.execute(DELIVERIES_RENEW, (now_ms + lease_ms, pairs)).rowcount
            return renewed

        return await self._db.write(run)

    async def queue_depth(self, now_ms: int) -> QueueDepth:
        def run(c: Conn) -> QueueDepth:
            due, oldest = c.execute(QUEUE_DUE, (now_ms,)).fetchone()
            (scheduled,) = c.execute(QUEUE_SCHEDULED, (now_ms,)).fetchone()
            return QueueDepth(due=due, oldest_due_at=oldest, scheduled=scheduled)

        return await self._db.read(run)

    async def delivery_options(self) -> DeliveryOptions:
        def run(c: Conn) -> DeliveryOptions:
            types = c.execute(OPTION_TYPE_SCHEDULES).fetchall()
            timeouts = c.execute(OPTION_TIMEOUTS).fetchall()
            traceparent = c.execute(OPTION_TRACEPARENT).fetchall()
            return DeliveryOptions(
                type_schedules={r[0]: tuple(orjson.loads(r[1])) for r in types},
                endpoint_timeouts={r[0]: r[1] for r in timeouts},
                endpoint_traceparent={r[0]: bool(r[1]) for r in traceparent},
            )

        return await self._db.read(run)

    async def next_due_at(self, now_ms: int | None = None) -> int | None:
        def run(c: Conn) -> int | None:
            due: float | None = c.execute(NEXT_DUE).fetchone()[0]
            return None if due is None else math.ceil(due)  # a pace's slot is fractional

        return await self._db.read(run)


class _Health:
    """What a batch of results does to its endpoints' health (the rule is domain.health)."""

    def __init__(self, results: list[AttemptResult]) -> None:
        # An endpoint with only successes in the batch needs one write at most, in SQL;
        # the others' health is replayed result by result, in order.
        failing = {r.attempt.endpoint_id for r in results if r.attempt.status != 0}
        self.only_ok = [
            (ep_id, a.created_at, a.response_status_code)
            for ep_id, a in last_successes(results).items()
            if ep_id not in failing
        ]
        self.mixed = [r for r in results if r.attempt.endpoint_id in failing]
        self.failing_ids = orjson.dumps(sorted(failing)).decode() if failing else ""

    def apply(
        self,
        c: Conn,
        now_ms: int,
        disable_after_ms: int,
        disable_after_failures: int,
        stale: int,
        notify: Sequence[OperationalEvent] = (),
    ) -> FinishOutcome:
        """Also writes the operational events: ``notify``, and endpoint.disabled for the
        endpoints disabled now."""
        execute_values(c, ENDPOINTS_RESET, self.only_ok)
        if not self.mixed:
            notified = write_events(c, notify) if notify else 0
            return FinishOutcome(disabled_endpoints=[], stale=stale, notified=notified)
        states = {
            ep_id: Health(failures, first, bool(disabled), *rest)
            for ep_id, failures, first, disabled, *rest in c.execute(
                ENDPOINTS_HEALTH, (self.failing_ids,)
            )
        }
        changed, disabled_now = replay(
            states, self.mixed, now_ms, disable_after_ms, disable_after_failures
        )
        execute_values(
            c,
            ENDPOINTS_HEALTH_UPDATE,
            [(ep_id, *dataclasses.astuple(h)) for ep_id, h in changed.items()],
        )
        events = [*notify, *auto_disabled(disabled_now, fail_since(changed, disabled_now), now_ms)]
        notified = write_events(c, events) if events else 0
        return FinishOutcome(disabled_endpoints=disabled_now, stale=stale, notified=notified)
