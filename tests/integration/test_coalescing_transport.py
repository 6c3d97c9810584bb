"""The API's coalescing transport: one socket write per response, nothing lost or reordered."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from hookpost.api.transport import CoalescingHttpToolsProtocol, CoalescingTransport
from tests.support.polling import until_serving


class RecordingTransport:
    """The calls a transport receives, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def _next_turn() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_turn_reach_the_socket_as_one_write_after_it() -> None:
    raw = RecordingTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
    t.write(b"{}")
    assert raw.calls == []  # held for the rest of this turn only
    await _next_turn()
    assert raw.calls == [("write", b"HTTP/1.1 202 Accepted\r\n\r\n{}")]
    t.write(b"next")
    await _next_turn()
    assert raw.calls[-1] == ("write", b"next")


async def test_close_and_write_eof_write_what_is_gathered_first() -> None:
    raw = RecordingTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"a")
    t.write_eof()
    t.write(b"b")
    t.close()
    await _next_turn()  # the scheduled flushes find nothing left
    assert raw.calls == [("write", b"a"), ("write_eof", None), ("write", b"b"), ("close", None)]


async def test_abort_drops_what_is_gathered_and_a_closing_transport_gets_no_write() -> None:
    raw = RecordingTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"lost")
    t.abort()
    await _next_turn()
    assert raw.calls == [("abort", None)]

    raw = RecordingTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"late")
    raw.closing = True  # the peer went away before the loop came round
    await _next_turn()
    assert raw.calls == []
    assert t.is_closing() and t.get_extra_info("peername") == "info:peername"


async def _app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply = b'{"echo":"' + body + b'"}'
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(reply)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": reply})


class SocketWrites:
    """Between uvicorn's transport and the coalescing one: what reaches the socket."""

    seen: list[bytes] = []

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        self.seen.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class SpiedProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(SocketWrites(transport))  # type: ignore[arg-type]


async def test_a_real_uvicorn_server_writes_each_response_whole_in_one_write() -> None:
    SocketWrites.seen = []
    config = uvicorn.Config(_app, http=SpiedProtocol, log_level="warning", lifespan="off")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))

    try:
        await until_serving(server, serving)
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            def request(body: bytes) -> bytes:
                return (
                    b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )

            async def response() -> tuple[bytes, bytes]:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                return head.split(b"\r\n")[0], await reader.readexactly(length)

            writer.write(request(b"one"))
            assert await response() == (b"HTTP/1.1 202 Accepted", b'{"echo":"one"}')
            writer.write(request(b"two") + request(b"three"))  # pipelined
            assert await response() == (b"HTTP/1.1 202 Accepted", b'{"echo":"two"}')
            assert await response() == (b"HTTP/1.1 202 Accepted", b'{"echo":"three"}')
            writer.close()
        # uvicorn alone writes each response in two (head, then body): 6 writes
        assert 1 <= len(SocketWrites.seen) <= 3, SocketWrites.seen
        assert all(w.startswith(b"HTTP/1.1 202") for w in SocketWrites.seen), SocketWrites.seen
        assert b"".join(SocketWrites.seen).count(b"HTTP/1.1 202") == 3
    finally:
        server.should_exit = True
        await serving
