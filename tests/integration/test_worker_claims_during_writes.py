"""The worker claims into the slots a write hands back while that write runs, not after it:
with SQLite the claim and the write then share one transaction (one commit, one turn of the
write lock that ``serve``'s API process waits for), instead of two back to back."""

from __future__ import annotations

from hookpost.domain.inputs import NewEndpoint
from hookpost.wiring import Hookpost
from tests.support.receiver import Receiver

POOL = 2
MESSAGES = 12


class Calls:
    """Records, for each claim, how many result writes were still running when it began."""

    def __init__(self, hp: Hookpost) -> None:
        self.writing = 0
        self.claims_during_a_write = 0
        self.claims = 0
        claim_due, finish_attempts = hp.store.claim_due, hp.store.finish_attempts

        async def claim(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.claims += 1
            self.claims_during_a_write += self.writing > 0
            return await claim_due(*args, **kwargs)

        async def finish(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.writing += 1
            try:
                return await finish_attempts(*args, **kwargs)
            finally:
                self.writing -= 1

        hp.store.claim_due = claim  # type: ignore[method-assign]
        hp.store.finish_attempts = finish  # type: ignore[method-assign]


async def test_a_claim_runs_alongside_the_write_that_frees_its_slots(
    fresh_sqlite_url: str, receiver: Receiver
) -> None:
    async with Hookpost.open(
        fresh_sqlite_url,
        allow_subnets="127.0.0.0/8",
        max_in_flight=POOL,  # so that every claim after the first needs slots handed back
        claim_batch=POOL,
        poll_interval_s=30.0,  # a claim that waited for the poll would miss the deadline
    ) as hp:
        app = await hp.apps.create("Acme")
        await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/hook")))
        for n in range(MESSAGES):
            await hp.messages.send(app.id, "a.b", {"n": n})
        calls = Calls(hp)
        await hp.start_worker()
        await receiver.wait_for(MESSAGES, timeout=10)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == MESSAGES
    # The pool of 2 was refilled (MESSAGES / pool - 1) times; each refill is a claim that
    # began while the write of the results before it was still running.
    assert calls.claims_during_a_write >= MESSAGES // POOL - 1, vars(calls)
