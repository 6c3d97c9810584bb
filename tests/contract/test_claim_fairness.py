"""Fairness between endpoints (issue 26): a big due backlog on one endpoint does not keep a
small one waiting. Each endpoint takes its share from the head of its own queue, and a claim
interleaves them round-robin. Runs on both stores and the in-memory queue.
"""

from __future__ import annotations

from .support import T0, QueueWorld, claim

BACKLOG = 200


async def test_a_small_endpoint_behind_a_big_backlog_is_claimed_in_the_first_claim(
    world: QueueWorld,
) -> None:
    a = await world.endpoint()
    for i in range(BACKLOG):
        await world.send(now=T0 + i)  # A's backlog: the oldest rows
    b = await world.endpoint()
    small = [await world.send(now=T0 + BACKLOG + i) for i in range(10)]  # to A and B

    got = await claim(world.queue, T0 + 10 * BACKLOG, limit=128, max_per_endpoint=32)

    assert sorted(c.message_id for c in got if c.endpoint_id == b.id) == sorted(m.id for m in small)
    assert sum(c.endpoint_id == a.id for c in got) == 32  # A's share: its free slots
    # round-robin: every endpoint's first row, then every second...
    assert [c.endpoint_id for c in got[:20]] == [a.id, b.id] * 10
    assert all(c.endpoint_id == a.id for c in got[20:])


async def test_a_saturated_endpoints_backlog_does_not_hide_the_rows_behind_it(
    world: QueueWorld,
) -> None:
    a = await world.endpoint()
    for i in range(BACKLOG):
        await world.send(now=T0 + i)
    b = await world.endpoint()
    small = [await world.send(now=T0 + BACKLOG + i) for i in range(10)]

    got = await claim(
        world.queue,
        T0 + 10 * BACKLOG,
        limit=5,
        exclude_endpoints=[a.id],
        max_per_endpoint=32,
        in_flight={a.id: 32},
    )

    assert [(c.endpoint_id, c.message_id) for c in got] == [(b.id, m.id) for m in small[:5]]


async def test_a_claim_fills_an_endpoints_free_slots_when_the_others_have_fewer_rows(
    world: QueueWorld,
) -> None:
    """Ten ready endpoints share a claim of 128 (13 or 12 each); nine have one row. The
    endpoint with a backlog takes the rest of the claim up to its free slots, in the same
    claim, not at the worker's next wake-up."""
    a = await world.endpoint()
    for i in range(100):
        await world.send(now=T0 + i)
    others = [await world.endpoint() for _ in range(9)]
    await world.send(now=T0 + 200)  # one more row each (and a 101st for A)

    got = await claim(world.queue, T0 + 1000, limit=128, max_per_endpoint=32)

    assert sum(c.endpoint_id == a.id for c in got) == 32
    assert sorted(c.endpoint_id for c in got if c.endpoint_id != a.id) == sorted(
        e.id for e in others
    )
