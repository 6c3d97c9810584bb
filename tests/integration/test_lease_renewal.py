"""A worker keeps the leases of the deliveries it has in flight, against a real receiver.

A receiver slower than the lease gets each message once and the deliveries complete (before
renewals, the worker claimed its own in-flight deliveries again each time their lease
expired: the same webhook-id several times, and every result stale). On PostgreSQL, due times
and lease expiry are the database's: a worker whose clock is skewed neither takes another
worker's in-flight delivery nor waits for work that is due.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from hookpost.delivery.http import HttpSender
from hookpost.delivery.worker import DeliveryWorker, WorkerConfig
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import DeliveryStatus
from hookpost.services.common import now_ms
from hookpost.store.secretbox import generate_main_key
from hookpost.wiring import Hookpost
from tests.support.polling import eventually
from tests.support.receiver import Receiver

LEASE_S = 0.5  # far shorter than the receiver takes to answer
RECEIVER_DELAY_S = 2.0
HOUR_MS = 3_600_000


@asynccontextmanager
async def opened(database_url: str) -> AsyncIterator[Hookpost]:
    extra = {} if database_url.startswith("sqlite") else {"main_key": generate_main_key()}
    async with Hookpost.open(database_url, allow_subnets="127.0.0.0/8", **extra) as hp:
        yield hp


@asynccontextmanager
async def running_worker(
    hp: Hookpost, lease_s: float, clock: Callable[[], int] = now_ms
) -> AsyncIterator[DeliveryWorker]:
    """A worker over ``hp``'s store, with its own lease and clock (the settings refuse a
    lease this short beside the default request timeout; the worker itself takes any)."""
    sender = HttpSender(hp.policy, total_timeout_s=10.0, connect_timeout_s=2.0, limit=32)
    await sender.start()
    config = WorkerConfig(retry_schedule=(1,), lease_s=lease_s, poll_interval_s=0.05)
    worker = DeliveryWorker(hp.store, sender, config, clock=clock)
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop()
        await sender.close()


async def test_a_receiver_slower_than_the_lease_gets_each_message_once(
    any_database_url: str, receiver: Receiver
) -> None:
    receiver.delay_s = RECEIVER_DELAY_S
    async with opened(any_database_url) as hp:
        app = await hp.apps.create("Acme")
        ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/slow")))
        sent = [(await hp.messages.send(app.id, "a.b", {"n": n})).message.id for n in range(3)]
        async with running_worker(hp, LEASE_S):

            async def statuses() -> list[DeliveryStatus]:
                return [(await hp.store.get_delivery(m, ep.id)).status for m in sent]

            await eventually(
                statuses,
                lambda s: s == [DeliveryStatus.SUCCEEDED] * 3,
                timeout=4 * RECEIVER_DELAY_S,
            )
        for m in sent:
            assert (await hp.store.get_delivery(m, ep.id)).attempts == 1
    assert sorted(r.webhook_id for r in receiver.requests) == sorted(sent)


@pytest.mark.parametrize("skew_ms", [HOUR_MS, -HOUR_MS], ids=["ahead", "behind"])
async def test_a_worker_with_a_skewed_clock_keeps_to_the_database_clock(
    migrated_postgres_url: str, receiver: Receiver, skew_ms: int
) -> None:
    """Ahead, its claims would find another worker's lease expired; behind, every due
    delivery would look scheduled for later."""
    async with opened(migrated_postgres_url) as hp:
        app = await hp.apps.create("Acme")
        ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/hook")))
        held_msg = (await hp.messages.send(app.id, "a.b", {"n": 1})).message.id
        [held] = await hp.store.claim_due(10, 60_000, now_ms())  # another worker's, in flight
        due_msg = (await hp.messages.send(app.id, "a.b", {"n": 2})).message.id
        async with running_worker(hp, 60.0, clock=lambda: now_ms() + skew_ms):
            await eventually(
                lambda: hp.store.get_delivery(due_msg, ep.id),
                lambda d: d.status == DeliveryStatus.SUCCEEDED,
            )
        still = await hp.store.get_delivery(held_msg, ep.id)
        assert (still.status, still.attempts) == (DeliveryStatus.SENDING, 0)
        # the other worker still holds its lease: it can renew it
        assert await hp.store.renew([(held.delivery_id, held.lease)], 60_000, now_ms()) == 1
    assert [r.webhook_id for r in receiver.requests] == [due_msg]
