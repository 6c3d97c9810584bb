"""Ordered endpoints (domain.ordering) on every database backend: one live delivery at a time,
in creation order; the rest parked until the head succeeds, fails for good or is canceled.

The stores keep the rule in SQL and in their transactions (parking on every path that queues
a delivery, settling under the endpoint's lock on PostgreSQL); these tests hold both backends
to it through the ports alone. The in-memory queue has no endpoints, so none is ordered: it is
left out.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from hookpost.domain.models import ClaimedDelivery, Endpoint
from hookpost.store.base import Store

from .support import (
    CANCELED,
    FAILED,
    LEASE,
    PENDING,
    SENDING,
    SUCCEEDED,
    T0,
    claim,
    finish,
    mk_message,
    new_app,
    new_endpoint,
    outcome,
    send,
)


async def _ordered(store: Store, **kw: object) -> tuple[str, Endpoint]:
    app = await new_app(store)
    return app.id, await new_endpoint(store, app.id, ordered=True, **kw)


async def _sends(store: Store, app_id: str, n: int, now: int = T0) -> list[str]:
    return [(await send(store, app_id, now=now, at=now + i)).id for i in range(n)]


async def _take_one(store: Store, now: int, endpoint_id: str) -> ClaimedDelivery:
    got = [c for c in await claim(store, now) if c.endpoint_id == endpoint_id]
    assert len(got) == 1, f"one head at a time, got {len(got)}"
    assert got[0].ordered
    return got[0]


async def _none(store: Store, now: int, endpoint_id: str) -> None:
    assert [c for c in await claim(store, now) if c.endpoint_id == endpoint_id] == []


async def test_one_at_a_time_in_creation_order(store: Store) -> None:
    app_id, ep = await _ordered(store)
    msgs = await _sends(store, app_id, 4)
    now = T0 + 10
    seen = []
    for i in range(4):
        head = await _take_one(store, now, ep.id)
        await _none(store, now, ep.id)  # nothing behind it goes while it is in flight
        seen.append(head.message_id)
        for behind in msgs[i + 1 :]:
            assert (await store.get_delivery(behind, ep.id)).status == PENDING
        await finish(store, outcome(head, SUCCEEDED, at=now), now=now)
        now += 1
    assert seen == msgs
    await _none(store, now, ep.id)


async def test_a_failing_head_holds_back_the_rest_until_exhausted(store: Store) -> None:
    app_id, ep = await _ordered(store)
    first, second = await _sends(store, app_id, 2)
    head = await _take_one(store, T0 + 10, ep.id)
    assert head.message_id == first
    await finish(store, outcome(head, PENDING, at=T0 + 10, retry_at=T0 + 1_000), now=T0 + 10)
    await _none(store, T0 + 500, ep.id)  # the retry is not due, and the second waits behind it
    again = await _take_one(store, T0 + 1_000, ep.id)
    assert again.message_id == first and again.attempts == 1
    await finish(store, outcome(again, FAILED, at=T0 + 1_000), now=T0 + 1_000)
    assert (await store.get_delivery(first, ep.id)).status == FAILED
    nxt = await _take_one(store, T0 + 1_001, ep.id)
    assert nxt.message_id == second


async def test_a_head_whose_worker_died_is_still_the_head(store: Store) -> None:
    app_id, ep = await _ordered(store)
    first, _second = await _sends(store, app_id, 2)
    lost = await _take_one(store, T0 + 10, ep.id)
    await _none(store, T0 + 10 + LEASE - 1, ep.id)  # leased: nothing else goes
    back = await _take_one(store, T0 + 10 + LEASE, ep.id)  # the lease expired
    assert back.message_id == first == lost.message_id
    # the dead worker's late result is stale: it neither finishes the head nor moves the queue
    out = await finish(store, outcome(lost, SUCCEEDED, at=T0 + LEASE + 20), now=T0 + LEASE + 20)
    assert out.stale == 1
    await _none(store, T0 + LEASE + 20, ep.id)


async def test_unordered_endpoints_beside_an_ordered_one_are_untouched(store: Store) -> None:
    app_id, ordered = await _ordered(store)
    plain = await new_endpoint(store, app_id)
    await _sends(store, app_id, 3)
    got = await claim(store, T0 + 10)
    assert sum(c.endpoint_id == plain.id for c in got) == 3
    assert sum(c.endpoint_id == ordered.id for c in got) == 1
    assert not any(c.ordered for c in got if c.endpoint_id == plain.id)


async def test_concurrent_creates_leave_one_head(store: Store) -> None:
    app_id, ep = await _ordered(store)
    created = await asyncio.gather(
        *(store.create_message(mk_message(app_id, at=T0 + i), T0) for i in range(12))
    )
    assert all(c.created and c.deliveries == 1 for c in created)
    delivery_ids = {
        (await store.get_delivery(c.message.id, ep.id)).id: c.message.id for c in created
    }
    order = [delivery_ids[i] for i in sorted(delivery_ids)]
    seen, now = [], T0 + 10
    for _ in range(12):
        head = await _take_one(store, now, ep.id)
        seen.append(head.message_id)
        await finish(store, outcome(head, SUCCEEDED, at=now), now=now)
        now += 1
    assert seen == order  # insert order: the deliveries' ids


async def test_switching_ordered_on_and_off(store: Store) -> None:
    app = await new_app(store)
    ep = await new_endpoint(store, app.id)
    msgs = await _sends(store, app.id, 3)
    ep = await store.update_endpoint(replace(ep, ordered=True, updated_at=T0 + 1))
    head = await _take_one(store, T0 + 10, ep.id)
    assert head.message_id == msgs[0]  # the oldest stays live, the others are parked
    ep = await store.update_endpoint(replace(ep, ordered=False, updated_at=T0 + 2))
    rest = [c for c in await claim(store, T0 + 11) if c.endpoint_id == ep.id]
    assert sorted(c.message_id for c in rest) == msgs[1:]  # unparked: all due at once


async def test_switched_on_while_in_flight_the_sweep_moves_on(store: Store) -> None:
    app = await new_app(store)
    ep = await new_endpoint(store, app.id)
    msgs = await _sends(store, app.id, 3)
    in_flight = [c for c in await claim(store, T0 + 10, limit=1)]
    assert [c.message_id for c in in_flight] == msgs[:1] and not in_flight[0].ordered
    ep = await store.update_endpoint(replace(ep, ordered=True, updated_at=T0 + 11))
    await _none(store, T0 + 12, ep.id)  # the one in flight is the head: the rest parked
    # claimed before the switch, its result does not know the endpoint is ordered
    await finish(store, outcome(in_flight[0], SUCCEEDED, at=T0 + 13), now=T0 + 13)
    await _none(store, T0 + 14, ep.id)
    assert await store.settle_ordered(T0 + 15) == 1
    assert await store.settle_ordered(T0 + 15) == 0  # settled: nothing more to do
    assert (await _take_one(store, T0 + 16, ep.id)).message_id == msgs[1]


async def test_a_disabled_ordered_endpoint_cancels_its_parked_rows(store: Store) -> None:
    app_id, ep = await _ordered(store)
    msgs = await _sends(store, app_id, 3)
    await store.update_endpoint(replace(ep, disabled=True, updated_at=T0 + 1))
    await _none(store, T0 + 10, ep.id)
    for m in msgs:
        assert (await store.get_delivery(m, ep.id)).status == CANCELED
    assert await store.settle_ordered(T0 + 11) == 0


async def test_resend_and_recover_queue_behind_the_head(store: Store) -> None:
    app_id, ep = await _ordered(store)
    first, second, third = await _sends(store, app_id, 3)
    head = await _take_one(store, T0 + 10, ep.id)
    await finish(store, outcome(head, FAILED, at=T0 + 10), now=T0 + 10)
    head = await _take_one(store, T0 + 11, ep.id)
    assert head.message_id == second
    await store.resend(app_id, first, ep.id, T0 + 12)  # parked behind the head in flight
    await _none(store, T0 + 12, ep.id)
    await finish(store, outcome(head, SUCCEEDED, at=T0 + 13), now=T0 + 13)
    # the queue is in delivery id order: the resent row is the oldest
    head = await _take_one(store, T0 + 14, ep.id)
    assert head.message_id == first
    await finish(store, outcome(head, FAILED, at=T0 + 14), now=T0 + 14)
    assert (await _take_one(store, T0 + 15, ep.id)).message_id == third
    assert await store.recover(app_id, ep.id, T0 - 1_000, None, T0 + 16) == 1
    await _none(store, T0 + 16, ep.id)  # third is in flight: the recovered one waits
    assert (await store.get_delivery(first, ep.id)).status == PENDING


async def test_a_head_in_flight_keeps_the_next_create_parked(store: Store) -> None:
    app_id, ep = await _ordered(store)
    (first,) = await _sends(store, app_id, 1)
    head = await _take_one(store, T0 + 10, ep.id)
    (later,) = await _sends(store, app_id, 1, now=T0 + 11)
    assert (await store.get_delivery(later, ep.id)).status == PENDING
    await _none(store, T0 + 12, ep.id)
    assert head.message_id == first
    await finish(store, outcome(head, SUCCEEDED, at=T0 + 13), now=T0 + 13)
    assert (await _take_one(store, T0 + 14, ep.id)).message_id == later
    assert (await store.get_delivery(first, ep.id)).status == SUCCEEDED
    assert SENDING == (await store.get_delivery(later, ep.id)).status


async def test_a_resend_does_not_jump_a_head_waiting_for_its_retry(store: Store) -> None:
    app_id, ep = await _ordered(store)
    first, second = await _sends(store, app_id, 2)
    head = await _take_one(store, T0 + 10, ep.id)
    await finish(store, outcome(head, SUCCEEDED, at=T0 + 10), now=T0 + 10)
    head = await _take_one(store, T0 + 11, ep.id)
    assert head.message_id == second
    await finish(store, outcome(head, PENDING, at=T0 + 11, retry_at=T0 + 1_000), now=T0 + 11)
    await store.resend(app_id, first, ep.id, T0 + 12)  # older, but it queues behind the head
    await _none(store, T0 + 500, ep.id)
    again = await _take_one(store, T0 + 1_000, ep.id)
    assert again.message_id == second
    await finish(store, outcome(again, SUCCEEDED, at=T0 + 1_000), now=T0 + 1_000)
    assert (await _take_one(store, T0 + 1_001, ep.id)).message_id == first
