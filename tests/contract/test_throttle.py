"""An endpoint's throttleRate, enforced by the claim (domain.throttle; issue 20): a claim takes
at most the endpoint's free slots and moves its pace as the domain says, the next due time
waits for the next slot, and concurrent claims never take the same slot twice. SQLite and
PostgreSQL (the in-memory queue has no endpoints to throttle).
"""

from __future__ import annotations

import asyncio
import contextlib
import math

import pytest

from hookpost.domain.throttle import Pace
from hookpost.store.base import Store

from .conftest import StoreFactory
from .support import T0, claim, new_app, new_endpoint, send

NOW = T0 + 1_000


async def _throttled(store: Store, rate: int, backlog: int) -> tuple[str, str]:
    app = await new_app(store)
    ep = await new_endpoint(store, app.id, throttle_rate=rate)
    for i in range(backlog):
        await send(store, app.id, now=T0 + i)
    return app.id, ep.id


async def test_a_claim_takes_the_free_slots_and_moves_the_pace_as_the_domain_says(
    store: Store,
) -> None:
    _, ep = await _throttled(store, 5, 10)

    got = await claim(store, NOW, limit=100, max_per_endpoint=32)

    assert len(got) == Pace(5, None).slots(NOW) == 1
    state = await store.endpoint_pace(ep, NOW)
    assert state.throttle_at == Pace(5, None).after(NOW, 1)
    assert await claim(store, NOW, limit=100, max_per_endpoint=32) == []
    slot = state.throttle_at
    assert slot is not None
    ready = math.ceil(Pace(5, slot).ready_at() or 0)
    assert await claim(store, ready - 1, limit=100, max_per_endpoint=32) == []
    assert len(await claim(store, ready, limit=100, max_per_endpoint=32)) == 1
    after = await store.endpoint_pace(ep, ready)
    assert after.throttle_at == Pace(5, slot).after(ready, 1)


async def test_a_busy_fast_endpoint_takes_the_slots_since_its_last_in_one_claim(
    store: Store,
) -> None:
    _, ep = await _throttled(store, 1000, 200)
    assert len(await claim(store, NOW, limit=128, max_per_endpoint=None)) == 1
    pace = Pace(1000, (await store.endpoint_pace(ep, NOW)).throttle_at)

    later = NOW + 126  # past its gathering time (124.5 ms at 1,000/s)
    got = await claim(store, later, limit=128, max_per_endpoint=None)

    assert len(got) == pace.slots(later) == 126
    assert (await store.endpoint_pace(ep, later)).throttle_at == pace.after(later, 126)


async def test_unthrottled_endpoints_beside_a_throttled_one_take_their_share(store: Store) -> None:
    app = await new_app(store)
    slow = await new_endpoint(store, app.id, throttle_rate=1)
    fast = await new_endpoint(store, app.id)
    for i in range(20):
        await send(store, app.id, now=T0 + i)

    got = await claim(store, NOW, limit=40, max_per_endpoint=32)

    assert sum(c.endpoint_id == slow.id for c in got) == 1
    assert sum(c.endpoint_id == fast.id for c in got) == 20


async def test_the_next_due_time_waits_for_the_next_slot(store: Store) -> None:
    _, ep = await _throttled(store, 2, 3)
    await claim(store, NOW, limit=10)
    slot = (await store.endpoint_pace(ep, NOW)).throttle_at
    assert slot is not None and slot > NOW

    # PostgreSQL's contract store runs on the tests' clock, so due times compare as given.
    assert await store.next_due_at(NOW) == int(slot) + (slot > int(slot))


@pytest.mark.parametrize("rate", [20, 50, 1000])
async def test_the_next_due_time_of_a_fast_endpoint_is_when_a_claim_may_take_from_it(
    store: Store, rate: int
) -> None:
    _, ep = await _throttled(store, rate, 3)
    await claim(store, NOW, limit=1)
    pace = Pace(rate, (await store.endpoint_pace(ep, NOW)).throttle_at)
    ready = pace.ready_at()
    assert ready is not None and ready > pace.throttle_at  # type: ignore[operator]

    assert await store.next_due_at(NOW) == math.ceil(ready)


async def test_rate_limit_status_while_deliveries_wait_for_a_slot(store: Store) -> None:
    _, ep = await _throttled(store, 1, 5)
    assert not (await store.endpoint_pace(ep, NOW)).status().limited  # never sent: a slot is free

    await claim(store, NOW, limit=10)

    status = (await store.endpoint_pace(ep, NOW)).status()
    assert status.limited and status.since == T0 + 1  # the oldest one still waiting


async def test_concurrent_claims_never_take_a_slot_twice(
    store: Store, store_factory: StoreFactory
) -> None:
    """Four stores (as four worker processes) claim at the same moments: one slot a second."""
    await _throttled(store, 1, 50)
    async with contextlib.AsyncExitStack() as stack:
        others = [await stack.enter_async_context(store_factory()) for _ in range(4)]
        for step in range(5):
            now = NOW + step * 1_000
            got = await asyncio.gather(*(claim(s, now, limit=10) for s in others))
            assert sum(map(len, got)) == 1, (step, [len(g) for g in got])
