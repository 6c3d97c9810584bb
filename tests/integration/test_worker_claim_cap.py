"""The worker claims no more of an endpoint's deliveries than it may run: the surplus stays
due in the store instead of being leased and released at once (two more writes per row, and
on PostgreSQL a claim and a release per freed slot of a busy endpoint)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from hookpost.domain.inputs import EndpointChanges, NewEndpoint
from hookpost.wiring import Hookpost
from tests.support.receiver import Receiver

PER_ENDPOINT = 2


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    busy, other = await Receiver().start(), await Receiver().start()
    yield busy, other
    if busy.gate is not None:
        busy.gate.set()
    await busy.stop()
    await other.stop()


class Releases:
    """Counts the deliveries a worker hands back through ``store.release``."""

    def __init__(self, hp: Hookpost) -> None:
        self.rows = 0
        release = hp.store.release

        async def counted(leases, now_ms):  # type: ignore[no-untyped-def]
            self.rows += len(leases)
            return await release(leases, now_ms)

        hp.store.release = counted  # type: ignore[method-assign]


async def test_a_busy_endpoints_surplus_is_never_leased(
    fresh_sqlite_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    busy, _ = receivers
    busy.gate = asyncio.Event()  # requests are held until the gate opens
    async with Hookpost.open(
        fresh_sqlite_url,
        allow_subnets="127.0.0.0/8",
        max_in_flight_per_endpoint=PER_ENDPOINT,
        poll_interval_s=0.05,
    ) as hp:
        app = await hp.apps.create("Acme")
        await hp.endpoints.create(app.id, NewEndpoint(url=busy.url("/busy")))
        for n in range(10):
            await hp.messages.send(app.id, "a.b", {"n": n})
        releases = Releases(hp)
        await hp.start_worker()
        await busy.wait_for(PER_ENDPOINT)
        busy.gate.set()
        await busy.wait_for(10)
        await hp.stop_worker()
        assert releases.rows == 0
    assert len({r.webhook_id for r in busy.requests}) == len(busy.requests) == 10


async def test_a_full_endpoints_surplus_does_not_hold_up_other_endpoints(
    fresh_sqlite_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """The capped claim comes back short; the rows behind the surplus go out at once, not
    at the next poll."""
    busy, other = receivers
    busy.gate = asyncio.Event()
    async with Hookpost.open(
        fresh_sqlite_url,
        allow_subnets="127.0.0.0/8",
        max_in_flight_per_endpoint=PER_ENDPOINT,
        claim_batch=4,  # one claim scans only part of the busy endpoint's backlog
        poll_interval_s=30.0,  # a wait for the poll would fail the deadline below
    ) as hp:
        app = await hp.apps.create("Acme")
        await hp.endpoints.create(app.id, NewEndpoint(url=busy.url("/busy"), event_types=["b"]))
        await hp.endpoints.create(app.id, NewEndpoint(url=other.url("/other"), event_types=["o"]))
        for n in range(10):
            await hp.messages.send(app.id, "b", {"n": n})  # the oldest due rows
        await hp.messages.send(app.id, "o", {"n": 0})
        started = time.monotonic()
        await hp.start_worker()
        await other.wait_for(1, timeout=10)
        assert time.monotonic() - started < 5
        assert len(busy.requests) == PER_ENDPOINT
        busy.gate.set()
        await busy.wait_for(10)


async def test_a_disabled_endpoints_backlog_does_not_hold_up_other_endpoints(
    fresh_sqlite_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """Each claim cancels a batch of the disabled endpoint's due rows and delivers none: the
    worker must claim again at once (the queue's head is still due), not at the next poll."""
    gone, other = receivers
    async with Hookpost.open(
        fresh_sqlite_url,
        allow_subnets="127.0.0.0/8",
        claim_batch=4,  # the backlog takes 10 claims to clear
        poll_interval_s=30.0,  # a wait for the poll would fail the deadline below
    ) as hp:
        app = await hp.apps.create("Acme")
        ep = await hp.endpoints.create(
            app.id, NewEndpoint(url=gone.url("/gone"), event_types=["g"])
        )
        await hp.endpoints.create(app.id, NewEndpoint(url=other.url("/other"), event_types=["o"]))
        for n in range(40):
            await hp.messages.send(app.id, "g", {"n": n})  # the oldest due rows
        await hp.messages.send(app.id, "o", {"n": 0})
        await hp.endpoints.patch(app.id, ep.id, EndpointChanges(disabled=True))
        started = time.monotonic()
        await hp.start_worker()
        await other.wait_for(1, timeout=10)
        assert time.monotonic() - started < 5
    assert gone.requests == []
