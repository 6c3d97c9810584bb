"""Receivers that misbehave cannot hurt the worker.

Each hostile receiver is a raw asyncio server on 127.0.0.1 that breaks HTTP in one particular
way. For each one the delivery's attempt must be recorded as a failure with a clear error text,
within the configured (tiny) request timeout, and the worker must keep delivering to a healthy
endpoint. Memory is measured where the attack is about memory (unbounded bodies, gzip bombs).

The one deliberate "success": a receiver that answers ``200`` and then streams a body forever.
The receiver did accept the webhook (the status line says so), and hookpost reads at most
``MAX_READ_BYTES`` of the body, stores at most ``STORED_BYTES`` and drops the connection, so
recording it as a 200 success is both correct and safe. The tests assert exactly that.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from hookpost.delivery.http import MAX_READ_BYTES, STORED_BYTES
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import Attempt, AttemptStatus, DeliveryStatus, PageRequest
from hookpost.domain.queries import AttemptFilter
from hookpost.store.secretbox import generate_main_key
from hookpost.wiring import Hookpost
from tests.support.polling import eventually
from tests.support.receiver import Receiver
from tests.support.tls import self_signed

TIMEOUT_S = 1.0  # the worker's total request timeout in these tests
TIMEOUT_MS = int(TIMEOUT_S * 1000)
SLACK_MS = 750  # event-loop and thread-hop jitter allowed on top of the timeout
INSTANT_MS = 500  # "failed at once, not by the timeout"
STREAM_CAP = 1024**3  # every server loop is bounded: at most 1 GiB per connection
MIB = 1024 * 1024

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]


# --------------------------------------------------------------------------- servers


@dataclass
class RawServer:
    """A bare TCP (or TLS) server on 127.0.0.1 whose handler plays one hostile receiver."""

    handler: Handler
    ssl_context: ssl.SSLContext | None = None
    port: int = 0
    connections: int = 0  # accepted (after the TLS handshake, if any)
    open_connections: int = 0
    bytes_sent: list[int] = field(default_factory=list)  # per finished streaming connection
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # handlers holding return
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(
            self._on_connect, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.connections += 1
        self.open_connections += 1
        self._writers.add(writer)
        self.connected.set()
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client hung up on us: exactly what it should do
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            writer.close()
            with suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()


@asynccontextmanager
async def raw_server(handler: Handler, ssl_context: ssl.SSLContext | None = None):
    server = await RawServer(handler, ssl_context).start()
    try:
        yield server
    finally:
        await server.stop()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request (head + Content-Length body), so the client is waiting on us."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body


async def hold(server: RawServer) -> None:
    """Keep the connection open, answering nothing, until the test ends."""
    await server.release.wait()


async def stream(writer: asyncio.StreamWriter, server: RawServer, chunk: bytes) -> None:
    """Write ``chunk`` again and again until the client hangs up (or STREAM_CAP is reached)."""
    sent = 0
    try:
        while sent < STREAM_CAP and not server.release.is_set():
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    finally:
        server.bytes_sent.append(sent)


# --- the hostile handlers -----------------------------------------------------------------


async def endless_chunked_body(reader, writer, server) -> None:
    await read_request(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    data = b"x" * 65536
    await stream(writer, server, b"%x\r\n%s\r\n" % (len(data), data))


async def ten_gigabyte_body(reader, writer, server) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
    await stream(writer, server, b"y" * 65536)


async def endless_headers(reader, writer, server) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    await stream(writer, server, b"X-Filler: " + b"z" * 100 + b"\r\n")


async def never_answers(reader, writer, server) -> None:
    await read_request(reader)
    await hold(server)


SLOW_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


async def slow_status_and_headers(reader, writer, server) -> None:
    """Slowloris in reverse: the response head, one byte every 50 ms (about 3.5 s in all)."""
    await read_request(reader)
    for i in range(len(SLOW_HEAD)):
        if server.release.is_set():
            return
        writer.write(SLOW_HEAD[i : i + 1])
        await writer.drain()
        await asyncio.sleep(0.05)


async def slow_body(reader, writer, server) -> None:
    """Prompt headers, then a 100-byte body one byte every 50 ms (about 5 s in all)."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    for _ in range(100):
        if server.release.is_set():
            return
        writer.write(b"b")
        await writer.drain()
        await asyncio.sleep(0.05)


