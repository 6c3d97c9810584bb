"""The Stats port: the rollup pass's SQL equals domain.stats computed in Python over the same
attempts (buckets, failure reasons, hours), the raw reads equal it too, a pass writes each hour
once, and a report over rolled-up hours plus the open tail equals one computed from the
attempts, before and after the clock moves on. Cancellations count at their time and are rolled
up too; attempts written late into rolled-up hours are counted once the pass has run again.
Run once per backend."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from hookpost.domain.models import AttemptStatus, Endpoint
from hookpost.domain.stats import (
    HOUR_MS,
    LATE_AFTER_MS,
    ROLLUP_GRACE_MS,
    SUCCESS,
    AttemptRow,
    Canceled,
    Marginals,
    Scope,
    Tally,
    cells_of,
    closed_until,
    fold,
    hour_of,
)
from hookpost.services.stats import StatsService
from hookpost.store.base import Store

from .conftest import StoreFactory
from .support import (
    CANCELED,
    DAY,
    FAILED,
    PENDING,
    SUCCEEDED,
    T0,
    claim,
    finish,
    new_app,
    new_endpoint,
    outcome,
    send,
)

H = T0 - T0 % DAY + DAY  # a UTC midnight after every other row's time
ERRORS = [
    "timeout: after 15 s",
    "connection error: 127.0.0.1:9 refused",
    "  spaced out : detail",
    "\ttabbed: detail",
    "no colon at all",
    "",
    "ünïcode: détail",
    "x" * 80,
]
TYPES = {"ep1": ["a.one", "a.two"], "ep2": ["b.one"]}


@dataclass
class World:
    store: Store
    app_id: str
    endpoints: dict[str, Endpoint]
    rows: list[AttemptRow] = field(default_factory=list)

    async def attempt(
        self,
        ep: str,
        event_type: str,
        at: int,
        *,
        ok: bool,
        duration: int = 12,
        code: int | None = None,
        error: str | None = None,
        final: bool = True,
        app_id: str | None = None,
        written: int | None = None,
    ) -> None:
        """A message sent at ``at`` and one attempt of its delivery at ``at`` + 1, written at
        ``written`` (default: then too)."""
        msg = await send(self.store, app_id or self.app_id, now=at, event_type=event_type)
        (c,) = [c for c in await claim(self.store, at + 1) if c.message_id == msg.id]
        status = SUCCEEDED if ok else (FAILED if final else PENDING)
        code = code if code is not None else (200 if ok else 500)
        extra = {"retry_at": at + DAY} if status == PENDING else {}
        await finish(
            self.store,
            outcome(
                c,
                status,
                at=at + 1,
                duration_ms=duration,
                response_status_code=code,
                error=error,
                **extra,
            ),
            now=at + 1 if written is None else written,
        )
        self.rows.append(
            AttemptRow(
                at + 1,
                c.app_id,
                c.endpoint_id,
                event_type,
                int(AttemptStatus.SUCCESS if ok else AttemptStatus.FAIL),
                duration,
                code,
                error,
            )
        )

    async def random_attempts(self, rng: random.Random, start: int, end: int, n: int) -> None:
        for at in sorted(rng.randrange(start, end - 1) for _ in range(n)):
            ep = rng.choice(["ep1", "ep2"])
            ok = rng.random() < 0.6
            error = None if ok or rng.random() < 0.5 else rng.choice(ERRORS)
            await self.attempt(
                ep,
                rng.choice(TYPES[ep]),
                at,
                ok=ok,
                duration=int(rng.lognormvariate(4, 1.8)),
                code=0 if error is not None else (200 if ok else rng.choice([500, 503, 404])),
                error=error,
            )


async def world(store: Store) -> World:
    app = await new_app(store)
    eps = {
        name: await new_endpoint(store, app.id, event_types=types) for name, types in TYPES.items()
    }
    return World(store, app.id, eps)


def scoped(rows: list[AttemptRow], scope: Scope, since: int, until: int) -> list[AttemptRow]:
    return [
        r
        for r in rows
        if r.app_id == scope.app_id
        and scope.endpoint_id in (None, r.endpoint_id)
        and since <= r.created_at < until
    ]


def expected_marginals(rows: list[AttemptRow]) -> Marginals:
    rollup = fold(cells_of(rows))
    t: dict[str, dict[object, list[int]]] = {"type": {}, "hour": {}, "ep": {}}
    for (hour, _app, ep, et), (s, f) in rollup.counts.items():
        for name, key in (("type", et), ("hour", hour), ("ep", ep)):
            pair = t[name].setdefault(key, [0, 0])
            pair[0] += s
            pair[1] += f
    buckets: dict[int, int] = {}
    for (_h, _a, _e, bucket), n in rollup.latency.items():
        buckets[bucket] = buckets.get(bucket, 0) + n
    reasons: dict[str, int] = {}
    for (_h, _a, _e, reason), n in rollup.failures.items():
        reasons[reason] = reasons.get(reason, 0) + n
    return Marginals(
        sorted((k, *v) for k, v in t["type"].items()),  # type: ignore[misc]
        sorted((k, *v) for k, v in t["hour"].items()),  # type: ignore[misc]
        sorted((k, *v) for k, v in t["ep"].items()),  # type: ignore[misc]
        sorted(buckets.items()),
        sorted(reasons.items()),
    )


def normalised(m: Marginals) -> Marginals:
    return Marginals(*(sorted(tuple(r) for r in part) for part in vars(m).values()))


async def roll_all(store: Store, now: int) -> int:
    steps = 0
    while await store.roll_up_next(now) is not None:
        steps += 1
        assert steps < 1000
    return steps


async def test_the_rollup_pass_equals_python_over_the_same_attempts(
    store: Store, store_factory: StoreFactory
) -> None:
    w = await world(store)
    await w.random_attempts(random.Random(7), H, H + 6 * HOUR_MS, 80)
    for i, error in enumerate(ERRORS):  # every error form, on the hour's edges too
        await w.attempt("ep1", "a.one", H + i * HOUR_MS - 1, ok=False, code=0, error=error)
    await w.attempt("ep1", "a.two", H + 2 * HOUR_MS, ok=False, code=502, duration=3_600_000)
    await w.attempt("ep2", "b.one", H + 3 * HOUR_MS, ok=True, duration=0)
    other = await new_app(store)  # another application's attempts stay its own
    await new_endpoint(store, other.id)
    await w.attempt("ep1", "a.one", H + HOUR_MS, ok=True, app_id=other.id)

    now = H + 12 * HOUR_MS
    assert await roll_all(store, now) > 0
    assert await store.rolled_until() == closed_until(now)
    end = closed_until(now)
    for scope in (
        Scope(w.app_id),
        Scope(w.app_id, w.endpoints["ep1"].id),
        Scope(w.app_id, w.endpoints["ep2"].id),
        Scope(other.id),
    ):
        rows = scoped(w.rows, scope, 0, end)
        assert rows
        got = await store.stats_rollups(scope, H - DAY, end)
        assert normalised(got) == expected_marginals(rows)
        raw = await store.stats_cells(scope, H - DAY, end)
        assert sorted(raw) == cells_of(rows)

    # written once: another store's pass (another process) finds nothing to do
    async with store_factory() as again:
        assert await again.roll_up_next(now) is None
        got = await again.stats_rollups(Scope(w.app_id), H - DAY, end)
        assert normalised(got) == expected_marginals(scoped(w.rows, Scope(w.app_id), 0, end))


async def test_an_hour_without_attempts_is_stepped_over(store: Store) -> None:
    w = await world(store)
    await w.attempt("ep1", "a.one", H, ok=True)
    await w.attempt("ep1", "a.one", H + 30 * HOUR_MS, ok=True)
    now = H + 40 * HOUR_MS
    steps = await roll_all(store, now)
    assert steps <= 4  # the first hour, the gap at once, the next hour, the gap to the end
    got = await store.stats_rollups(Scope(w.app_id), H, closed_until(now))
    assert normalised(got).by_hour == [(H, 1, 0), (H + 30 * HOUR_MS, 1, 0)]


async def test_rolled_hours_and_the_open_tail_add_up_as_time_moves_on(store: Store) -> None:
    """The service with an injected clock: rollups for closed hours, attempts for the rest."""
    w = await world(store)
    clock = [H + 4 * HOUR_MS + ROLLUP_GRACE_MS + 5]
    service = StatsService(store, clock=lambda: clock[0])
    await w.random_attempts(random.Random(11), H, H + 6 * HOUR_MS, 60)
    since, until = H + HOUR_MS // 2, H + 6 * HOUR_MS
    for at in (since - 2, since - 1, until - 2, until - 1, H + 4 * HOUR_MS - 1):
        await w.attempt("ep2", "b.one", at, ok=False)  # the range's edges (attempts at at + 1)

    async def check(expected_rolled_until: int) -> None:
        assert await store.rolled_until() == expected_rolled_until
        for scope in (Scope(w.app_id), Scope(w.app_id, w.endpoints["ep2"].id)):
            tally = Tally()
            tally.add_cells(cells_of(scoped(w.rows, scope, since, until)))
            expected = tally.report(since, until, 0, 0)
            if scope.endpoint_id is None:
                got = await service.app(scope.app_id, since, until)
            else:
                got = await service.endpoint(scope.app_id, scope.endpoint_id, since, until)
            assert got == expected

    await check(0)  # nothing rolled up yet: all of it from the attempts
    assert await service.roll_up(pause_s=0) > 0
    await check(H + 4 * HOUR_MS)
    # more attempts in the open tail, one on the first millisecond after the rolled hours
    await w.attempt("ep1", "a.two", H + 4 * HOUR_MS - 1, ok=True, duration=7)
    await w.random_attempts(random.Random(12), H + 4 * HOUR_MS, until, 20)
    await check(H + 4 * HOUR_MS)
    clock[0] = H + 7 * HOUR_MS + ROLLUP_GRACE_MS
    assert await service.roll_up(pause_s=0) > 0
    await check(H + 7 * HOUR_MS)
    # the rolled hours are read from the rollups: they outlive the attempts (retention)
    deleted, _ = await store.delete_old_messages(H + 7 * HOUR_MS, 10_000)
    assert deleted.attempts == len(w.rows)
    w.rows = [r for r in w.rows if r.created_at >= H + HOUR_MS]  # the raw first half hour: gone
    await check(H + 7 * HOUR_MS)


async def test_live_and_canceled_deliveries(store: Store) -> None:
    w = await world(store)
    ep1 = w.endpoints["ep1"]
    await w.attempt("ep1", "a.one", H, ok=False, final=False)  # pending: a retry is due
    sending = await send(store, w.app_id, now=H + 10, event_type="a.two")
    assert [c.message_id for c in await claim(store, H + 11)] == [sending.id]
    await send(store, w.app_id, now=H + 20, event_type="b.one")  # pending, never claimed
    await store.update_endpoint(replace(ep1, disabled=True, updated_at=ep1.updated_at + 1))
    await send(store, w.app_id, now=H + 30, event_type="b.one")
    # ep1's due rows are canceled by the next claim; ep2's two are claimed (sending)
    await claim(store, H + DAY + 1)
    await send(store, w.app_id, now=H + 40, event_type="b.one")  # due, not claimed yet
    app = Scope(w.app_id)
    assert await store.stats_live(app, H, H + HOUR_MS) == (1, 2)
    assert await store.stats_live(Scope(w.app_id, ep1.id), H, H + HOUR_MS) == (0, 0)
    assert await store.stats_live(app, H + 25, H + HOUR_MS) == (1, 1)
    # canceled at the claim's time, not the messages'
    hour = hour_of(H + DAY + 1)
    assert sorted(await store.stats_canceled(app, H + DAY, H + DAY + HOUR_MS)) == [
        Canceled(hour, w.app_id, ep1.id, "a.one", 1),
        Canceled(hour, w.app_id, ep1.id, "a.two", 1),
    ]
    assert await store.stats_canceled(app, H, H + DAY + 1) == []
    assert await store.stats_canceled(app, H + DAY + 2, H + DAY + HOUR_MS) == []
    # the status of the canceled rows is what the store says it is
    assert (await store.get_delivery(sending.id, ep1.id)).status == CANCELED


async def test_cancels_are_logged_at_their_time_and_rolled_up(store: Store) -> None:
    """Both ways a claim cancels (a disabled endpoint's due rows, an ordered one's parked rows
    with them); an hour with cancellations and no attempt is rolled up, not stepped over."""
    app = await new_app(store)
    plain = await new_endpoint(store, app.id, event_types=["a.one", "a.two"])
    ordered = await new_endpoint(store, app.id, event_types=["b.one"], ordered=True)
    for i, et in enumerate(["a.one", "a.two", "a.two", "b.one", "b.one", "b.one"]):
        await send(store, app.id, now=H + i, event_type=et)
    for ep in (plain, ordered):
        await store.update_endpoint(replace(ep, disabled=True, updated_at=ep.updated_at + 1))
    at = H + 2 * HOUR_MS + 5
    assert await claim(store, at) == []
    hour = hour_of(at)
    of_plain = [
        Canceled(hour, app.id, plain.id, "a.one", 1),
        Canceled(hour, app.id, plain.id, "a.two", 2),
    ]
    of_ordered = [Canceled(hour, app.id, ordered.id, "b.one", 3)]
    got = await store.stats_canceled(Scope(app.id), H, H + DAY)
    assert sorted(got) == sorted(of_plain + of_ordered)
    assert await store.stats_canceled(Scope(app.id, ordered.id), at, at + 1) == of_ordered
    assert await store.stats_canceled(Scope(app.id), H, at) == []

    now = at + HOUR_MS + ROLLUP_GRACE_MS
    assert await roll_all(store, now) > 0
    assert await store.rolled_until() == closed_until(now)
    by_type = [("a.one", 0, 0, 1), ("a.two", 0, 0, 2), ("b.one", 0, 0, 3)]
    assert sorted(await store.stats_types(Scope(app.id), H, closed_until(now))) == by_type
    only_plain = await store.stats_types(Scope(app.id, plain.id), H, closed_until(now))
    assert sorted(only_plain) == by_type[:2]
    assert await store.stats_types(Scope(app.id), H, hour) == []
    # the service's answer is the same whether the hour is rolled up or read raw
    for clock in (at + 1, now):
        service = StatsService(store, clock=lambda c=clock: c)  # type: ignore[misc]
        stats = await service.app_attempts(app.id, H, H + DAY)
        assert {k: v.canceled for k, v in stats.by_event_type.items()} == {
            "a.one": 1,
            "a.two": 2,
            "b.one": 3,
        }
        assert stats.total("success") == stats.total("failure") == 0


async def test_svix_attempt_stats_over_rolled_hours_and_the_tail(store: Store) -> None:
    """Svix's app attempt stats equal counts of the attempts and cancels made, on both sides of
    the mark, with the range's edges off the hour."""
    w = await world(store)
    await w.random_attempts(random.Random(21), H, H + 5 * HOUR_MS, 50)
    ep1 = w.endpoints["ep1"]
    await send(store, w.app_id, now=H + 3 * HOUR_MS, event_type="a.two")
    await store.update_endpoint(replace(ep1, disabled=True, updated_at=ep1.updated_at + 1))
    cancel_at = H + 3 * HOUR_MS + 7
    await claim(store, cancel_at)
    canceled = await store.stats_canceled(Scope(w.app_id), H, H + DAY)
    assert sum(c.n for c in canceled) == 1
    since, until = H + HOUR_MS // 3, H + 5 * HOUR_MS - 17
    for clock in (H, H + 2 * HOUR_MS + ROLLUP_GRACE_MS, H + 6 * HOUR_MS):
        service = StatsService(store, clock=lambda c=clock: c)  # type: ignore[misc]
        await service.roll_up(pause_s=0)
        stats = await service.app_attempts(w.app_id, since, until)
        expected: dict[str, list[int]] = {}
        for r in scoped(w.rows, Scope(w.app_id), since, until):
            expected.setdefault(r.event_type, [0, 0, 0])[0 if r.status == SUCCESS else 1] += 1
        expected.setdefault("a.two", [0, 0, 0])[2] += 1  # the cancel, in the range
        got = {k: [v.success, v.failure, v.canceled] for k, v in stats.by_event_type.items()}
        assert got == expected
        only = await service.app_attempts(w.app_id, since, until, ["a.two"])
        assert list(only.by_event_type) == ["a.two"]


