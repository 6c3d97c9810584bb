"""The DeliveryQueue port: claim, lease, finish and release deliveries.

``TestDeliveryQueue`` runs once per backend and once on the in-memory queue (``world``);
``TestDeliveryQueueOfAStore`` once per backend (``store``). See ``conftest``."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest

from hookpost.domain.models import AttemptStatus, ClaimedDelivery, PageRequest, SigningKey, Trigger
from hookpost.domain.queries import AttemptFilter, FinishOutcome, QueueDepth
from hookpost.store.base import Store
from hookpost.store.rows import PlainBox

from .conftest import StoreFactory
from .support import (
    CANCELED,
    DAY,
    FAILED,
    HOUR,
    LEASE,
    PENDING,
    SENDING,
    SUCCEEDED,
    T0,
    QueueWorld,
    app_with_endpoint,
    claim,
    fail_final,
    finish,
    mk_message,
    new_app,
    new_endpoint,
    outcome,
    send,
    wait_for,
)


class TestDeliveryQueue:
    """On every backend and on the in-memory queue (``world``: a queue and a way to fill it)."""

    async def test_claim_only_due_rows_in_due_order(self, world: QueueWorld) -> None:
        await world.endpoint()
        late = await world.send(now=T0 + 30)
        first = await world.send(now=T0 + 10)
        middle = await world.send(now=T0 + 20)
        assert await claim(world.queue, T0 + 9) == []
        order = []
        for _ in range(3):
            got = await claim(world.queue, T0 + 30, limit=1)
            assert len(got) == 1
            order.append(got[0].message_id)
        assert order == [first.id, middle.id, late.id]
        assert await claim(world.queue, T0 + 30) == []

    async def test_claim_honours_limit_and_due_time(self, world: QueueWorld) -> None:
        await world.endpoint()
        for _ in range(5):
            await world.send(now=T0)
        assert await claim(world.queue, T0 - 1) == []
        a = await claim(world.queue, T0, limit=3)  # due at creation time
        b = await claim(world.queue, T0, limit=3)
        assert (len(a), len(b)) == (3, 2)
        assert {c.delivery_id for c in a}.isdisjoint(c.delivery_id for c in b)
        assert await claim(world.queue, T0) == []

    async def test_lease_blocks_reclaim_until_it_expires(self, world: QueueWorld) -> None:
        ep = await world.endpoint()
        msg = await world.send()
        [first] = await claim(world.queue, T0)
        assert await claim(world.queue, T0 + 1) == []
        assert await claim(world.queue, T0 + LEASE - 1) == []
        [second] = await claim(world.queue, T0 + LEASE + 1)  # the first worker crashed
        assert second.delivery_id == first.delivery_id
        assert second.lease != first.lease
        assert await claim(world.queue, T0 + LEASE + 2) == []
        # the first worker's late result is stale: recorded, but the delivery stays leased
        out = await finish(
            world.queue, outcome(first, SUCCEEDED, at=T0 + LEASE + 3), now=T0 + LEASE + 3
        )
        assert out.stale == 1
        assert await world.status(msg.id, ep.id) == SENDING
        out = await finish(
            world.queue, outcome(second, SUCCEEDED, at=T0 + LEASE + 4), now=T0 + LEASE + 4
        )
        assert out.stale == 0
        assert await world.status(msg.id, ep.id) == SUCCEEDED

    async def test_claim_excludes_endpoints(self, world: QueueWorld) -> None:
        e1, e2, e3 = [await world.endpoint() for _ in range(3)]
        await world.send()
        got = await claim(world.queue, T0, exclude_endpoints=[e1.id, e3.id])
        assert [c.endpoint_id for c in got] == [e2.id]
        assert await claim(world.queue, T0, exclude_endpoints=[e1.id, e3.id]) == []
        rest = await claim(world.queue, T0, exclude_endpoints=())
        assert sorted(c.endpoint_id for c in rest) == sorted([e1.id, e3.id])

    async def test_release_returns_leased_rows_to_pending_now(self, world: QueueWorld) -> None:
        ep = await world.endpoint()
        m1, m2 = await world.send(), await world.send()
        by_msg = {c.message_id: c for c in await claim(world.queue, T0)}
        c1, c2 = by_msg[m1.id], by_msg[m2.id]
        released = await world.queue.release(
            [(c1.delivery_id, c1.lease), (c2.delivery_id, "someone-else")], T0 + 10
        )
        assert released == 1
        assert await world.status(m1.id, ep.id) == PENDING
        assert await world.status(m2.id, ep.id) == SENDING
        [again] = await claim(world.queue, T0 + 10)  # due now, well before the lease would expire
        assert (again.delivery_id, again.attempts) == (c1.delivery_id, 0)
        await finish(world.queue, outcome(again, SUCCEEDED, at=T0 + 11), now=T0 + 11)
        assert await world.queue.release([(again.delivery_id, again.lease)], T0 + 12) == 0
        assert await world.queue.release([], T0 + 12) == 0

    async def test_queue_depth_and_next_due_at(self, world: QueueWorld) -> None:
        assert await world.queue.queue_depth(T0) == QueueDepth(
            due=0, oldest_due_at=None, scheduled=0
        )
        assert await world.queue.next_due_at() is None
        await world.endpoint()
        await world.send(now=T0)
        assert len(await claim(world.queue, T0)) == 1  # SENDING, lease expires at T0 + LEASE
        assert await world.queue.next_due_at() == T0 + LEASE
        await world.send(now=T0 + 10)
        await world.send(now=T0 + 20)
        [retrying] = await claim(world.queue, T0 + 20, limit=1)
        await finish(
            world.queue,
            outcome(retrying, PENDING, at=T0 + 21, retry_at=T0 + 2 * LEASE),
            now=T0 + 21,
        )
        # one due (T0+20), one scheduled retry, one leased (neither due nor scheduled)
        assert await world.queue.queue_depth(T0 + 500) == QueueDepth(
            due=1, oldest_due_at=T0 + 20, scheduled=1
        )
        assert await world.queue.next_due_at() == T0 + 20
        # the lease has expired: that delivery is due again
        assert await world.queue.queue_depth(T0 + LEASE + 1) == QueueDepth(
            due=2, oldest_due_at=T0 + 20, scheduled=1
        )
        assert await world.queue.queue_depth(T0 + 2 * LEASE) == QueueDepth(
            due=3, oldest_due_at=T0 + 20, scheduled=0
        )
        for c in await claim(world.queue, T0 + 2 * LEASE):
            await finish(world.queue, outcome(c, SUCCEEDED, at=T0 + 2 * LEASE), now=T0 + 2 * LEASE)
        assert await world.queue.queue_depth(T0 + DAY) == QueueDepth(0, None, 0)
        assert await world.queue.next_due_at() is None


class TestDeliveryQueueOfAStore:
    """What only a store can show: the rows it claims from, and its other roles' views."""

    async def test_claimed_delivery_carries_what_was_stored(self, store: Store) -> None:
        keys = [SigningKey("whsec_now"), SigningKey("whsec_before", T0 + HOUR)]
        app, ep = await app_with_endpoint(
            store,
            url="https://receiver.example/in",
            headers={"X-Custom": "1", "Authorization": "Bearer t"},
            keys=keys,
            signature_scheme="standard-webhooks",
            retry_schedule=[2, 4],
        )
        payload = '{"name":"Zoë","emoji":"🎉","n":[1,2.5,null]}'.encode()
        msg = await send(
            store, app.id, at=T0 - 50, now=T0, event_type="user.created", payload=payload
        )
        [c] = await claim(store, T0)
        d = await store.get_delivery(msg.id, ep.id)
        assert d.status == SENDING
        assert isinstance(c.lease, str) and c.lease
        assert c == ClaimedDelivery(
            delivery_id=d.id,
            lease=c.lease,
            app_id=app.id,
            message_id=msg.id,
            endpoint_id=ep.id,
            event_type="user.created",
            payload=payload,
            msg_created_at=T0 - 50,
            attempts=0,
            trigger=Trigger.SCHEDULED,
            url="https://receiver.example/in",
            headers={"X-Custom": "1", "Authorization": "Bearer t"},
            keys=keys,
            signature_scheme="standard-webhooks",
            retry_schedule=[2, 4],
            due_at=T0,
        )
        assert type(c.payload) is bytes

    async def test_a_row_that_cannot_be_decoded_does_not_hold_back_its_batch(
        self, store: Store, store_factory: StoreFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = await new_app(store)
        good = await new_endpoint(store, app.id)
        bad = await new_endpoint(store, app.id)
        bad_secret = bad.keys[0].secret
        msg = await send(store, app.id)
        # A claimer whose box cannot open the bad endpoint's keys (say, a rotated main key).
        async with store_factory(box=_BoxThatCannotOpen(bad_secret)) as picky:
            got = await claim(picky, T0)
        assert [c.endpoint_id for c in got] == [good.id]
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert any("cannot be decoded" in e for e in errors), errors
        # The bad row is not lost: leased like the others, and claimed again once that expires.
        assert (await store.get_delivery(msg.id, bad.id)).status == SENDING
        assert await claim(store, T0 + 1) == []
        await finish(store, outcome(got[0], SUCCEEDED, at=T0 + 2), now=T0 + 2)
        again = await claim(store, T0 + LEASE + 1)
        assert [(c.endpoint_id, c.keys[0].secret) for c in again] == [(bad.id, bad_secret)]

    async def test_deliveries_of_a_disabled_endpoint_are_canceled_not_claimed(
        self, store: Store
    ) -> None:
        app = await new_app(store)
        e_on, e_off = await new_endpoint(store, app.id), await new_endpoint(store, app.id)
        msg = await send(store, app.id)
        assert (await store.get_delivery(msg.id, e_off.id)).status == PENDING
        await store.update_endpoint(replace(e_off, disabled=True, updated_at=T0 + 1))
        got = await claim(store, T0 + 2)
        assert [c.endpoint_id for c in got] == [e_on.id]
        assert (await store.get_delivery(msg.id, e_off.id)).status == CANCELED
        assert await claim(store, T0 + 10 * LEASE, exclude_endpoints=[e_on.id]) == []
        depth = await store.queue_depth(T0 + 3)
        assert (depth.due, depth.scheduled) == (0, 0)

    async def test_concurrent_claimers_never_share_a_delivery(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        app = await new_app(store)
        for _ in range(3):
            await new_endpoint(store, app.id)
        for i in range(20):
            await send(store, app.id, now=T0 + i)
        total = 60
        async with store_factory() as other:
            batches = await asyncio.gather(
                *(s.claim_due(7, LEASE, T0 + 100) for s in [store, other] * 6)
            )
            got = [c.delivery_id for batch in batches for c in batch]
            assert len(got) == len(set(got)), "a delivery was handed out twice"
            rest = await other.claim_due(total, LEASE, T0 + 100)
        rest_ids = [c.delivery_id for c in rest]
        assert set(got).isdisjoint(rest_ids)
        assert len(got) + len(rest_ids) == total
        assert await claim(store, T0 + 100) == []

    async def test_finish_failure_with_retry(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        await finish(store, outcome(c, PENDING, at=T0 + 10, retry_at=T0 + 5000), now=T0 + 10)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.status, d.attempts, d.next_attempt_at) == (PENDING, 1, T0 + 5000)
        assert await store.next_due_at() == T0 + 5000
        assert await claim(store, T0 + 4999) == []
        [again] = await claim(store, T0 + 5000)
        assert (again.delivery_id, again.attempts, again.trigger) == (
            c.delivery_id,
            1,
            Trigger.SCHEDULED,
        )
        await finish(store, outcome(again, SUCCEEDED, at=T0 + 5001), now=T0 + 5001)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.status, d.attempts) == (SUCCEEDED, 2)

    async def test_finish_failure_final(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        await fail_final(store, c, T0 + 10)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.status, d.attempts, d.next_attempt_at) == (FAILED, 1, None)
        assert await claim(store, T0 + 10 * DAY) == []
        assert await store.next_due_at() is None
        attempts = await store.list_attempts(app.id, PageRequest(limit=10), AttemptFilter())
        assert [a.status for a in attempts.items] == [AttemptStatus.FAIL]

    async def test_finish_with_a_lost_lease_is_stale(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        bad = outcome(c, SUCCEEDED, at=T0 + 10, lease="not-the-lease")
        out = await finish(store, bad, now=T0 + 10)
        assert out == FinishOutcome(disabled_endpoints=[], stale=1)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.status, d.attempts) == (SENDING, 0)
        attempts = await store.list_attempts(app.id, PageRequest(limit=10), AttemptFilter())
        assert attempts.items == [bad.attempt]  # the attempt really happened: recorded
        # the real owner can still finish
        out = await finish(store, outcome(c, SUCCEEDED, at=T0 + 11), now=T0 + 11)
        assert out.stale == 0
        assert (await store.get_delivery(msg.id, ep.id)).status == SUCCEEDED

    async def test_finish_after_the_endpoint_was_deleted_mid_flight(self, store: Store) -> None:
        """A result for a delivery that no longer exists must not sink the rest of the batch."""
        app = await new_app(store)
        gone, stays = await new_endpoint(store, app.id), await new_endpoint(store, app.id)
        msg = await send(store, app.id)
        by_ep = {c.endpoint_id: c for c in await claim(store, T0)}
        await store.delete_endpoint(app.id, gone.id)
        out = await finish(
            store,
            outcome(by_ep[gone.id], FAILED, at=T0 + 1),
            outcome(by_ep[stays.id], SUCCEEDED, at=T0 + 1),
            now=T0 + 1,
        )
        assert out == FinishOutcome(disabled_endpoints=[], stale=1)
        assert (await store.get_delivery(msg.id, stays.id)).status == SUCCEEDED
        attempts = await store.list_attempts(app.id, PageRequest(limit=10), AttemptFilter())
        assert [a.endpoint_id for a in attempts.items] == [stays.id]

    async def test_on_new_work_fires_after_create_message(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        woke = asyncio.Event()
        threads: list[int] = []

        def callback() -> None:
            threads.append(threading.get_ident())
            woke.set()

        store.on_new_work(callback)
        created = await store.create_message(mk_message(app.id), T0)
        assert created.deliveries == 1
        await wait_for(woke)
        assert threads[0] == threading.get_ident(), "called on the event loop's thread"

    async def test_on_new_work_fires_after_resend(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store, event_types=["other.thing"])
        msg = await send(store, app.id)  # matches nothing: no deliveries, no wake-up
        woke = asyncio.Event()
        store.on_new_work(woke.set)
        await store.resend(app.id, msg.id, ep.id, T0 + 1)
        await wait_for(woke)
        [c] = await claim(store, T0 + 1)
        assert (c.endpoint_id, c.trigger) == (ep.id, Trigger.MANUAL)

    async def test_on_new_work_fires_after_release_and_recover(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        step = [asyncio.Event()]
        store.on_new_work(lambda: step[-1].set())
        await send(store, app.id)
        await wait_for(step[-1])  # the create's wake-up, so none is left in flight

        [c] = await claim(store, T0)
        step.append(asyncio.Event())
        assert await store.release([(c.delivery_id, c.lease)], T0 + 1) == 1
        await wait_for(step[-1])

        [c] = await claim(store, T0 + 1)
        await fail_final(store, c, T0 + 2)
        step.append(asyncio.Event())
        assert await store.recover(app.id, ep.id, T0 - HOUR, None, T0 + 3) == 1
        await wait_for(step[-1])
        assert len(await claim(store, T0 + 3)) == 1


class _BoxThatCannotOpen(PlainBox):
    """Opens every sealed value except those holding ``secret``."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def open(self, sealed: str, context: bytes = b"") -> bytes:
        if self._secret in sealed:
            raise ValueError("cannot open this sealed value")
        return super().open(sealed, context)
