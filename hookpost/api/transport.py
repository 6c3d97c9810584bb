"""uvicorn's httptools protocol with one socket write per response instead of two.

uvicorn writes a response's head and its body in two ``transport.write`` calls (two ``send``
system calls). :class:`CoalescingHttpToolsProtocol` gives uvicorn a transport that gathers the
writes of one event-loop turn and hands them to the socket together right after that turn
(``call_soon``), so no response waits longer than the task that wrote it keeps running. Why it
is kept and what it saves: see docs/decisions/0014-one-socket-write-per-response.md.

It also refuses a request head over :data:`MAX_HEAD_BYTES` (431), which uvicorn's httptools
protocol would keep reading; the time a client may take to send one is bounded by
``hookpost.api.server``.

It subclasses a private class of uvicorn, so it coalesces only on the uvicorn releases it was
checked against (:data:`UVICORN_TESTED`). On any other release, or if uvicorn's class cannot be
imported, it logs a warning and behaves exactly as uvicorn's own protocol.
``tests/integration/test_transport_uvicorn_pin.py`` fails loudly when the installed uvicorn differs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

import uvicorn

log = logging.getLogger("hookpost.api")

# The uvicorn releases this module was checked against, inclusive (the one requirements.lock
# pins). Widen it only after re-checking, against the new release, what
# tests/integration/test_transport_uvicorn_pin.py lists.
UVICORN_TESTED = ("0.54.0", "0.54.0")


def _uvicorn_protocol() -> tuple[type[asyncio.Protocol], str | None]:
    """uvicorn's httptools protocol, or (if it moved or httptools is missing) the protocol
    uvicorn itself would pick, with the reason it is not the expected one."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError as exc:
        from uvicorn.config import HTTP_PROTOCOLS
        from uvicorn.importer import import_from_string

        fallback: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS["auto"])
        return fallback, f"uvicorn's HttpToolsProtocol cannot be imported ({exc})"
    return HttpToolsProtocol, None


_BASE, _IMPORT_PROBLEM = _uvicorn_protocol()
if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _UvicornProtocol
else:
    _UvicornProtocol = _BASE


def _release(version: str) -> tuple[int, ...] | None:
    """``"0.54.0"`` -> ``(0, 54, 0)``; None for anything but a final release (rc, dev, local)."""
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        return None
    return tuple(int(part) for part in version.split("."))


def uvicorn_problem(version: str | None = None) -> str | None:
    """Why coalescing cannot be trusted with ``version`` of uvicorn (default: the installed
    one); None when it can."""
    if _IMPORT_PROBLEM is not None:
        return _IMPORT_PROBLEM
    version = getattr(uvicorn, "__version__", "unknown") if version is None else version
    release, low, high = _release(version), _release(UVICORN_TESTED[0]), _release(UVICORN_TESTED[1])
    if release is None or low is None or high is None or not low <= release <= high:
        return (
            f"uvicorn {version} is not a release hookpost.api.transport was checked against "
            f"({UVICORN_TESTED[0]} to {UVICORN_TESTED[1]})"
        )
    if "connection_made" not in vars(_BASE):
        return "uvicorn's HttpToolsProtocol no longer defines connection_made"
    return None


def check_uvicorn(version: str | None = None) -> bool:
    """True if responses may be coalesced; otherwise logs why not and returns False."""
    problem = uvicorn_problem(version)
    if problem is not None:
        log.warning(
            "one socket write per response is off, hookpost runs uvicorn's own protocol: %s",
            problem,
        )
    return problem is None


COALESCING = check_uvicorn()

# A request line (httptools refuses URLs over 64 KiB itself) and its header lines.
MAX_HEAD_BYTES = 128 * 1024
_HEAD_TOO_LARGE_BODY = (
    b'{"code":"request_header_fields_too_large",'
    b'"detail":"the request head is over the %d-byte limit"}' % MAX_HEAD_BYTES
)
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n\r\n" % len(_HEAD_TOO_LARGE_BODY)
) + _HEAD_TOO_LARGE_BODY


class CoalescingTransport:
    """Wraps a transport: ``write`` calls within one loop turn become one write. Everything
    that could let the peer see the connection differently (``close``, ``write_eof``,
    ``set_protocol``) writes what is gathered first; ``abort`` drops it, as it would drop the
    transport's own buffer."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if self._transport.is_closing():
            return  # the peer is gone: the transport would only warn about the write
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        # is_closing, get_extra_info, pause_reading, resume_reading, ...: as they are
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(_UvicornProtocol):
    """uvicorn's ``http="httptools"`` protocol on a :class:`CoalescingTransport`, or exactly
    uvicorn's own protocol when :data:`COALESCING` is False; either way, a request head over
    :data:`MAX_HEAD_BYTES` is refused (uvicorn's httptools protocol has no such bound: it keeps
    every header line it is sent)."""

    _head_scope: object = None  # the request whose head is being counted
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if COALESCING:
            transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        scope = self.scope
        # uvicorn adds "method" to a request's scope once its head is complete: a head still
        # arriving is counted (a complete one costs nothing more than this test).
        if scope is not None and "method" not in scope and not self.transport.is_closing():
            self._count_head(scope, len(data))

    def _count_head(self, scope: object, size: int) -> None:
        if scope is not self._head_scope:
            self._head_scope, self._head_bytes = scope, 0
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()