async def test_attempts_written_late_into_rolled_hours_are_counted(store: Store) -> None:
    """An attempt written long after its time marks its (application, hour) dirty in the
    same write; the next pass rolls that hour up again. On-time writes mark nothing."""
    w = await world(store)
    other = await new_app(store)
    await new_endpoint(store, other.id)
    await w.random_attempts(random.Random(5), H, H + 3 * HOUR_MS, 30)
    await w.attempt("ep1", "a.one", H + 10, ok=True, app_id=other.id)
    clock = [H + 3 * HOUR_MS + ROLLUP_GRACE_MS]
    service = StatsService(store, clock=lambda: clock[0])
    assert await service.roll_up(pause_s=0) > 0
    assert await store.rolled_until() == H + 3 * HOUR_MS
    assert await store.reroll_next() is None  # every attempt was written on time

    async def check(scope: Scope) -> None:
        since, until = H, H + 3 * HOUR_MS  # every hour of it rolled up
        tally = Tally()
        tally.add_cells(cells_of(scoped(w.rows, scope, since, until)))
        assert await service.app(scope.app_id, since, until) == tally.report(since, until, 0, 0)
        stats = await service.app_attempts(scope.app_id, since, until)
        assert stats.total("success") + stats.total("failure") == len(
            scoped(w.rows, scope, since, until)
        )
        assert normalised(await store.stats_rollups(scope, since, until)) == expected_marginals(
            scoped(w.rows, scope, since, until)
        )

    written = clock[0] + 60_000  # ~an hour after the first, minutes after the second's end
    await w.attempt("ep1", "a.one", H + 5, ok=True, duration=900, written=written)
    await w.attempt(
        "ep2", "b.one", H + HOUR_MS + 7, ok=False, code=0, error="timeout: x", written=written
    )
    await w.attempt("ep2", "b.one", H + HOUR_MS + 9, ok=True, written=written)
    # until the pass runs again the rolled hours lack them (at most a pass's interval)
    before = await service.app(w.app_id, H, H + 3 * HOUR_MS)
    on_time = len(scoped(w.rows[:-3], Scope(w.app_id), H, H + 3 * HOUR_MS))
    assert before.succeeded + before.failed == on_time
    assert await service.roll_up(pause_s=0) == 2  # two (application, hour)s, once each
    assert await store.reroll_next() is None
    await check(Scope(w.app_id))
    await check(Scope(other.id))  # another application's rows are left as they were

    # the hour the pass has not come to yet: its mark just goes, the pass then counts it
    await w.attempt(
        "ep1", "a.two", H + 3 * HOUR_MS + 3, ok=True, written=H + 4 * HOUR_MS + LATE_AFTER_MS
    )
    assert await store.reroll_next() == (w.app_id, H + 3 * HOUR_MS)
    assert await store.rolled_until() == H + 3 * HOUR_MS
    clock[0] = H + 4 * HOUR_MS + ROLLUP_GRACE_MS
    assert await service.roll_up(pause_s=0) > 0
    rows = scoped(w.rows, Scope(w.app_id), H, H + 4 * HOUR_MS)
    got = await store.stats_rollups(Scope(w.app_id), H, H + 4 * HOUR_MS)
    assert normalised(got) == expected_marginals(rows)
