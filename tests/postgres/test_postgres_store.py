"""Smoke tests of the PostgreSQL store on a throwaway database (the full behaviour is held to
the SQLite backend's by tests/contract). They cover what only PostgreSQL has: NOTIFY between
store instances, the LISTEN connection and the pool surviving killed backends, the claim
query's index, and finish_attempts' endpoint health replayed in Python against SQLite's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from hookpost.domain import ids
from hookpost.domain.errors import Conflict, NotFound, StoreUnavailable
from hookpost.domain.models import (
    Application,
    Attempt,
    AttemptResult,
    AttemptStatus,
    ClaimedDelivery,
    DeliveryStatus,
    Endpoint,
    Message,
    PageRequest,
    SigningKey,
)
from hookpost.domain.queries import IdempotencyKey, SentMessage
from hookpost.store.migrate import upgrade
from hookpost.store.postgres import sql, sql_tokens
from hookpost.store.postgres.store import APPLICATION_NAME, AUTOVACUUM_OFF, PostgresStore
from hookpost.store.rows import PlainBox
from hookpost.store.sqlite.store import SqliteStore

pytestmark = pytest.mark.postgres

T = TypeVar("T")
NOW = 1_800_000_000_000
WAIT = 5.0  # seconds: the most any test waits for an event


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(name, safe="")))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def smoke_url(postgres_url: str) -> Iterator[str]:
    """A migrated database of our own on the test server, dropped after the module."""
    admin = _with_database(postgres_url, "postgres")
    name = f"hookpost_smoke_{secrets.token_hex(6)}"
    _run(_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        url = _with_database(postgres_url, name)
        upgrade(url)
        yield url
    finally:
        _run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def store(smoke_url: str) -> AsyncIterator[PostgresStore]:
    await _execute(
        smoke_url, "TRUNCATE applications, event_types, api_tokens, idempotency_keys CASCADE"
    )
    # Time is what the tests say it is (now_ms), not the database's clock.
    s = PostgresStore(smoke_url, PlainBox(), min_size=1, max_size=4, database_clock=False)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def _wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), WAIT)


async def _backends(url: str, application_name: str) -> list[int]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = $1",
            application_name,
        )
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


async def _terminate(url: str, pids: list[int]) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- builders


def _app(uid: str | None = None) -> Application:
    return Application(id=ids.new_id(ids.APP), name="shop", uid=uid, created_at=NOW, updated_at=NOW)


def _endpoint(app_id: str, **kw: Any) -> Endpoint:
    return Endpoint(
        id=ids.new_id(ids.ENDPOINT),
        app_id=app_id,
        url="https://example.com/hook",
        keys=[SigningKey("whsec_test")],
        created_at=NOW,
        updated_at=NOW,
        **kw,
    )


def _message(app_id: str, event_type: str = "invoice.paid", **kw: Any) -> Message:
    return Message(
        id=ids.new_id(ids.MESSAGE, NOW),
        app_id=app_id,
        event_type=event_type,
        payload=b'{"amount":1}',
        created_at=NOW,
        **kw,
    )


def _result(
    d: ClaimedDelivery,
    *,
    ok: bool,
    at: int,
    next_status: DeliveryStatus | None = None,
    disable: str | None = None,
    lease: str | None = None,
    attempt_id: str | None = None,
) -> AttemptResult:
    status = next_status or (DeliveryStatus.SUCCEEDED if ok else DeliveryStatus.PENDING)
    return AttemptResult(
        attempt=Attempt(
            id=attempt_id or ids.new_id(ids.ATTEMPT, at),
            app_id=d.app_id,
            message_id=d.message_id,
            endpoint_id=d.endpoint_id,
            url=d.url,
            status=AttemptStatus.SUCCESS if ok else AttemptStatus.FAIL,
            trigger=d.trigger,
            response_status_code=200 if ok else 500,
            response="ok" if ok else "boom",
            duration_ms=5,
            created_at=at,
        ),
        delivery_id=d.delivery_id,
        lease=d.lease if lease is None else lease,
        next_status=status,
        next_attempt_at=at + 60_000 if status == DeliveryStatus.PENDING else None,
        disable_endpoint_reason=disable,
        attempts=d.attempts + 1,
    )


# --------------------------------------------------------------------------- tests


async def test_unreachable_server_is_store_unavailable() -> None:
    s = PostgresStore("postgresql://postgres@127.0.0.1:1/nothing", PlainBox(), connect_timeout=2)
    with pytest.raises(StoreUnavailable):
        await s.open()


async def test_crud_errors_are_domain_errors(store: PostgresStore) -> None:
    app = await store.create_app(_app(uid="acme"))
    assert (await store.get_app("acme")).id == app.id
    with pytest.raises(Conflict):
        await store.create_app(_app(uid="acme"))
    with pytest.raises(NotFound):
        await store.create_endpoint(_endpoint("app_missing"))
    ep = await store.create_endpoint(_endpoint(app.id, uid="main"))
    with pytest.raises(Conflict):
        await store.create_endpoint(_endpoint(app.id, uid="main"))
    assert (await store.get_endpoint(app.id, "main")).id == ep.id
    with pytest.raises(NotFound):
        await store.create_message(_message("app_missing"), NOW)
    with pytest.raises(NotFound):
        await store.resend(app.id, "msg_missing", ep.id, NOW)
    page = await store.list_endpoints(app.id, PageRequest(limit=1))
    assert [e.id for e in page.items] == [ep.id] and page.done


async def test_message_claim_finish(store: PostgresStore) -> None:
    app = await store.create_app(_app())
    ep = await store.create_endpoint(_endpoint(app.id, event_types=["invoice.paid"]))
    await store.create_endpoint(_endpoint(app.id, event_types=["other"]))
    msg = _message(app.id, event_id="evt-1")

    created = await store.create_message(msg, NOW)
    assert created.created and created.deliveries == 1
    again = await store.create_message(_message(app.id, event_id="evt-1"), NOW)
    assert not again.created and again.message.id == msg.id and again.deliveries == 0

    assert await store.claim_due(10, 30_000, NOW - 1) == []  # not due yet
    (claimed,) = await store.claim_due(10, 30_000, NOW)
    assert (claimed.message_id, claimed.endpoint_id, claimed.payload) == (
        msg.id,
        ep.id,
        msg.payload,
    )
    assert claimed.keys == [SigningKey("whsec_test")]
    assert await store.claim_due(10, 30_000, NOW) == []  # leased
    depth = await store.queue_depth(NOW)
    assert (depth.due, depth.scheduled) == (0, 0)  # leased: neither due nor scheduled

    result = _result(claimed, ok=True, at=NOW + 10)
    outcome = await store.finish_attempts([result], NOW + 10, 86_400_000)
    assert (outcome.stale, outcome.disabled_endpoints) == (0, [])
    delivery = await store.get_delivery(msg.id, ep.id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 1)
    assert await store.next_due_at() is None

    # Writing the same batch again (a retry after a lost acknowledgement) changes nothing.
    outcome = await store.finish_attempts([result], NOW + 20, 86_400_000)
    assert outcome.stale == 1
    stats = await store.endpoint_stats(app.id, ep.id, None, None)
    assert stats.success == 1


async def test_claim_skips_excluded_and_cancels_disabled(store: PostgresStore) -> None:
    app = await store.create_app(_app())
    keep = await store.create_endpoint(_endpoint(app.id))
    skip = await store.create_endpoint(_endpoint(app.id))
    gone = await store.create_endpoint(_endpoint(app.id))
    msg = _message(app.id)
    assert (await store.create_message(msg, NOW)).deliveries == 3
    gone.disabled = True
    await store.update_endpoint(gone)

    claimed = await store.claim_due(10, 30_000, NOW, exclude_endpoints=[skip.id])
    assert [c.endpoint_id for c in claimed] == [keep.id]
    assert (await store.get_delivery(msg.id, gone.id)).status == DeliveryStatus.CANCELED
    assert (await store.get_delivery(msg.id, skip.id)).status == DeliveryStatus.PENDING
    # A released lease is due again at once; the old lease can no longer finish it.
    assert await store.release([(claimed[0].delivery_id, claimed[0].lease)], NOW) == 1
    (again,) = await store.claim_due(10, 30_000, NOW, exclude_endpoints=[skip.id])
    stale = _result(claimed[0], ok=True, at=NOW + 1)
    assert (await store.finish_attempts([stale], NOW + 1, 1000)).stale == 1
    assert (await store.get_delivery(msg.id, keep.id)).status == DeliveryStatus.SENDING
    assert again.lease != claimed[0].lease


async def test_disable_reason_is_reported_once(store: PostgresStore) -> None:
    app = await store.create_app(_app())
    ep = await store.create_endpoint(_endpoint(app.id))
    for _ in range(2):
        await store.create_message(_message(app.id), NOW)
    first, second = await store.claim_due(10, 30_000, NOW)
    outcome = await store.finish_attempts(
        [
            _result(first, ok=False, at=NOW + 1, disable="HTTP 410 Gone"),
            _result(second, ok=False, at=NOW + 2, disable="HTTP 410 Gone"),
        ],
        NOW + 3,
        86_400_000,
    )
    assert outcome.disabled_endpoints == [(app.id, ep.id, "HTTP 410 Gone")]
    stored = await store.get_endpoint(app.id, ep.id)
    assert (stored.disabled, stored.consecutive_failures, stored.first_failure_at) == (
        True,
        2,
        NOW + 1,
    )
    assert (await store.create_message(_message(app.id), NOW)).deliveries == 0


async def test_finish_health_matches_sqlite(store: PostgresStore, tmp_path: Path) -> None:
    """Random batches of results, written to both backends: same outcomes, same health."""
    db = tmp_path / "ref.db"
    await asyncio.to_thread(upgrade, f"sqlite:///{db}")
    ref = SqliteStore(str(db), PlainBox())
    await ref.open()
    rng = random.Random(7)
    try:
        app = _app()
        endpoints = [_endpoint(app.id) for _ in range(3)]
        endpoints[2].consecutive_failures, endpoints[2].first_failure_at = 4, NOW - 50_000
        for s in (store, ref):
            await s.create_app(app)
            for ep in endpoints:
                await s.create_endpoint(ep)
        now = NOW
        for _round in range(40):
            now += rng.choice([1_000, 20_000])
            for _ in range(rng.randint(1, 6)):
                msg = _message(app.id)
                for s in (store, ref):
                    await s.create_message(msg, now)
            pg_claims = await store.claim_due(100, 30_000, now)
            ref_claims = {
                (c.message_id, c.endpoint_id): c for c in await ref.claim_due(100, 30_000, now)
            }
            assert len(pg_claims) == len(ref_claims)
            pg_batch: list[AttemptResult] = []
            ref_batch: list[AttemptResult] = []
            for c in pg_claims:
                ok = rng.random() < 0.4
                disable = "HTTP 410 Gone" if not ok and rng.random() < 0.05 else None
                at = now - rng.randint(0, 5_000)
                stale = rng.random() < 0.1
                attempt_id = ids.new_id(ids.ATTEMPT, at)
                for claim, batch in (
                    (c, pg_batch),
                    (ref_claims[(c.message_id, c.endpoint_id)], ref_batch),
                ):
                    batch.append(
                        _result(
                            claim,
                            ok=ok,
                            at=at,
                            disable=disable,
                            lease="lost" if stale else None,
                            attempt_id=attempt_id,
                        )
                    )
            order = list(range(len(pg_batch)))
            rng.shuffle(order)
            pg_out = await store.finish_attempts([pg_batch[i] for i in order], now, 30_000)
            ref_out = await ref.finish_attempts([ref_batch[i] for i in order], now, 30_000)
            assert pg_out == ref_out
            for ep in endpoints:
                assert await store.get_endpoint(app.id, ep.id) == await ref.get_endpoint(
                    app.id, ep.id
                )
            # Re-enable now and then so failures keep counting.
            for ep in endpoints:
                if rng.random() < 0.2:
                    fresh = await ref.get_endpoint(app.id, ep.id)
                    fresh.disabled, fresh.disabled_reason = False, None
                    for s in (store, ref):
                        await s.update_endpoint(fresh)
    finally:
        await ref.close()


async def test_notify_wakes_other_store_instances(store: PostgresStore, smoke_url: str) -> None:
    other = PostgresStore(smoke_url, PlainBox(), min_size=1, max_size=2)
    woken = asyncio.Event()
    other.on_new_work(woken.set)
    await other.open()
    try:
        app = await store.create_app(_app())
        ep = await store.create_endpoint(_endpoint(app.id))
        msg = _message(app.id)
        await store.create_message(msg, NOW)
        await _wait(woken)

        woken.clear()
        (claimed,) = await store.claim_due(1, 30_000, NOW)
        await store.release([(claimed.delivery_id, claimed.lease)], NOW)
        await _wait(woken)

        woken.clear()
        await store.resend(app.id, msg.id, ep.id, NOW)
        await _wait(woken)
    finally:
        await other.close()


async def test_listener_reconnects_and_wakes(store: PostgresStore, smoke_url: str) -> None:
    woken = asyncio.Event()
    store.on_new_work(woken.set)
    (pid,) = await _backends(smoke_url, "hookpost-listener")
    await _terminate(smoke_url, [pid])
    await _wait(woken)  # called once after reconnecting: work may have been missed
    assert store.listener.reconnects == 1 and store.listener.connected

    woken.clear()
    app = await store.create_app(_app())
    await store.create_endpoint(_endpoint(app.id))
    await store.create_message(_message(app.id), NOW)
    await _wait(woken)  # and listening again


async def test_pool_recovers_from_killed_connections(store: PostgresStore, smoke_url: str) -> None:
    app = await store.create_app(_app())
    async with asyncio.TaskGroup() as tg:  # use several pool connections
        for _ in range(4):
            tg.create_task(store.get_app(app.id))
    pids = await _backends(smoke_url, APPLICATION_NAME)
    assert pids
    await _terminate(smoke_url, pids)

    failures = 0
    for _ in range(10):  # no sleeping: the pool reconnects on the next acquire
        try:
            assert (await store.get_app(app.id)).id == app.id
            break
        except StoreUnavailable:
            failures += 1
    else:
        pytest.fail("the pool did not recover")
    assert failures <= 4  # at most one failure per broken pooled connection


async def test_claim_reads_each_endpoints_queue_from_the_per_endpoint_due_index(
    store: PostgresStore, smoke_url: str
) -> None:
    app = await store.create_app(_app())
    await store.create_endpoint(_endpoint(app.id))
    conn = await asyncpg.connect(smoke_url, timeout=5)
    try:
        # 20,000 deliveries scheduled far in the future, 20,000 finished (due_at NULL).
        await conn.execute(
            "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
            "SELECT 'msg_x' || i, $1, 't', '\\x7b7d', 0 FROM generate_series(1, 20000) i",
            app.id,
        )
        await conn.execute(
            "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, due_at, updated_at) "
            "SELECT $1, 'msg_x' || i, e.id, CASE WHEN i % 2 = 0 THEN 0 ELSE 2 END, "
            "CASE WHEN i % 2 = 0 THEN $2::bigint + i END, 0 "
            "FROM generate_series(1, 20000) i, endpoints e WHERE e.app_id = $1",
            app.id,
            NOW * 2,
        )
        await conn.execute("ANALYZE deliveries")
        heads = await _plan(conn, sql.CLAIM_HEADS)
        shares = (NOW, ["ep_x", "ep_y"], [32, 32], 30_000, "lease", [], ["ep_y"])
        take = await _plan(conn, sql.CLAIM, *shares, [], [], [], [])
        # ep_x throttled (domain.throttle): its pace is read and moved in the same statement
        paced = await _plan(conn, sql.CLAIM, *shares, ["ep_x"], [None], [0.0], [200.0])
    finally:
        await conn.close()
    # each endpoint's queue, from its head: never the whole table
    for plan in (heads, take, paced):
        assert "using ix_deliveries_endpoint_due on deliveries" in plan, plan
        assert "Seq Scan on deliveries" not in plan, plan


async def _plan(conn: asyncpg.Connection, statement: str, *args: object) -> str:
    return "\n".join(r[0] for r in await conn.fetch("EXPLAIN (COSTS OFF) " + statement, *args))


_FAILING_PUT = "INSERT INTO no_such_table VALUES ($1, $2, $3, $4, $5, $6, $7)"


async def test_a_failed_key_write_does_not_fail_an_accepted_message(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message created alone (here: a channel with a NUL, matched in Python) has its
    idempotency key recorded after its own statement: if that write fails, the message is
    still accepted (an error would make the client resend it)."""
    app = await store.create_app(_app())
    monkeypatch.setattr(sql_tokens, "IDEMPOTENT_PUT", _FAILING_PUT)
    key = IdempotencyKey("tok", "key", NOW + 1000)
    created = await store.create_message(_message(app.id, channels=["a\x00b"]), NOW, None, key)
    assert created.created
    assert (await store.get_message(app.id, created.message.id)).id == created.message.id
    assert await store.get_idempotent("tok", "key", NOW) is None


