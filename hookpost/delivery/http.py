"""The outbound HTTP client: one shared aiohttp session, guarded, bounded and never redirected."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from hookpost.delivery.ssrf import AddressPolicy, find_blocked_error, make_connector
from hookpost.domain.retry import Outcome, parse_retry_after

MAX_READ_BYTES = 64 * 1024  # never read more of a response than this
STORED_BYTES = 4 * 1024  # keep at most this much of it in the attempt log
USER_AGENT = "hookpost/0.1"


@dataclass(slots=True)
class Response:
    outcome: Outcome
    body: str  # the first STORED_BYTES of the response, or the error text
    duration_ms: int


class HttpSender:
    def __init__(
        self,
        policy: AddressPolicy,
        *,
        total_timeout_s: float,
        connect_timeout_s: float,
        limit: int,
        limit_per_host: int = 0,
    ) -> None:
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout_s, connect=min(connect_timeout_s, total_timeout_s)
        )
        self._total_timeout_s = total_timeout_s
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = make_connector(
            self._policy, limit=self._limit, limit_per_host=self._limit_per_host
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,  # a compressed bomb stays compressed; we store raw bytes
            trust_env=False,  # a proxy would resolve targets itself, past the SSRF guard
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        assert self._session is not None, "HttpSender.start() was not called"
        started = time.perf_counter()
        try:
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                raw = await _read_capped(resp)
                text = storable(raw[:STORED_BYTES].decode("utf-8", errors="replace"))
                outcome = Outcome(
                    status_code=resp.status,
                    retry_after_s=parse_retry_after(resp.headers.get("Retry-After")),
                )
        except Exception as exc:  # every failure is a failed attempt, never a crash
            error = storable(describe_error(exc, self._total_timeout_s))
            return Response(Outcome(0, error=error), error, _elapsed_ms(started))
        return Response(outcome, text, _elapsed_ms(started))


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_READ_BYTES:
        chunk = await resp.content.read(MAX_READ_BYTES - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    resp.close()  # the rest is never read: drop the connection rather than drain it
    return b"".join(chunks)


def storable(text: str) -> str:
    """``text`` made safe for every store: PostgreSQL TEXT cannot hold NUL, so a receiver
    answering with one would otherwise make the attempt unrecordable (U+FFFD instead)."""
    return text.replace("\x00", "\ufffd")


def describe_error(exc: BaseException, timeout_s: float) -> str:
    blocked = find_blocked_error(exc)
    if blocked is not None:
        return str(blocked)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"timeout: no complete response within {timeout_s:g}s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLError):
        return f"tls error: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"dns error: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = os.strerror(exc.errno) if exc.errno else None  # "Connection refused", ...
        if reason and reason.lower() not in str(exc).lower():
            return f"connection error: {reason}: {exc}"
        return f"connection error: {exc}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection error: server disconnected without a response"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return f"invalid http response: {exc}"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid url: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
