"""The SSRF guard end to end: endpoint creation -> worker -> (no) connection.

Unit tests of the guard itself are in tests/unit/test_ssrf.py. Here the whole path is used:
the services refuse literal internal URLs when an endpoint is created or changed, and the
worker refuses to connect to internal addresses at delivery time (host names that resolve to
one, and endpoints stored before the guard was configured as it is now), recording the
refusal as the attempt's error. A spy on the event loop's ``sock_connect`` proves that a
refused delivery never even starts a TCP handshake.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hookpost.domain.errors import InvalidInput
from hookpost.domain.inputs import EndpointChanges, NewEndpoint
from hookpost.domain.models import Attempt, AttemptStatus, DeliveryStatus, PageRequest
from hookpost.domain.queries import AttemptFilter
from hookpost.services.endpoints import EndpointService
from hookpost.wiring import Hookpost
from tests.support.polling import eventually
from tests.support.receiver import Receiver

INSTANT_MS = 500  # a refusal needs no network round trip, let alone a timeout


@pytest.fixture
async def v6_listener() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP listener on [::1] that counts connections: (port, [count])."""
    count = [0]

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count[0] += 1
        writer.close()

    try:
        server = await asyncio.start_server(on_connect, "::1", 0)
    except OSError as exc:  # no IPv6 loopback on this machine
        pytest.skip(f"cannot listen on [::1]: {exc}")
    try:
        yield server.sockets[0].getsockname()[1], count
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address the event loop is asked to ``sock_connect`` to (aiohttp connects
    through ``aiohappyeyeballs``, which calls ``loop.sock_connect``)."""
    loop = asyncio.get_running_loop()
    calls: list[Any] = []
    real = loop.sock_connect

    async def spy(sock: socket.socket, address: Any) -> None:
        calls.append(address)
        await real(sock, address)

    monkeypatch.setattr(loop, "sock_connect", spy)
    return calls


@pytest.fixture
async def guarded(migrated_sqlite_url: str, connects: list[Any]) -> AsyncIterator[Hookpost]:
    """Guard on, NO allow list, worker running, one attempt per delivery."""
    async with Hookpost.open(
        migrated_sqlite_url,
        worker=True,
        allow_subnets="",
        retry_schedule=(),
        request_timeout_s=2.0,
        connect_timeout_s=1.0,
        poll_interval_s=0.05,
    ) as hp:
        yield hp


async def only_attempt(hp: Hookpost, app_id: str, message_id: str) -> Attempt:
    async def probe() -> list[Attempt]:
        page = await hp.store.list_attempts(
            app_id, PageRequest(limit=10), AttemptFilter(message_id=message_id)
        )
        return page.items

    (attempt,) = await eventually(probe)
    return attempt


async def deliver_unchecked(hp: Hookpost, url: str) -> tuple[Attempt, float]:
    """An endpoint stored without the creation-time check (as one created before the allow
    list was narrowed would be), one message to it; its attempt and the wall time taken."""
    app = await hp.apps.create("tenant")
    unchecked = EndpointService(hp.store)  # no url_check: what older rows look like
    endpoint = await unchecked.create(app.id, NewEndpoint(url=url))
    started = time.monotonic()
    sent = await hp.messages.send(app.id, "a.b", {"url": url})
    assert sent.deliveries == 1
    attempt = await only_attempt(hp, app.id, sent.message.id)
    took = time.monotonic() - started
    delivery = await hp.store.get_delivery(sent.message.id, endpoint.id)
    assert delivery.status == DeliveryStatus.FAILED
    return attempt, took


def assert_blocked(attempt: Attempt, error: str) -> None:
    assert attempt.status == AttemptStatus.FAIL, attempt
    assert attempt.response_status_code == 0, attempt
    assert attempt.error == error, attempt.error
    assert attempt.duration_ms < INSTANT_MS, attempt


# --------------------------------------------------------------------------- delivery time


async def test_loopback_ip_is_refused_at_delivery(
    guarded: Hookpost, receiver: Receiver, connects: list[Any]
):
    attempt, _ = await deliver_unchecked(guarded, receiver.url("/hook"))
    assert_blocked(attempt, "blocked: 127.0.0.1 is a loopback address")
    assert receiver.requests == []
    assert connects == []  # refused before the socket existed
    # The worker is still running: the next delivery is attempted (and refused) as well.
    again, _ = await deliver_unchecked(guarded, receiver.url("/again"))
    assert_blocked(again, "blocked: 127.0.0.1 is a loopback address")
    assert receiver.requests == [] and connects == []


async def test_host_name_resolving_to_loopback_is_refused(
    guarded: Hookpost, receiver: Receiver, connects: list[Any]
):
    url = f"http://localhost:{receiver.port}/hook"
    attempt, _ = await deliver_unchecked(guarded, url)
    assert attempt.error is not None
    assert attempt.error.startswith("blocked: localhost resolves to "), attempt.error
    assert attempt.error.endswith(", a loopback address"), attempt.error
    assert_blocked(attempt, attempt.error)
    assert receiver.requests == [] and connects == []


async def test_ipv6_loopback_literal_is_refused(
    guarded: Hookpost, v6_listener: tuple[int, list[int]], connects: list[Any]
):
    port, accepted = v6_listener
    attempt, _ = await deliver_unchecked(guarded, f"http://[::1]:{port}/hook")
    assert_blocked(attempt, "blocked: ::1 is a loopback address")
    assert accepted == [0] and connects == []


async def test_cloud_metadata_address_is_refused_without_connecting(
    guarded: Hookpost, connects: list[Any]
):
    attempt, took = await deliver_unchecked(guarded, "http://169.254.169.254/latest/meta-data/")
    assert_blocked(attempt, "blocked: 169.254.169.254 is a link-local (cloud metadata) address")
    assert connects == []  # no SYN was ever sent
    assert took < 5  # recorded promptly (the connect timeout alone would be 1 s)


# --------------------------------------------------------------------------- creation time


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "blocked: 127.0.0.1 is a loopback address"),
        ("http://[::1]:8080/hook", "blocked: ::1 is a loopback address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "blocked: 169.254.169.254 is a link-local (cloud metadata) address",
        ),
        ("https://10.1.2.3/hook", "blocked: 10.1.2.3 is a private address"),
        ("http://192.168.0.10/hook", "blocked: 192.168.0.10 is a private address"),
        ("http://2130706433/hook", "resolves to 127.0.0.1, a loopback address"),  # 127.0.0.1
        ("http://[::ffff:10.0.0.1]/hook", "private address"),
    ],
)
async def test_literal_internal_url_is_refused_at_creation(
    migrated_sqlite_url: str, url: str, reason: str
):
    async with Hookpost.open(migrated_sqlite_url, allow_subnets="") as hp:
        app = await hp.apps.create("tenant")
        with pytest.raises(InvalidInput) as refused:
            await hp.endpoints.create(app.id, NewEndpoint(url=url))
        assert refused.value.field == "url"
        assert reason in refused.value.message
        # Nothing was stored, and changing an existing endpoint's URL is refused the same way.
        assert (await hp.endpoints.list(app.id, PageRequest())).items == []
        ok = await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/hook"))
        with pytest.raises(InvalidInput) as patched:
            await hp.endpoints.patch(app.id, ok.id, EndpointChanges(url=url))
        assert patched.value.field == "url"
        assert (await hp.endpoints.get(app.id, ok.id)).url == "https://example.com/hook"


async def test_https_only_refuses_plain_http(migrated_sqlite_url: str):
    async with Hookpost.open(migrated_sqlite_url, https_only=True) as hp:
        app = await hp.apps.create("tenant")
        with pytest.raises(InvalidInput) as refused:
            await hp.endpoints.create(app.id, NewEndpoint(url="http://example.com/hook"))
        assert refused.value.field == "url"
        assert "https://" in refused.value.message
        created = await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/hook"))
        assert created.url == "https://example.com/hook"


async def test_host_names_are_accepted_at_creation(migrated_sqlite_url: str):
    """Names are judged when connecting (their answers can change), not when created."""
    async with Hookpost.open(migrated_sqlite_url, allow_subnets="") as hp:
        app = await hp.apps.create("tenant")
        created = await hp.endpoints.create(app.id, NewEndpoint(url="http://localhost:9/hook"))
        assert created.url == "http://localhost:9/hook"


# --------------------------------------------------------------------------- the allow list


async def test_allow_list_lets_loopback_through(
    migrated_sqlite_url: str, receiver: Receiver, connects: list[Any]
):
    async with Hookpost.open(
        migrated_sqlite_url,
        worker=True,
        allow_subnets="127.0.0.0/8",
        retry_schedule=(),
        poll_interval_s=0.05,
    ) as hp:
        app = await hp.apps.create("tenant")
        ip_ep = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/ip")))
        name_ep = await hp.endpoints.create(
            app.id, NewEndpoint(url=f"http://localhost:{receiver.port}/name")
        )
        sent = await hp.messages.send(app.id, "a.b", {"v": 1})
        assert sent.deliveries == 2
        await receiver.wait_for(1, "/ip")
        await receiver.wait_for(1, "/name")
        for endpoint in (ip_ep, name_ep):
            delivery = await eventually(
                lambda e=endpoint: hp.store.get_delivery(sent.message.id, e.id),
                lambda d: d.status == DeliveryStatus.SUCCEEDED,
            )
            assert delivery.attempts == 1
        # ::1 is not in the allow list: still refused, even with 127/8 allowed.
        app2 = await hp.apps.create("other")
        with pytest.raises(InvalidInput):
            await hp.endpoints.create(app2.id, NewEndpoint(url=f"http://[::1]:{receiver.port}/"))
    assert ("127.0.0.1", receiver.port) in connects
