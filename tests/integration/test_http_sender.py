"""The HTTP sender (``delivery.http``) against a real receiver on loopback: its total timeout,
User-Agent, cancellation, body cap and cookie handling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from hookpost.delivery.http import USER_AGENT, HttpSender, _Deadlines
from hookpost.delivery.ssrf import AddressPolicy

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


async def test_a_request_timeout_of_its_own_beside_the_default() -> None:
    """An endpoint's timeoutSeconds: shorter and longer ones than the sender's own expire on
    their own deadlines, whatever order the requests started in."""
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/slow"):
            await asyncio.sleep(0.8)
            return web.Response(text="slow but fine")
        await release.wait()
        return web.Response(text="late")

    async with receiver(handler) as url, sender(timeout_s=0.5) as s:
        loop = asyncio.get_running_loop()
        slow = url.replace("/hook", "/slow")

        async def timed(target: str, timeout_s: float | None) -> tuple[str, float]:
            started = loop.time()
            response = await s.post(target, b"{}", {}, timeout_s)
            return response.body, loop.time() - started

        results = await asyncio.gather(
            timed(url, 1.5),  # its own, longer than the default: still cut at 1.5 s
            timed(slow, 2.0),  # the default (0.5 s) would cut it; its own lets it finish
            timed(url, None),  # the default
            timed(url, 0.2),  # its own, shorter, started last
        )
        release.set()
    (long_body, long_s), (slow_body, slow_s), (default_body, default_s), (short_body, short_s) = (
        results
    )
    assert long_body == "timeout: no complete response within 1.5s" and 1.5 <= long_s < 2.0
    assert slow_body == "slow but fine" and slow_s < 1.5
    assert default_body == "timeout: no complete response within 0.5s" and 0.5 <= default_s < 1.0
    assert short_body == "timeout: no complete response within 0.2s" and 0.2 <= short_s < 0.5
    assert not s._deadlines._watches and not any(s._deadlines._own.values())  # none left


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
