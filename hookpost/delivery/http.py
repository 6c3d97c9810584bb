"""The outbound HTTP client: one shared aiohttp session, guarded, bounded and never redirected."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from hookpost.delivery.ssrf import AddressPolicy, find_blocked_error, make_connector
from hookpost.domain.attempt_headers import USER_AGENT, capped_response
from hookpost.domain.retry import Outcome, parse_retry_after

MAX_READ_BYTES = 64 * 1024  # never read more of a response than this
STORED_BYTES = 4 * 1024  # keep at most this much of it in the attempt log


@dataclass(slots=True)
class Response:
    outcome: Outcome
    body: str  # the first STORED_BYTES of the response, or the error text
    duration_ms: int
    # A non-2xx answer's headers, capped (domain.attempt_headers); None for a 2xx or no answer:
    # the successes, nearly every attempt, keep none (docs/decisions/0046-attempt-headers.md).
    headers: list[tuple[str, str]] | None = None


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
        # The total timeout is enforced by _Deadlines, not aiohttp (see there); aiohttp keeps
        # the connect timeout, which only costs anything when a new connection is made.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=min(connect_timeout_s, total_timeout_s)
        )
        self._deadlines = _Deadlines(total_timeout_s)
        self._total_timeout_s = total_timeout_s
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        connector = make_connector(
            self._policy, limit=self._limit, limit_per_host=self._limit_per_host
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,  # a compressed bomb stays compressed; we store raw bytes
            trust_env=False,  # a proxy would resolve targets itself, past the SSRF guard
            # Deliveries are stateless: a cookie set by one tenant's receiver must not ride
            # along on other deliveries to that host (nor grow a jar filtered per request).
            cookie_jar=aiohttp.DummyCookieJar(),
            # A default header rather than skip_auto_headers=("User-Agent",), which sends
            # every request down aiohttp's slower header path; the caller's value still wins.
            headers={"User-Agent": USER_AGENT},
        )
        self._sweeper = asyncio.create_task(self._deadlines.sweep(), name="hookpost-deadlines")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float | None = None
    ) -> Response:
        """``timeout_s``: this request's total timeout (an endpoint's ``timeoutSeconds``), if
        not the sender's own."""
        assert self._session is not None, "HttpSender.start() was not called"
        started = time.perf_counter()
        watch = self._deadlines.watch(timeout_s)
        try:
            return await self._post(self._session, url, body, headers, started, timeout_s)
        except asyncio.CancelledError:
            if not self._deadlines.unwatch(watch):
                raise  # cancelled by someone else (shutdown): not a timeout
            return self._failed(TimeoutError(), started, timeout_s)
        finally:
            self._deadlines.unwatch(watch)

    async def _post(
        self,
        session: aiohttp.ClientSession,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        started: float,
        timeout_s: float | None = None,
    ) -> Response:
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                raw = await _read_capped(resp)
                text = storable(raw[:STORED_BYTES].decode("utf-8", errors="replace"))
                outcome = Outcome(
                    status_code=resp.status,
                    retry_after_s=parse_retry_after(resp.headers.get("Retry-After")),
                )
                kept = None if 200 <= resp.status < 300 else capped_response(resp.headers.items())
        except Exception as exc:  # every failure is a failed attempt, never a crash
            return self._failed(exc, started, timeout_s)
        return Response(outcome, text, _elapsed_ms(started), kept)

    def _failed(self, exc: BaseException, started: float, timeout_s: float | None) -> Response:
        error = storable(describe_error(exc, timeout_s or self._total_timeout_s))
        return Response(Outcome(0, error=error), error, _elapsed_ms(started))


@dataclass(eq=False, slots=True)
class _Watch:
    task: asyncio.Task[Any]
    deadline: float  # event-loop time
    cancelling: int  # the task's pending cancellations when the request started
    watches: dict[_Watch, None]  # the ordered dict it waits in (one per timeout)
    fired: bool = False  # the deadline passed and the task was cancelled


class _Deadlines:
    """Every request's total timeout, enforced by one periodic sweep.

    aiohttp's ``ClientTimeout(total=...)`` arms and cancels an event-loop timer for each
    request and enters a timer context around each read (see
    docs/decisions/0004-request-deadlines-by-one-sweep.md). Our requests all have the same
    timeout, so their deadlines pass in the order they started: every ``resolution_s`` the
    sweep cancels the expired ones from the front of an ordered dict, and ``unwatch`` turns
    that cancellation into a timeout the way ``asyncio.timeout`` does (a cancellation from
    anyone else still propagates). Requests with a timeout of their own (an endpoint's
    ``timeoutSeconds``) are kept the same way, one ordered dict per distinct timeout, and
    swept at least every ``OWN_RESOLUTION_S`` while there are any.
    """

    OWN_RESOLUTION_S = 0.1  # how late an endpoint's timeout (1 s at least) may fire

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.resolution_s = max(0.01, min(0.25, timeout_s / 10))  # how late one may fire
        self._watches: dict[_Watch, None] = {}  # insertion order = deadline order
        self._own: dict[float, dict[_Watch, None]] = {}  # the same, per endpoint timeout

    def watch(self, timeout_s: float | None = None) -> _Watch:
        task = asyncio.current_task()
        assert task is not None, "HttpSender.post() must run in a task"
        now = asyncio.get_running_loop().time()
        if timeout_s is None:
            watches = self._watches
            timeout_s = self.timeout_s
        else:
            watches = self._own.setdefault(timeout_s, {})
        watch = _Watch(task, now + timeout_s, task.cancelling(), watches)
        watches[watch] = None
        return watch

    def unwatch(self, watch: _Watch) -> bool:
        """Stop watching; True if the deadline cancelled the task and nothing else did (the
        cancellation is then undone). Only the first call for a watch does anything."""
        if watch not in watch.watches:
            return False
        del watch.watches[watch]
        return watch.fired and watch.task.uncancel() <= watch.cancelling

    async def sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(
                min(self.resolution_s, self.OWN_RESOLUTION_S) if self._own else self.resolution_s
            )
            self.expire(loop.time())

    def expire(self, now: float) -> None:
        """Cancel the tasks of the requests whose deadline is ``now`` or earlier."""
        for timeout_s, watches in list(self._own.items()):
            self._expire(watches, now)
            if not watches:
                del self._own[timeout_s]
        self._expire(self._watches, now)

    @staticmethod
    def _expire(watches: dict[_Watch, None], now: float) -> None:
        for watch in list(watches):
            if watch.deadline > now:
                return  # every later one started later
            if not watch.fired:
                watch.fired = True
                watch.task.cancel()


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_READ_BYTES:
        chunk = await resp.content.read(MAX_READ_BYTES - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if resp.content.at_eof():  # the usual short answer: done without another read
            return b"".join(chunks)
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
