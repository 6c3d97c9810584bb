"""Slow clients against the server the CLI runs (``api.server.build_server``): a request head
or body that takes too long closes the connection, a request head too large is refused, and
connections beyond ``HOOKPOST_MAX_CONNECTIONS`` are answered 503. Raw sockets throughout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from hookpost.settings import Settings
from tests.integration.test_api_harness import ADMIN_TOKEN
from tests.support.polling import eventually

pytestmark = pytest.mark.timeout(60)

TIMEOUT_S = 0.5  # head and body timeouts of the server under test
DEADLINE_S = 10.0  # how long a test waits for the server to close a connection

Open = Callable[[], AbstractAsyncContextManager[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@asynccontextmanager
async def _server(database_url: str, **settings: Any) -> AsyncIterator[int]:
    from hookpost.api.app import create_app
    from hookpost.api.server import build_server
    from hookpost.wiring import Hookpost
    from tests.support.polling import until_serving

    settings.setdefault("request_head_timeout_s", TIMEOUT_S)
    settings.setdefault("request_body_timeout_s", TIMEOUT_S)
    hp = Hookpost(Settings(database_url=database_url, admin_token=ADMIN_TOKEN, **settings))
    await hp.start(worker=False)
    try:
        await hp.services.tokens.ensure_admin(ADMIN_TOKEN)
        server = build_server(create_app(hp), hp.settings, host="127.0.0.1", port=0)
        task = asyncio.create_task(server.serve())
        try:
            await until_serving(server, task)
            yield server.servers[0].sockets[0].getsockname()[1]
        finally:
            server.should_exit = True
            await task
    finally:
        await hp.stop()


def _opener(port: int) -> Open:
    @asynccontextmanager
    async def connect() -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            yield reader, writer
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    return connect


async def _until_closed(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took;
    fails if it is still open at the deadline."""
    started = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(), DEADLINE_S)
    except ConnectionResetError:
        data = b""
    except TimeoutError:
        raise AssertionError(f"the connection was still open after {DEADLINE_S}s") from None
    return data, time.monotonic() - started


@pytest.fixture
async def port(fresh_sqlite_url: str) -> AsyncIterator[int]:
    async with _server(fresh_sqlite_url) as p:
        yield p


async def test_half_a_request_head_is_closed_within_the_head_timeout(port: int) -> None:
    async with _opener(port)() as (reader, writer):
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        data, took = await _until_closed(reader)
    assert data == b"" and took >= TIMEOUT_S * 0.8, (data, took)


async def test_a_silent_connection_is_closed_within_the_head_timeout(port: int) -> None:
    async with _opener(port)() as (reader, _writer):
        data, took = await _until_closed(reader)
    assert data == b"" and took >= TIMEOUT_S * 0.8, (data, took)


async def test_a_body_that_stalls_is_closed_within_the_body_timeout(port: int) -> None:
    async with _opener(port)() as (reader, writer):
        writer.write(
            b"POST /api/v1/app HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + ADMIN_TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"name": "sl'
        )
        data, took = await _until_closed(reader)
    assert b"201" not in data and took >= TIMEOUT_S * 0.8, (data, took)


async def test_a_client_that_keeps_up_is_served(port: int) -> None:
    async with _opener(port)() as (reader, writer):
        for _ in range(3):  # keep-alive: each request in two parts, well within the timeout
            writer.write(b"GET /api/v1/health HTTP/1.1\r\n")
            await writer.drain()
            writer.write(b"Host: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE_S)
            assert head.startswith(b"HTTP/1.1 204"), head


async def test_a_request_head_too_large_is_431(port: int) -> None:
    from hookpost.api.transport import MAX_HEAD_BYTES

    async with _opener(port)() as (reader, writer):
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        line = b"X-Filler: " + b"f" * 1000 + b"\r\n"
        for _ in range(MAX_HEAD_BYTES // len(line) + 2):
            writer.write(line)
        data, _took = await _until_closed(reader)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert b'"code":"request_header_fields_too_large"' in data


async def _health(connect: Open) -> bytes:
    """The status line of a health check on a new connection."""
    async with connect() as (reader, writer):
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE_S)
        return head.split(b"\r\n", 1)[0]


async def test_connections_beyond_the_limit_are_answered_503(fresh_sqlite_url: str) -> None:
    # uvicorn counts the connection asking as well: with a limit of 3, two idle connections
    # and the one asking make three.
    async with _server(fresh_sqlite_url, max_connections=3, request_head_timeout_s=30) as port:
        connect = _opener(port)
        assert await _health(connect) == b"HTTP/1.1 204 No Content"
        async with connect(), connect():
            assert await _health(connect) == b"HTTP/1.1 503 Service Unavailable"
        # The idle ones gone (the server sees it soon after), it serves again.
        await eventually(lambda: _health(connect), lambda line: line.endswith(b"204 No Content"))
