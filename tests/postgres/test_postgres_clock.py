"""On PostgreSQL, due times and lease expiry are on the database's clock, whatever clock the
caller's ``now_ms`` comes from: a host whose clock is ahead cannot take in-flight deliveries,
a host whose clock is behind does not wait for due ones. The caller's times are translated to
and from it (a retry's due time, the next due time, the oldest due delivery).

The database and the tests share one host, so "the database's clock" is ``now_ms()`` here,
give or take the time a statement takes (``SLACK``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hookpost.services.common import now_ms
from hookpost.store.base import Store
from hookpost.store.rows import PlainBox
from tests.contract.conftest import postgres_store_class
from tests.contract.support import (
    FAILED,
    PENDING,
    SENDING,
    app_with_endpoint,
    finish,
    mk_message,
    outcome,
    send,
)

HOUR = 3_600_000
LEASE = 60_000
SLACK = 5_000  # ms: a statement's time, and then some


@pytest.fixture
async def store(migrated_postgres_url: str) -> AsyncIterator[Store]:
    s: Store = postgres_store_class()(migrated_postgres_url, PlainBox())  # the database's clock
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def near(value: int | None, expected: int) -> bool:
    return value is not None and abs(value - expected) <= SLACK


async def test_a_host_ahead_cannot_take_a_lease_a_host_behind_still_claims(store: Store) -> None:
    app, ep = await app_with_endpoint(store)
    msg = await send(store, app.id, now=now_ms())
    [first] = await store.claim_due(10, LEASE, now_ms() - HOUR)  # due by the database's clock
    assert await store.claim_due(10, LEASE, now_ms() + HOUR) == []  # its lease holds
    assert (await store.get_delivery(msg.id, ep.id)).status == SENDING
    assert near(await store.next_due_at(), now_ms() + LEASE)  # stored on the database's clock
    assert near(await store.next_due_at(now_ms() + HOUR), now_ms() + HOUR + LEASE)  # as seen there
    depth = await store.queue_depth(now_ms() + HOUR)
    assert (depth.due, depth.scheduled) == (0, 0)
    # renewed from the database's now, not from the renewer's
    assert await store.renew([(first.delivery_id, first.lease)], 2 * LEASE, now_ms() - HOUR) == 1
    assert near(await store.next_due_at(), now_ms() + 2 * LEASE)
    # handed back: due at once for a host behind, too
    assert await store.release([(first.delivery_id, first.lease)], now_ms() + HOUR) == 1
    [again] = await store.claim_due(10, LEASE, now_ms() - HOUR)
    assert again.delivery_id == first.delivery_id
    depth = await store.queue_depth(now_ms() - HOUR)
    assert (depth.due, depth.oldest_due_at) == (0, None)


async def test_a_retry_is_due_its_delay_after_the_database_clock(store: Store) -> None:
    app, ep = await app_with_endpoint(store)
    msg = await send(store, app.id, now=now_ms())
    [c] = await store.claim_due(10, LEASE, now_ms())
    ahead = now_ms() + HOUR  # the worker's clock
    await finish(store, outcome(c, PENDING, at=ahead, retry_at=ahead + 30_000), now=ahead)
    d = await store.get_delivery(msg.id, ep.id)
    assert d.status == PENDING and near(d.next_attempt_at, now_ms() + 30_000)
    assert near(await store.next_due_at(), now_ms() + 30_000)
    assert await store.claim_due(10, LEASE, ahead + 31_000) == []  # not due for 30 s
    depth = await store.queue_depth(now_ms() + HOUR)
    assert (depth.due, depth.scheduled) == (0, 1)


async def test_resend_and_recover_by_a_host_ahead_are_due_at_once(store: Store) -> None:
    app, ep = await app_with_endpoint(store)
    msg = await send(store, app.id, now=now_ms())
    [c] = await store.claim_due(10, LEASE, now_ms())
    await finish(store, outcome(c, FAILED, at=now_ms()), now=now_ms())
    ahead = now_ms() + HOUR  # the API's clock
    assert await store.recover(app.id, ep.id, now_ms() - HOUR, None, ahead) == 1
    depth = await store.queue_depth(now_ms())
    assert depth.due == 1 and near(depth.oldest_due_at, now_ms())
    [c] = await store.claim_due(10, LEASE, now_ms())  # a worker whose clock is right
    await finish(store, outcome(c, FAILED, at=now_ms()), now=now_ms())
    await store.resend(app.id, msg.id, ep.id, ahead)
    [c] = await store.claim_due(10, LEASE, now_ms())
    assert c.message_id == msg.id


async def test_messages_sent_by_a_host_ahead_are_due_at_once(store: Store) -> None:
    app, ep = await app_with_endpoint(store)
    ahead = now_ms() + HOUR  # the API's clock
    alone = await send(store, app.id, now=ahead)  # the single-message statement
    together = await asyncio.gather(*(send(store, app.id, now=ahead) for _ in range(8)))
    chosen = await store.create_message(  # test events: deliveries to chosen endpoints
        mk_message(app.id, at=ahead), ahead, endpoint_ids=[ep.id]
    )
    claimed = await store.claim_due(50, LEASE, now_ms())  # a worker whose clock is right
    sent = {alone.id, chosen.message.id, *(m.id for m in together)}
    assert {c.message_id for c in claimed} == sent
