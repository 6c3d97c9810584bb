"""Endpoints that hang do not starve healthy ones of in-flight slots: a request unanswered for
``SLOW_AFTER_S`` moves to a second pool, so the worker keeps claiming for everyone else."""

from __future__ import annotations

import asyncio
import time

from hookpost.domain.inputs import NewEndpoint
from hookpost.wiring import Hookpost
from tests.support.receiver import Receiver

MAX_IN_FLIGHT = 4


async def test_hanging_requests_do_not_hold_the_slots_of_healthy_endpoints(
    fresh_sqlite_url: str,
):
    hanging, healthy = await Receiver().start(), await Receiver().start()
    hanging.gate = asyncio.Event()  # answers only when the test ends
    try:
        async with Hookpost.open(
            fresh_sqlite_url,
            worker=True,
            allow_subnets="127.0.0.0/8",
            max_in_flight=MAX_IN_FLIGHT,
            request_timeout_s=60.0,  # far beyond the test: only the second pool frees slots
            lease_s=100.0,  # a lease outlasts a whole request
            poll_interval_s=0.05,
        ) as hp:
            app = await hp.apps.create("Acme")
            await hp.endpoints.create(
                app.id, NewEndpoint(url=hanging.url("/hang"), event_types=["h"])
            )
            await hp.endpoints.create(
                app.id, NewEndpoint(url=healthy.url("/ok"), event_types=["ok"])
            )
            for n in range(MAX_IN_FLIGHT):
                await hp.messages.send(app.id, "h", {"n": n})
            await hanging.wait_for(MAX_IN_FLIGHT)  # every slot now waits on the hanging one
            started = time.monotonic()
            for n in range(20):
                await hp.messages.send(app.id, "ok", {"n": n})
            await healthy.wait_for(20, timeout=10)
            assert time.monotonic() - started < 10
            assert len(hanging.requests) == MAX_IN_FLIGHT  # still held, not re-sent
            hanging.gate.set()
    finally:
        hanging.gate.set()
        await hanging.stop()
        await healthy.stop()
