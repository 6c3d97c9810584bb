"""``claim_due`` with a cap per endpoint (``max_per_endpoint``, ``in_flight``): an endpoint's
surplus stays due and untouched, instead of being leased only for the worker to hand it back.

The case it is for: an endpoint whose deliveries waited while it was at its in-flight limit
holds the oldest due rows; the first claim after it frees a slot must not lease them all.
The tests on ``world`` run on the in-memory queue too.
"""

from __future__ import annotations

from dataclasses import replace

from hookpost.store.base import Store

from .support import CANCELED, PENDING, SENDING, T0, QueueWorld, claim, new_app, new_endpoint, send


async def test_the_cap_leaves_an_endpoints_surplus_due_and_untouched(store: Store) -> None:
    app = await new_app(store)
    slow = await new_endpoint(store, app.id, url="https://slow.example/hook")
    msgs = [await send(store, app.id, now=T0 + i) for i in range(5)]  # the oldest rows
    fast = await new_endpoint(store, app.id, url="https://fast.example/hook")
    later = await send(store, app.id, now=T0 + 10)

    got = await claim(store, T0 + 20, limit=4, max_per_endpoint=3, in_flight={slow.id: 1})

    # 3 - 1 in flight = 2 of `slow`, oldest first, and `fast`'s row, round-robin; the rest of
    # `slow`'s rows stay due, untouched
    assert [(c.endpoint_id, c.message_id) for c in got] == [
        (slow.id, msgs[0].id),
        (fast.id, later.id),
        (slow.id, msgs[1].id),
    ]
    for m in msgs[:2]:
        assert (await store.get_delivery(m.id, slow.id)).status == SENDING
    for i, m in enumerate(msgs[2:], start=2):
        d = await store.get_delivery(m.id, slow.id)
        assert (d.status, d.attempts, d.updated_at) == (PENDING, 0, T0 + i)  # untouched
    # with `slow` full, the next claim leaves it alone
    rest = await claim(
        store,
        T0 + 20,
        limit=4,
        exclude_endpoints=[slow.id],
        max_per_endpoint=3,
        in_flight={slow.id: 3},
    )
    assert rest == []


async def test_the_cap_applies_to_endpoints_not_in_flight_and_counts_their_slots(
    world: QueueWorld,
) -> None:
    ep = await world.endpoint()
    for i in range(6):
        await world.send(now=T0 + i)
    first = await claim(world.queue, T0 + 10, limit=100, max_per_endpoint=4)
    assert len(first) == 4  # nothing in flight: the cap itself
    second = await claim(world.queue, T0 + 10, limit=100, max_per_endpoint=4, in_flight={ep.id: 4})
    assert second == []  # at the cap: nothing, and nothing changed
    rest = await claim(world.queue, T0 + 10, limit=100, max_per_endpoint=4, in_flight={ep.id: 2})
    assert len(rest) == 2
    assert {c.delivery_id for c in first}.isdisjoint(c.delivery_id for c in rest)
    assert await claim(world.queue, T0 + 10) == []  # all six are leased now


async def test_without_a_cap_everything_due_is_claimed(world: QueueWorld) -> None:
    ep = await world.endpoint()
    for i in range(5):
        await world.send(now=T0 + i)
    got = await claim(world.queue, T0 + 10, limit=100, in_flight={ep.id: 30})
    assert len(got) == 5  # in_flight alone caps nothing


async def test_a_disabled_endpoints_backlog_is_canceled_in_one_claim_whatever_the_cap(
    store: Store,
) -> None:
    """The cap is for endpoints that will be sent to; a disabled endpoint's rows are canceled,
    all of those scanned at once, so a backlog of them at the head of the queue does not take
    a claim per ``max_per_endpoint`` rows while the work behind it waits."""
    app = await new_app(store)
    ep = await new_endpoint(store, app.id)
    msgs = [await send(store, app.id, now=T0 + i) for i in range(3)]
    await store.update_endpoint(replace(ep, disabled=True, updated_at=T0 + 1))
    healthy = await new_endpoint(store, app.id)
    behind = await send(store, app.id, now=T0 + 5)
    got = await claim(store, T0 + 10, max_per_endpoint=1)
    assert [(c.endpoint_id, c.message_id) for c in got] == [(healthy.id, behind.id)]
    statuses = [(await store.get_delivery(m.id, ep.id)).status for m in msgs]
    assert statuses == [CANCELED] * 3
