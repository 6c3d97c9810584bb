"""A worker killed with SIGKILL mid-delivery loses nothing: after its lease expires another
worker sends every unfinished delivery again, with the same webhook-id."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import DeliveryStatus, PageRequest
from hookpost.wiring import Hookpost
from tests.support.polling import eventually
from tests.support.processes import hookpost_env, spawn, stop
from tests.support.receiver import Receiver

pytestmark = pytest.mark.slow

MESSAGES = 60


async def test_sigkill_mid_delivery_loses_nothing(fresh_sqlite_url: str, tmp_path: Path):
    receiver = await Receiver().start()
    receiver.gate = asyncio.Event()  # hold requests open so some are in flight at the kill
    env = hookpost_env(
        database_url=fresh_sqlite_url,
        allow_subnets="127.0.0.0/8",
        lease_s="3",
        request_timeout_s="2",  # a lease outlasts a whole request
        poll_interval_s="0.1",
        max_in_flight="20",
        retry_schedule="1,1,1",
    )
    try:
        async with Hookpost.open(fresh_sqlite_url, allow_subnets="127.0.0.0/8") as hp:
            app = await hp.apps.create("Acme")
            ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/hook")))
            sent = [
                (await hp.messages.send(app.id, "a.b", {"n": i})).message.id
                for i in range(MESSAGES)
            ]

            first = spawn(["worker"], env, tmp_path / "worker1.log")
            try:
                await receiver.wait_for(20, timeout=30)  # 20 requests held in flight
            finally:
                stop(first, signal.SIGKILL)
            in_flight_at_kill = {r.webhook_id for r in receiver.requests}
            receiver.gate.set()
            receiver.gate = None

            second = spawn(["worker"], env, tmp_path / "worker2.log")
            try:

                async def all_done() -> int:
                    page = await hp.store.list_deliveries_for_endpoint(
                        app.id, ep.id, PageRequest(limit=250)
                    )
                    return sum(d.status == DeliveryStatus.SUCCEEDED for d, _ in page.items)

                await eventually(all_done, lambda n: n == MESSAGES, timeout=60)
            finally:
                assert stop(second) == 0, (tmp_path / "worker2.log").read_text()

        received = [r.webhook_id for r in receiver.requests]
        assert set(received) == set(sent)  # every message arrived at least once
        for msg_id in in_flight_at_kill:  # those in flight were sent again, same webhook-id
            assert received.count(msg_id) >= 2
        assert len(received) - MESSAGES == len(in_flight_at_kill)  # no other duplicates
    finally:
        await receiver.stop()