async def garbage(reader, writer, server) -> None:
    await read_request(reader)
    writer.write(b"\x00\x01\x02 SMTP ready \xff\xfe\r\nnot: http\r\n\r\n")
    await writer.drain()
    await hold(server)


async def hangs_up(reader, writer, server) -> None:
    await read_request(reader)  # then close without a byte of response


async def plain_http_error(reader, writer, server) -> None:
    """What a plain HTTP server does with a TLS ClientHello: a plaintext 400, then close."""
    await reader.read(65536)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


async def answers_ok(reader, writer, server) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()


def gzip_bomb(expanded: int = 128 * MIB) -> bytes:
    """A gzip body of ``expanded`` zero bytes: about 130 KiB on the wire."""
    return gzip.compress(bytes(expanded), compresslevel=9, mtime=0)


def gzip_handler(bomb: bytes) -> Handler:
    async def handler(reader, writer, server) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(bomb)
        )
        writer.write(bomb)
        await writer.drain()
        await hold(server)

    return handler


# --------------------------------------------------------------------------- harness


def stored_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class RssSampler:
    """Samples this process's RSS every 10 ms while running: the peak, not just the end."""

    def __init__(self) -> None:
        self.baseline = rss_bytes()
        self.peak = self.baseline
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.01)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> int:
        self._stop.set()
        assert self._task is not None
        await self._task
        self.peak = max(self.peak, rss_bytes())
        return self.peak - self.baseline

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


@dataclass
class Harness:
    hp: Hookpost
    healthy: Receiver
    healthy_app: str

    async def send_to(self, url: str, count: int = 1) -> tuple[str, list[str]]:
        """A new app with one endpoint at ``url``; ``count`` messages sent to it."""
        app = await self.hp.apps.create(f"hostile-{time.monotonic_ns()}")
        await self.hp.endpoints.create(app.id, NewEndpoint(url=url))
        ids = []
        for n in range(count):
            sent = await self.hp.messages.send(app.id, "hostile.test", {"n": n})
            assert sent.deliveries == 1
            ids.append(sent.message.id)
        return app.id, ids

    async def attempts(self, app_id: str, message_id: str) -> list[Attempt]:
        page = await self.hp.store.list_attempts(
            app_id, PageRequest(limit=10), AttemptFilter(message_id=message_id)
        )
        return page.items

    async def only_attempt(self, app_id: str, message_id: str) -> Attempt:
        attempts = await eventually(lambda: self.attempts(app_id, message_id), timeout=10.0)
        assert len(attempts) == 1, attempts  # retry_schedule=(): exactly one attempt
        return attempts[0]

    async def assert_still_delivers(self) -> None:
        """A healthy endpoint still gets its message promptly."""
        before = len(self.healthy.requests)
        sent = await self.hp.messages.send(self.healthy_app, "healthy.test", {"ok": True})
        await self.healthy.wait_for(before + 1, timeout=5.0)
        assert self.healthy.requests[-1].webhook_id == sent.message.id


@asynccontextmanager
async def harness(database_url: str, **overrides) -> AsyncIterator[Harness]:
    receiver = await Receiver().start()
    try:
        settings = {
            "allow_subnets": "127.0.0.0/8",
            "retry_schedule": (),  # one attempt, then failed: each case records exactly one
            "request_timeout_s": TIMEOUT_S,
            "connect_timeout_s": TIMEOUT_S,
            "poll_interval_s": 0.05,
            **overrides,
        }
        async with Hookpost.open(database_url, worker=True, **settings) as hp:
            app = await hp.apps.create("healthy")
            await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/healthy")))
            yield Harness(hp, receiver, app.id)
    finally:
        await receiver.stop()


@pytest.fixture
async def h(migrated_sqlite_url: str) -> AsyncIterator[Harness]:
    async with harness(migrated_sqlite_url) as h:
        yield h


