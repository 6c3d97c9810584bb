"""Ordered delivery end to end (domain.ordering), on SQLite and on PostgreSQL, with real
``hookpost worker`` processes and a real receiver on loopback.

The receiver sees each message's requests in creation order and never two at once: the head
answers 500 twice and then 200 (it holds the rest back meanwhile), a later one always answers
500 until its retries are exhausted (then the next goes), and a worker is SIGKILLed while it
holds a request open; after its lease expires, two other workers carry on from that head.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import DeliveryStatus, PageRequest
from hookpost.domain.retry import RetryPolicy
from hookpost.store.secretbox import generate_main_key
from hookpost.wiring import Hookpost
from tests.support.polling import eventually
from tests.support.processes import hookpost_env, spawn, stop

pytestmark = pytest.mark.slow

MESSAGES = 8
HEAD_FAILURES = 2  # the head (message 0) answers 500 this many times, then 200
HELD = 2  # message 2's first request is held open while its worker is killed
EXHAUSTED = 4  # message 4 always answers 500: its retries run out, then message 5 goes


class OrderedReceiver:
    """Records the messages' requests in arrival order and whether two ever overlapped."""

    def __init__(self) -> None:
        self.arrivals: list[int] = []  # message numbers, in arrival order
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        self.open = 0
        self.overlaps = 0
        self.hold = asyncio.Event()  # set: the held request was seen
        self.release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> OrderedReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        n = orjson.loads(body)["n"]
        self.open += 1
        try:
            if self.open > 1:
                self.overlaps += 1
            self.arrivals.append(n)
            self.bodies.append((body, dict(request.headers)))
            seen = self.arrivals.count(n)
            if n == HELD and seen == 1:
                self.hold.set()
                await self.release.wait()  # its worker dies meanwhile
            if (n == 0 and seen <= HEAD_FAILURES) or n == EXHAUSTED:
                return web.Response(status=500, text="not yet")
            return web.Response(text="ok")
        finally:
            self.open -= 1


@pytest.mark.parametrize(
    "url_fixture",
    ["migrated_sqlite_url", pytest.param("migrated_postgres_url", marks=pytest.mark.postgres)],
)
async def test_ordered_endpoint_fifo_through_failures_and_a_worker_crash(
    url_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue(url_fixture)
    receiver = await OrderedReceiver().start()
    main_key = generate_main_key()  # every process of a PostgreSQL deployment shares it
    env = hookpost_env(
        database_url=url,
        main_key=main_key,
        allow_subnets="127.0.0.0/8",
        lease_s="3",
        request_timeout_s="2",  # a lease outlasts a whole request
        poll_interval_s="0.1",
        retry_schedule="1,1,1",
    )
    workers = []
    try:
        async with Hookpost.open(url, allow_subnets="127.0.0.0/8", main_key=main_key) as hp:
            app = await hp.apps.create("Acme")
            ep = await hp.endpoints.create(
                app.id,
                NewEndpoint(
                    url=f"http://127.0.0.1:{receiver.port}/hook",
                    ordered=True,
                    retry_policy=RetryPolicy(schedule=(1, 1, 1)),
                ),
            )
            sent = [
                (await hp.messages.send(app.id, "a.b", {"n": i})).message.id
                for i in range(MESSAGES)
            ]

            first = spawn(["worker"], env, tmp_path / "worker1.log")
            workers.append(first)
            await asyncio.wait_for(receiver.hold.wait(), 60)
            stop(first, signal.SIGKILL)  # mid-delivery: the head's lease is held by a dead worker
            receiver.release.set()
            for i in (2, 3):
                workers.append(spawn(["worker"], env, tmp_path / f"worker{i}.log"))

            async def finished() -> int:
                page = await hp.store.list_deliveries_for_endpoint(
                    app.id, ep.id, PageRequest(limit=50)
                )
                return sum(
                    d.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)
                    for d, _ in page.items
                )

            await eventually(finished, lambda n: n == MESSAGES, timeout=90)
            exhausted = await hp.store.get_delivery(sent[EXHAUSTED], ep.id)
            assert exhausted.status == DeliveryStatus.FAILED and exhausted.attempts == 4
        for proc in workers[1:]:
            assert stop(proc) == 0
    finally:
        for proc in workers:
            stop(proc, signal.SIGKILL)
        await receiver.stop()

    assert receiver.overlaps == 0, receiver.arrivals  # one request at a time
    # Each message's requests come together, in creation order: the head's retries held the
    # rest back, the killed head was sent again before anything behind it, and the exhausted
    # one let the next go.
    runs = [n for i, n in enumerate(receiver.arrivals) if i == 0 or receiver.arrivals[i - 1] != n]
    assert runs == list(range(MESSAGES)), receiver.arrivals
    assert receiver.arrivals.count(0) == HEAD_FAILURES + 1
    assert receiver.arrivals.count(HELD) == 2  # sent again after the crash, same message
    assert receiver.arrivals.count(EXHAUSTED) == 4
    secret = ep.secret
    for body, headers in receiver.bodies:
        Webhook(secret).verify(body, headers)  # signed as any delivery
