"""The SSRF guard through a real ``aiohttp.ClientSession`` and a local server on 127.0.0.1.

The guard's own unit tests are in tests/unit/test_ssrf.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hookpost.delivery.ssrf import (
    AddressPolicy,
    BlockedAddressError,
    find_blocked_error,
    make_connector,
)
from tests.unit.test_ssrf import DEFAULT, TIMEOUT, FakeResolver


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[str]]]:
    """A local aiohttp server on 127.0.0.1; yields (port, the Host headers it received)."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.host)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, seen
    finally:
        await runner.cleanup()


async def _post(connector: aiohttp.BaseConnector, url: str) -> int:
    async with (
        aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session,
        session.post(url, data=b"{}", allow_redirects=False) as response,
    ):
        await response.read()
        return response.status


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.5/", "blocked: 10.0.0.5 is a private address"),
        ("http://[::ffff:10.0.0.5]/", "a private address (IPv4-mapped 10.0.0.5)"),
        ("http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata) address"),
        ("http://[fd00::1]:8443/", "unique local address"),
    ],
)
async def test_session_refuses_literal_ip_urls(url: str, message: str) -> None:
    fake = FakeResolver({})
    connector = make_connector(DEFAULT, limit=10, limit_per_host=2, resolver=fake)
    with pytest.raises(aiohttp.ClientConnectorError) as info:
        await _post(connector, url)
    blocked = find_blocked_error(info.value)
    assert blocked is not None
    assert message in str(blocked)
    assert message in str(info.value)
    # TCPConnector skips the resolver for IP literals; the socket-factory check caught it.
    assert fake.calls == []


async def test_session_refuses_legacy_numeric_host_via_real_resolver() -> None:
    # 0x7f.1 is not an IP literal to aiohttp, so the real resolver maps it to 127.0.0.1.
    connector = make_connector(DEFAULT, limit=10, limit_per_host=2)
    with pytest.raises(aiohttp.ClientConnectorError) as info:
        await _post(connector, "http://0x7f.1:9/")
    blocked = find_blocked_error(info.value)
    assert blocked is not None
    assert "127.0.0.1, a loopback address" in str(blocked)


async def test_session_refuses_name_resolving_to_private_address(
    server: tuple[int, list[str]],
) -> None:
    port, seen = server
    fake = FakeResolver({"internal.example": [["127.0.0.1"]]})
    connector = make_connector(DEFAULT, limit=10, limit_per_host=2, resolver=fake)
    with pytest.raises(aiohttp.ClientConnectorDNSError) as info:
        await _post(connector, f"http://internal.example:{port}/hook")
    assert str(find_blocked_error(info.value)) == (
        "blocked: internal.example resolves to 127.0.0.1, a loopback address"
    )
    assert seen == []


async def test_session_refuses_after_rebinding(server: tuple[int, list[str]]) -> None:
    port, seen = server
    policy = AddressPolicy.from_setting("127.0.0.1/32")  # stands in for "public" here
    fake = FakeResolver({"rebind.example": [["127.0.0.1"], ["10.0.0.5"]]})
    connector = make_connector(
        policy, limit=10, limit_per_host=2, resolver=fake, use_dns_cache=False, force_close=True
    )
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        async with session.post(f"http://rebind.example:{port}/", data=b"1") as response:
            assert response.status == 200
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            async with session.post(f"http://rebind.example:{port}/", data=b"2"):
                pass
    blocked = find_blocked_error(info.value)
    assert blocked is not None
    assert str(blocked) == "blocked: rebind.example resolves to 10.0.0.5, a private address"
    assert fake.calls == ["rebind.example", "rebind.example"]
    assert seen == [f"rebind.example:{port}"]


async def test_local_server_refused_without_allow_list(server: tuple[int, list[str]]) -> None:
    port, seen = server
    connector = make_connector(DEFAULT, limit=10, limit_per_host=2)
    with pytest.raises(aiohttp.ClientConnectorError) as info:
        await _post(connector, f"http://127.0.0.1:{port}/hook")
    assert "blocked: 127.0.0.1 is a loopback address" in str(info.value)
    assert isinstance(find_blocked_error(info.value), BlockedAddressError)
    assert seen == []


async def test_local_server_reachable_with_allow_list(server: tuple[int, list[str]]) -> None:
    port, seen = server
    connector = make_connector(
        AddressPolicy.from_setting("127.0.0.0/8"), limit=10, limit_per_host=2
    )
    assert await _post(connector, f"http://127.0.0.1:{port}/hook") == 200
    assert seen == [f"127.0.0.1:{port}"]


async def test_local_server_reachable_with_guard_disabled(server: tuple[int, list[str]]) -> None:
    port, seen = server
    connector = make_connector(AddressPolicy.allow_all(), limit=10, limit_per_host=2)
    assert await _post(connector, f"http://127.0.0.1:{port}/") == 200
    assert len(seen) == 1


async def test_cached_dns_answers_stay_checked(server: tuple[int, list[str]]) -> None:
    port, seen = server
    policy = AddressPolicy.from_setting("127.0.0.1/32")
    fake = FakeResolver({"cached.example": [["127.0.0.1"]]})
    connector = make_connector(
        policy, limit=10, limit_per_host=2, resolver=fake, ttl_dns_cache=300, force_close=True
    )
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        for _ in range(3):
            async with session.get(f"http://cached.example:{port}/") as response:
                assert response.status == 200
    assert fake.calls == ["cached.example"]  # later requests used aiohttp's DNS cache
    assert len(seen) == 3