def assert_failed(attempt: Attempt, error_prefix: str | tuple[str, ...]) -> None:
    assert attempt.status == AttemptStatus.FAIL, attempt
    assert attempt.response_status_code == 0, attempt
    assert attempt.error is not None and attempt.error.startswith(error_prefix), attempt.error
    assert attempt.response == attempt.error  # the error text is what the attempt log shows
    assert attempt.duration_ms <= TIMEOUT_MS + SLACK_MS, attempt


def assert_timed_out(attempt: Attempt) -> None:
    assert_failed(attempt, "timeout: no complete response within 1s")
    assert attempt.duration_ms >= TIMEOUT_MS - 100, attempt  # it was the timeout that ended it


# --------------------------------------------------------------------------- (a) unbounded


@pytest.mark.parametrize("handler", [endless_chunked_body, ten_gigabyte_body])
async def test_unbounded_body_is_read_capped_and_memory_stays_flat(h: Harness, handler):
    """200 + an endless body: recorded as the 200 it is, with at most 4 KiB stored; hookpost
    stops reading at MAX_READ_BYTES and drops the connection (the server sees it go)."""
    n = 20
    async with raw_server(handler) as server:
        await h.assert_still_delivers()  # warm up: the session, the store's pools, ...
        sampler = RssSampler()
        with sampler:
            app_id, ids = await h.send_to(server.url(), count=n)
            await h.assert_still_delivers()  # while those 20 are streaming
            attempts = [await h.only_attempt(app_id, msg_id) for msg_id in ids]
            # Every connection ended because hookpost hung up, not because of the cap.
            await eventually(lambda: _value(len(server.bytes_sent)), lambda k: k == n)
            growth = await sampler.stop()
    for attempt in attempts:
        assert attempt.status == AttemptStatus.SUCCESS, attempt
        assert attempt.response_status_code == 200 and attempt.error is None
        assert 0 < len(attempt.response) <= STORED_BYTES
        assert set(attempt.response) == {"x"} or set(attempt.response) == {"y"}
        assert attempt.duration_ms < TIMEOUT_MS, attempt  # done at the cap, not by the timeout
    # What the server managed to push before hookpost hung up: the 64 KiB read plus what
    # the socket buffers hold, nowhere near the 1 GiB the server would send.
    assert max(server.bytes_sent) < 64 * MIB, server.bytes_sent
    assert growth < 50 * MIB, f"RSS grew by {growth / MIB:.1f} MiB"
    endpoint_id = await _endpoint_id(h, app_id)
    for msg_id in ids:
        delivery = await h.hp.store.get_delivery(msg_id, endpoint_id)
        assert delivery.status == DeliveryStatus.SUCCEEDED


async def test_endless_response_headers_fail_without_growing(h: Harness):
    """An endless header block: aiohttp's header limits end it, memory stays flat."""
    async with raw_server(endless_headers) as server:
        sampler = RssSampler()
        with sampler:
            app_id, (msg_id,) = await h.send_to(server.url())
            attempt = await h.only_attempt(app_id, msg_id)
            growth = await sampler.stop()
        await h.assert_still_delivers()
    assert_failed(attempt, "invalid http response")  # aiohttp: "Too many headers received"
    assert max(server.bytes_sent, default=0) < 64 * MIB, server.bytes_sent
    assert growth < 50 * MIB, f"RSS grew by {growth / MIB:.1f} MiB"


