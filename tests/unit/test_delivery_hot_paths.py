"""The delivery worker's hot paths, made cheaper, must still say exactly the same things:
ids in the same base62, the same signatures for every key, and the HTTP sender's total
timeout, User-Agent and cancellation behaving as before."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from hookpost.delivery.http import USER_AGENT, HttpSender, _Deadlines
from hookpost.delivery.ssrf import AddressPolicy
from hookpost.domain import ids
from hookpost.domain.signing import StandardWebhooksV1, generate_secret, secret_bytes


def reference_encode(value: int) -> str:
    """The original one-digit-at-a-time base62 encoder."""
    out = []
    for _ in range(22):
        value, digit = divmod(value, 62)
        out.append(ids.ALPHABET[digit])
    return "".join(reversed(out))


def reference_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class TestIdEncoding:
    @pytest.mark.parametrize(
        "value",
        [0, 1, 61, 62, 62**4 - 1, 62**4, 62**20 - 1, 62**20, 2**128 - 1, 62**22, 2**140],
    )
    def test_edges_match_the_reference(self, value: int) -> None:
        assert ids._encode(value) == reference_encode(value)

    def test_random_values_match_the_reference(self) -> None:
        rng = random.Random(1)
        for _ in range(20_000):
            value = rng.getrandbits(rng.choice([8, 48, 80, 127, 128]))
            assert ids._encode(value) == reference_encode(value)

    def test_ids_still_sort_by_time_and_decode(self) -> None:
        times = range(1_700_000_000_000, 1_700_000_000_050)
        made = [ids.new_id("atmpt", ms) for ms in times]
        assert made == sorted(made)
        assert [ids.id_time_ms(i) for i in made] == list(times)


class TestCachedSigningKeys:
    def test_every_key_signs_the_same_as_a_fresh_hmac(self) -> None:
        keys = [generate_secret(n) for n in (24, 32, 64)]
        body = b'{"id":1,"data":"' + b"x" * 1000 + b'"}'
        for _ in range(3):  # the second and third rounds come from the cache
            headers = StandardWebhooksV1().sign_headers("msg_1", 1_700_000_000, body, keys)
            assert headers["webhook-signature"].split(" ") == [
                reference_signature(k, "msg_1", 1_700_000_000, body) for k in keys
            ]

    def test_a_cached_key_is_not_changed_by_signing(self) -> None:
        key = generate_secret()
        scheme = StandardWebhooksV1()
        first = scheme.signature(key, "msg_1", 1, b"a")
        scheme.signature(key, "msg_2", 2, b"b" * 5000)
        assert scheme.signature(key, "msg_1", 1, b"a") == first


# --------------------------------------------------------------------------- HTTP sender


@asynccontextmanager
async def receiver(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def sender(timeout_s: float = 5.0) -> AsyncIterator[HttpSender]:
    s = HttpSender(
        AddressPolicy.from_setting("127.0.0.0/8"),
        total_timeout_s=timeout_s,
        connect_timeout_s=timeout_s,
        limit=16,
    )
    await s.start()
    try:
        yield s
    finally:
        await s.close()


async def test_user_agent_is_hookpost_unless_the_caller_sets_one() -> None:
    seen: list[list[str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.getall("User-Agent", []))
        return web.Response(text="ok")

    async with receiver(handler) as url, sender() as s:
        await s.post(url, b"{}", {"content-type": "application/json"})
        await s.post(url, b"{}", {"user-agent": "custom/1"})
    assert seen == [[USER_AGENT], ["custom/1"]]


async def test_hanging_request_times_out_and_leaves_the_task_uncancelled() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async with receiver(handler) as url, sender(timeout_s=0.3) as s:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await s.post(url, b"{}", {})
        elapsed = loop.time() - started
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the timeout's cancel was undone
        release.set()
    assert response.outcome.status_code == 0
    assert response.body == "timeout: no complete response within 0.3s"
    assert 0.3 <= elapsed < 0.3 + 0.5
    assert not s._deadlines._watches  # nothing left behind


async def test_a_cancellation_from_outside_is_not_turned_into_a_timeout() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        started.set()
        await release.wait()
        return web.Response(text="late")

    async with receiver(handler) as url, sender(timeout_s=30.0) as s:
        task = asyncio.create_task(s.post(url, b"{}", {}))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert not s._deadlines._watches


async def test_a_cancellation_after_the_deadline_fired_still_propagates() -> None:
    """Shutdown cancelling a request whose deadline has also passed: the request is
    cancelled, not recorded as a timeout (as with asyncio.timeout)."""
    deadlines = _Deadlines(30.0)
    gate = asyncio.Event()

    async def request() -> str:
        watch = deadlines.watch()
        try:
            await gate.wait()
        except asyncio.CancelledError:
            if not deadlines.unwatch(watch):
                raise
            return "timeout"
        finally:
            deadlines.unwatch(watch)
        return "done"

    async def run(also_cancelled: bool) -> asyncio.Task[str]:
        task = asyncio.create_task(request())
        await asyncio.sleep(0)  # it is waiting now
        deadlines.expire(asyncio.get_running_loop().time() + 60)  # the deadline passes ...
        if also_cancelled:
            task.cancel()  # ... and someone else cancels it before it runs again
        await asyncio.wait([task])
        return task

    assert (await run(also_cancelled=False)).result() == "timeout"
    assert (await run(also_cancelled=True)).cancelled()
    assert not deadlines._watches


async def test_complete_bodies_keep_the_connection_and_long_ones_are_capped() -> None:
    from hookpost.delivery.http import MAX_READ_BYTES, STORED_BYTES

    async def handler(request: web.Request) -> web.Response:
        size = int(request.match_info["tail"])
        return web.Response(body=b"y" * size)

    async with receiver(handler) as url, sender() as s:
        base = url.removesuffix("/hook")
        for size in (0, 2, MAX_READ_BYTES, MAX_READ_BYTES + 1, 3 * MAX_READ_BYTES):
            response = await s.post(f"{base}/{size}", b"{}", {})
            assert response.outcome.status_code == 200 and response.outcome.error is None
            assert response.body == "y" * min(size, STORED_BYTES)


async def test_cookies_set_by_a_receiver_are_never_sent_back() -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.Response(text="ok")
        response.set_cookie("tenant", "a-secret")
        return response

    policy = AddressPolicy.from_setting("127.0.0.0/8 ::1/128")
    s = HttpSender(policy, total_timeout_s=5.0, connect_timeout_s=5.0, limit=4)
    await s.start()
    try:
        async with receiver(handler) as url:
            by_name = url.replace("127.0.0.1", "localhost")  # a jar ignores IP-literal hosts
            for _ in range(2):
                response = await s.post(by_name, b"{}", {})
                assert response.outcome.status_code == 200, response
    finally:
        await s.close()
    assert seen == [None, None]
