"""Leases: renewed while a delivery is in flight, never taken back by their own worker, and a
result whose lease was lost changes neither the delivery nor the endpoint's health.

``TestLeases`` runs once per backend and once on the in-memory queue (``world``);
``TestStaleResults`` once per backend (``store``: only a store keeps endpoint health). The
PostgreSQL stores here take their time from ``now_ms`` (see ``conftest.build_store``); the
database's own clock has its tests in ``test_postgres_clock``."""

from __future__ import annotations

from hookpost.domain.models import AttemptStatus, PageRequest
from hookpost.domain.queries import AttemptFilter, FinishOutcome
from hookpost.store.base import Store

from .support import (
    FAILED,
    LEASE,
    PENDING,
    SENDING,
    SUCCEEDED,
    T0,
    QueueWorld,
    app_with_endpoint,
    claim,
    finish,
    outcome,
    send,
)

GONE = "endpoint answered HTTP 410 Gone"


class TestLeases:
    async def test_a_renewed_lease_lasts_a_lease_from_the_renewal(self, world: QueueWorld) -> None:
        await world.endpoint()
        await world.send()
        [c] = await claim(world.queue, T0)
        renewed = await world.queue.renew([(c.delivery_id, c.lease)], LEASE, T0 + LEASE - 1)
        assert renewed == 1
        assert await claim(world.queue, T0 + LEASE + 1) == []  # expired, but for the renewal
        assert await world.queue.next_due_at() == T0 + 2 * LEASE - 1
        [again] = await claim(world.queue, T0 + 2 * LEASE - 1)  # the renewed lease expired
        assert again.delivery_id == c.delivery_id and again.lease != c.lease

    async def test_only_a_held_lease_is_renewed(self, world: QueueWorld) -> None:
        ep = await world.endpoint()
        lost, done = await world.send(), await world.send()
        by_msg = {c.message_id: c for c in await claim(world.queue, T0)}
        first, finished = by_msg[lost.id], by_msg[done.id]
        [second] = await claim(world.queue, T0 + LEASE + 1, limit=1)  # the first owner's expired
        assert second.delivery_id == first.delivery_id
        await finish(world.queue, outcome(finished, SUCCEEDED, at=T0 + 2), now=T0 + 2)
        renewed = await world.queue.renew(
            [(first.delivery_id, first.lease), (finished.delivery_id, finished.lease)],
            10 * LEASE,
            T0 + LEASE + 2,
        )
        assert renewed == 0
        assert await world.queue.renew([], LEASE, T0 + LEASE + 2) == 0
        # the new owner's lease is untouched: it expires LEASE after its claim
        assert await world.queue.next_due_at() == T0 + 2 * LEASE + 1
        assert await world.status(done.id, ep.id) == SUCCEEDED

    async def test_a_claim_skips_the_deliveries_it_is_told_to(self, world: QueueWorld) -> None:
        """A worker names what it still has in flight: its own expired lease is not taken."""
        await world.endpoint()
        await world.send()
        await world.send()
        mine = await claim(world.queue, T0)
        assert len(mine) == 2
        held = [c.delivery_id for c in mine]
        assert await claim(world.queue, T0 + LEASE + 1, exclude_deliveries=held) == []
        [one] = await claim(world.queue, T0 + LEASE + 1, exclude_deliveries=held[:1])
        assert one.delivery_id == held[1]


class TestStaleResults:
    async def test_a_stale_410_neither_disables_the_endpoint_nor_counts(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [first] = await claim(store, T0)
        [second] = await claim(store, T0 + LEASE + 1)  # the first owner's lease expired
        gone = outcome(first, FAILED, at=T0 + LEASE + 2, reason=GONE, response_status_code=410)
        out = await finish(store, gone, now=T0 + LEASE + 2)
        assert out == FinishOutcome(disabled_endpoints=[], stale=1)
        after = await store.get_endpoint(app.id, ep.id)
        assert (after.disabled, after.consecutive_failures, after.first_failure_at) == (
            False,
            0,
            None,
        )
        assert after.updated_at == ep.updated_at
        delivery = await store.get_delivery(msg.id, ep.id)
        assert (delivery.status, delivery.attempts) == (SENDING, 0)
        attempts = await store.list_attempts(app.id, PageRequest(limit=10), AttemptFilter())
        assert attempts.items == [gone.attempt]  # the request was made: it is on record
        # the owner's result counts
        out = await finish(store, outcome(second, SUCCEEDED, at=T0 + LEASE + 3), now=T0 + LEASE + 3)
        assert out == FinishOutcome(disabled_endpoints=[], stale=0)
        assert (await store.get_delivery(msg.id, ep.id)).status == SUCCEEDED

    async def test_a_stale_success_does_not_end_a_failure_streak(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        failing, other = await send(store, app.id), await send(store, app.id, now=T0 + 1)
        [c] = await claim(store, T0, limit=1)
        assert c.message_id == failing.id
        await finish(store, outcome(c, PENDING, at=T0 + 5, retry_at=T0 + 10 * LEASE), now=T0 + 5)
        [first] = await claim(store, T0 + 6)
        assert first.message_id == other.id
        [second] = await claim(store, T0 + LEASE + 7)  # the first owner's lease expired
        out = await finish(store, outcome(first, SUCCEEDED, at=T0 + LEASE + 8), now=T0 + LEASE + 8)
        assert out.stale == 1
        after = await store.get_endpoint(app.id, ep.id)
        assert (after.consecutive_failures, after.first_failure_at) == (1, T0 + 5)
        # a fresh failure in the same batch as a stale one: only the fresh one counts
        stale_fail = outcome(first, FAILED, at=T0 + LEASE + 9, reason=GONE)
        fresh_fail = outcome(second, PENDING, at=T0 + LEASE + 9, retry_at=T0 + 20 * LEASE)
        out = await finish(store, stale_fail, fresh_fail, now=T0 + LEASE + 9)
        assert out == FinishOutcome(disabled_endpoints=[], stale=1)
        after = await store.get_endpoint(app.id, ep.id)
        assert (after.disabled, after.consecutive_failures) == (False, 2)
        statuses = [
            a.status
            for a in (
                await store.list_attempts(app.id, PageRequest(limit=10), AttemptFilter())
            ).items
        ]
        assert statuses.count(AttemptStatus.FAIL) == 3  # every attempt is on record