async def test_gzip_bomb_is_not_decompressed(h: Harness):
    """Content-Encoding: gzip, 128 MiB of zeros in ~130 KiB: hookpost stores the raw bytes
    (auto_decompress is off) and never inflates them."""
    bomb = gzip_bomb()
    assert len(bomb) > MAX_READ_BYTES  # more than the capped read, on the wire
    async with raw_server(gzip_handler(bomb)) as server:
        await h.assert_still_delivers()
        sampler = RssSampler()
        with sampler:
            app_id, ids = await h.send_to(server.url(), count=20)
            attempts = [await h.only_attempt(app_id, msg_id) for msg_id in ids]
            growth = await sampler.stop()
        await h.assert_still_delivers()
    for attempt in attempts:
        assert attempt.status == AttemptStatus.SUCCESS, attempt
        assert attempt.response_status_code == 200
        # Exactly the first 4 KiB of the compressed bytes as sent (gzip magic 0x1f 0x8b
        # first), never the inflated zeros. (NUL is stored as U+FFFD.)
        assert attempt.response == stored_text(bomb[:STORED_BYTES])
        assert attempt.response.startswith("\x1f\ufffd\x08"), attempt.response[:16]
    assert growth < 50 * MIB, f"RSS grew by {growth / MIB:.1f} MiB"


# --------------------------------------------------------------------------- (b) (c) slow


async def test_server_that_never_answers_times_out(h: Harness):
    async with raw_server(never_answers) as server:
        app_id, (msg_id,) = await h.send_to(server.url())
        await asyncio.wait_for(server.connected.wait(), 5)
        await h.assert_still_delivers()  # while that request hangs
        attempt = await h.only_attempt(app_id, msg_id)
    assert_timed_out(attempt)


@pytest.mark.parametrize("handler", [slow_status_and_headers, slow_body])
async def test_slow_drip_response_times_out(h: Harness, handler):
    """Bytes keep coming, just too slowly: the total timeout still ends the request."""
    async with raw_server(handler) as server:
        app_id, (msg_id,) = await h.send_to(server.url())
        await asyncio.wait_for(server.connected.wait(), 5)
        await h.assert_still_delivers()
        attempt = await h.only_attempt(app_id, msg_id)
    assert_timed_out(attempt)


async def test_hanging_receivers_do_not_block_a_healthy_one(migrated_sqlite_url: str):
    """With ten requests held open (and a timeout long enough that they are all still
    hanging), a message to a healthy endpoint is delivered straight away."""
    async with (
        harness(migrated_sqlite_url, request_timeout_s=30.0) as h,
        raw_server(never_answers) as server,
    ):
        app_id, ids = await h.send_to(server.url(), count=10)
        await eventually(lambda: _value(server.open_connections), lambda k: k == 10)
        started = time.monotonic()
        await h.assert_still_delivers()
        assert time.monotonic() - started < 5
        assert server.open_connections == 10  # all still hanging
        assert all([not await h.attempts(app_id, msg_id) for msg_id in ids])
        server.release.set()  # let them go, rather than waiting 30 s for the timeout
        for msg_id in ids:
            attempt = await h.only_attempt(app_id, msg_id)
            assert_failed(attempt, "connection error: server disconnected without a response")


# --------------------------------------------------------------------------- (d) bad HTTP


async def test_garbage_instead_of_a_status_line(h: Harness):
    async with raw_server(garbage) as server:
        app_id, (msg_id,) = await h.send_to(server.url())
        attempt = await h.only_attempt(app_id, msg_id)
        await h.assert_still_delivers()
    assert_failed(attempt, "invalid http response")
    assert attempt.duration_ms < INSTANT_MS  # refused on sight, not by the timeout
    assert "\x00" not in attempt.error


async def test_server_that_hangs_up_without_answering(h: Harness):
    async with raw_server(hangs_up) as server:
        app_id, (msg_id,) = await h.send_to(server.url())
        attempt = await h.only_attempt(app_id, msg_id)
        await h.assert_still_delivers()
    assert_failed(attempt, "connection error: server disconnected without a response")
    assert attempt.duration_ms < INSTANT_MS


# --------------------------------------------------------------------------- (e) TLS


async def test_self_signed_certificate_is_rejected(h: Harness, tmp_path: Path):
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    async with raw_server(answers_ok, server_ctx) as server:
        url = server.url(scheme="https")
        # Control: the server is a working HTTPS receiver for a client that trusts it...
        trusting = ssl.create_default_context(cafile=str(cert))
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=b"{}", ssl=trusting) as resp,
        ):
            assert resp.status == 200
        assert server.connections == 1
        # ...but hookpost verifies certificates, so its request never gets past the handshake.
        app_id, (msg_id,) = await h.send_to(url)
        attempt = await h.only_attempt(app_id, msg_id)
        await h.assert_still_delivers()
        assert server.connections == 1  # the handler (after the handshake) never ran again
    assert_failed(attempt, "tls error")
    assert "certificate verify failed" in attempt.error