async def test_keyed_creates_record_their_keys_in_the_group_statement(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group commit of keyed creates checks the keys and records them in its one
    statement (no lookup and no write of its own per key: both are made to fail here). One
    key given twice at once: the repeat goes alone after the batch and gets the message."""
    app = await store.create_app(_app())
    await store.create_endpoint(_endpoint(app.id))
    failing = "SELECT * FROM no_such_table WHERE $1::text = $2::text AND $3::bigint > 0"
    monkeypatch.setattr(sql_tokens, "IDEMPOTENT_GET", failing)
    monkeypatch.setattr(sql_tokens, "IDEMPOTENT_PUT", _FAILING_PUT)
    keys = [IdempotencyKey("tok", f"k{i}", NOW + 1000) for i in range(8)]
    made = await asyncio.gather(
        *(store.create_message(_message(app.id), NOW, None, k) for k in keys)
    )
    assert all(m.created and m.deliveries == 1 and m.replayed is None for m in made)
    again = await store.create_message(_message(app.id), NOW, None, keys[3])
    assert again.replayed == SentMessage(made[3].message.id) and not again.created
    monkeypatch.undo()
    for k, m in zip(keys, made, strict=True):
        assert await store.get_idempotent(k.scope, k.key, NOW) == SentMessage(m.message.id)
    twice = IdempotencyKey("tok", "twice", NOW + 1000)
    both = await asyncio.gather(
        *(store.create_message(_message(app.id), NOW, None, twice) for _ in range(2))
    )
    assert sorted(b.created for b in both) == [False, True]
    first = next(b for b in both if b.created)
    assert [b.replayed for b in both if not b.created] == [SentMessage(first.message.id)]


async def test_two_processes_sending_one_key_at_once_create_one_message(
    store: PostgresStore, smoke_url: str
) -> None:
    """Two stores on one database (two API processes) send the same key at the same moment,
    over and over: each time exactly one message is created, and the other send gets its
    message back (without the keys' locks, both were created in most tries)."""
    app = await store.create_app(_app())
    await store.create_endpoint(_endpoint(app.id))
    other = PostgresStore(smoke_url, PlainBox(), min_size=1, max_size=4)
    await other.open()
    try:
        for attempt in range(30):
            key = IdempotencyKey("tok", f"race-{attempt}", NOW + 9999)
            both = await asyncio.gather(
                store.create_message(_message(app.id), NOW, None, key),
                other.create_message(_message(app.id), NOW, None, key),
            )
            assert sorted(b.created for b in both) == [False, True], attempt
            winner = SentMessage(next(b for b in both if b.created).message.id)
            loser = next(b for b in both if not b.created)
            assert loser.replayed == winner
            assert await store.get_idempotent("tok", key.key, NOW) == winner
    finally:
        await other.close()


async def test_opening_a_store_warns_when_autovacuum_is_off(
    smoke_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Without VACUUM, finished deliveries' dead index entries pile up in every claim's way."""
    conn = await asyncpg.connect(smoke_url, timeout=5)
    try:
        autovacuum = await conn.fetchval("SHOW autovacuum")
    finally:
        await conn.close()
    store = PostgresStore(smoke_url, PlainBox())
    with caplog.at_level(logging.WARNING, logger="hookpost.store.postgres"):
        await store.open()
    await store.close()
    warned = any(r.getMessage() == AUTOVACUUM_OFF for r in caplog.records)
    assert warned == (autovacuum != "on"), (autovacuum, caplog.records)
