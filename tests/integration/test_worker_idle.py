"""The claim loop at rest: it must not spin while the only due work belongs to an endpoint at
its in-flight limit, and must still wake for a retry before the next poll."""

from __future__ import annotations

import asyncio

from hookpost.domain.inputs import NewEndpoint
from hookpost.wiring import Hookpost
from tests.support.receiver import Receiver, fail_then_ok


class Counted:
    """Counts the worker's claims and next-due reads on a store."""

    def __init__(self, hp: Hookpost) -> None:
        self.claims = self.next_due_reads = 0
        store = hp.store
        claim_due, next_due_at = store.claim_due, store.next_due_at

        async def counted_claim(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.claims += 1
            return await claim_due(*args, **kwargs)

        async def counted_next_due(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.next_due_reads += 1
            return await next_due_at(*args, **kwargs)

        store.claim_due = counted_claim  # type: ignore[method-assign]
        store.next_due_at = counted_next_due  # type: ignore[method-assign]


async def test_no_spin_while_the_due_work_waits_for_a_saturated_endpoint(
    fresh_sqlite_url: str, receiver: Receiver
) -> None:
    receiver.gate = asyncio.Event()  # every request hangs until the gate opens
    async with Hookpost.open(
        fresh_sqlite_url,
        allow_subnets="127.0.0.0/8",
        max_in_flight_per_endpoint=2,
        poll_interval_s=0.25,
    ) as hp:
        app = await hp.apps.create("Acme")
        await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/slow")))
        for i in range(10):
            await hp.messages.send(app.id, "a.b", {"n": i})
        counted = Counted(hp)
        await hp.start_worker()
        try:
            await receiver.wait_for(2)
            # Not a wait for a state: a window in which a spinning claim loop would claim
            # thousands of times, where a healthy one claims about once per poll interval.
            await asyncio.sleep(1.0)
            assert counted.claims <= 10, (counted.claims, counted.next_due_reads)
        finally:
            receiver.gate.set()
        await receiver.wait_for(10)


async def test_a_retry_is_sent_when_due_not_at_the_next_poll(
    fresh_sqlite_url: str, receiver: Receiver
) -> None:
    receiver.respond("/flaky", fail_then_ok(1))
    async with Hookpost.open(
        fresh_sqlite_url,
        worker=True,
        allow_subnets="127.0.0.0/8",
        retry_schedule=(1,),  # 0.8-1.2 s
        poll_interval_s=10.0,
    ) as hp:
        app = await hp.apps.create("Acme")
        await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/flaky")))
        await hp.messages.send(app.id, "a.b", {"n": 1})
        await receiver.wait_for(2, timeout=5.0)
        first, retry = receiver.requests
        assert 0.7 <= retry.at - first.at <= 2.5