async def test_https_url_pointing_at_plain_http(h: Harness):
    async with raw_server(plain_http_error) as server:
        app_id, (msg_id,) = await h.send_to(server.url(scheme="https"))
        attempt = await h.only_attempt(app_id, msg_id)
        await h.assert_still_delivers()
        assert server.connections == 1  # the ClientHello arrived; nothing was sent in clear
    assert_failed(attempt, "tls error")
    assert attempt.duration_ms < INSTANT_MS


# --------------------------------------------------------------------------- (f) (g) network


async def test_unresolvable_host_name(h: Harness):
    """``.invalid`` never resolves (RFC 2606). A slow local resolver is cut off by the
    timeout; a prompt one gives a DNS error naming the host."""
    host = "no-such-receiver.hookpost.invalid"
    app_id, (msg_id,) = await h.send_to(f"http://{host}/hook")
    attempt = await h.only_attempt(app_id, msg_id)
    await h.assert_still_delivers()
    assert_failed(attempt, ("dns error", "timeout"))
    if attempt.error.startswith("dns error"):
        assert host in attempt.error


async def test_connection_refused(h: Harness):
    # A bound socket that never listens: its port is ours, and connecting to it is refused.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        app_id, (msg_id,) = await h.send_to(f"http://127.0.0.1:{port}/hook")
        attempt = await h.only_attempt(app_id, msg_id)
    await h.assert_still_delivers()
    assert_failed(attempt, "connection error: Connection refused")
    assert f"127.0.0.1:{port}" in attempt.error
    assert attempt.duration_ms < INSTANT_MS


# --------------------------------------------------------------------------- (h) redirects


@pytest.mark.parametrize("status", [302, 307])
async def test_redirect_is_not_followed(h: Harness, status: int):
    async with raw_server(answers_ok) as target:
        h.healthy.respond(
            "/redirect", lambda n: (status, "moved", {"Location": target.url("/stolen")})
        )
        app_id, (msg_id,) = await h.send_to(h.healthy.url("/redirect"))
        attempt = await h.only_attempt(app_id, msg_id)
        await h.assert_still_delivers()
        assert target.connections == 0  # not a single connection, let alone a request
    assert attempt.status == AttemptStatus.FAIL
    assert attempt.response_status_code == status
    assert attempt.response == "moved"
    assert len(h.healthy.on("/redirect")) == 1


# --------------------------------------------------------------------------- NUL bytes


async def nul_body(reader, writer, server) -> None:
    await read_request(reader)
    body = b"bad\x00body\x00"
    writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()


async def check_nul_body_is_recorded(h: Harness) -> None:
    async with raw_server(nul_body) as server:
        app_id, (msg_id,) = await h.send_to(server.url())
        attempt = await h.only_attempt(app_id, msg_id)
        await h.assert_still_delivers()
    assert attempt.status == AttemptStatus.FAIL and attempt.response_status_code == 500
    assert attempt.response.startswith("bad") and "body" in attempt.response
    assert "\x00" not in attempt.response


async def test_nul_bytes_in_a_response_are_recorded(h: Harness):
    await check_nul_body_is_recorded(h)


async def test_nul_bytes_in_a_response_are_recorded_on_postgres(migrated_postgres_url: str):
    """PostgreSQL TEXT cannot hold NUL: a body with one must still be recordable, or the
    worker's result writer would retry that batch forever."""
    async with harness(migrated_postgres_url, main_key=generate_main_key()) as h:
        await check_nul_body_is_recorded(h)


# --------------------------------------------------------------------------- helpers


async def _value(value):
    return value


async def _endpoint_id(h: Harness, app_id: str) -> str:
    page = await h.hp.endpoints.list(app_id, PageRequest())
    (endpoint,) = page.items
    return endpoint.id
