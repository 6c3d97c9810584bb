"""Per-token API rate limit: a token bucket per API token, in memory, per process.

* ``Settings.api_rate_limit`` is the sustained rate in requests per second per token; the
  bucket holds ``2 x rate`` requests (the burst). 0 turns the limit off (the middleware is then
  not installed at all).
* A request over the limit is answered 429 ``{"code": "rate_limited", "detail": ...}`` with
  ``Retry-After`` (whole seconds, at least 1) and is not executed. Refused requests cost no
  tokens, so a client that honours ``Retry-After`` gets through.
* Buckets are keyed by the token's id (``ApiToken.id``), after authentication, so a token
  cannot dodge its bucket by spelling its header differently and unknown tokens cannot grow
  the table. Requests without a valid token are not limited here: the route answers 401.
* Health checks and ``/metrics`` are never limited (a monitoring system may carry a token).
* The state is per process: with N API processes a token may send up to N x rate. This is a
  guard against one runaway client starving the others, not a quota.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from hookpost.api.auth import authenticate_scope
from hookpost.api.errors import error_response

UNLIMITED_PREFIXES = ("/api/v1/health", "/metrics")
MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One token bucket per key: ``rate`` tokens per second, at most ``burst`` held."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else 2 * rate)
        if self.burst < 1:
            raise ValueError("burst must allow at least one request")
        self.clock = clock
        self._max = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            elapsed = now - bucket.updated
            if elapsed > 0:
                bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Drop buckets that are full again (forgetting them changes nothing); if none is,
        start over rather than grow without bound."""
        full_after = self.burst / self.rate
        stale = [k for k, b in self._buckets.items() if now - b.updated >= full_after]
        for key in stale:
            del self._buckets[key]
        if len(self._buckets) >= self._max:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_seconds(wait_s: float) -> int:
    """``Retry-After`` in whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_s))


class RateLimitMiddleware:
    """ASGI middleware: 429 with ``Retry-After`` once a token's bucket is empty.

    The authenticator and the buckets are read from ``app_state`` (``app.state``) on each
    request: the authenticator is attached when the runtime starts, and tests may swap the
    buckets' clock (``app.state.rate_limiter.clock``).
    """

    def __init__(self, app: ASGIApp, app_state: Any) -> None:
        self.app = app
        self.state = app_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        api = getattr(self.state, "api", None)
        if api is None:  # not started yet: nothing can be authenticated
            await self.app(scope, receive, send)
            return
        record, answered = await authenticate_scope(api.authenticator, scope, send)
        if answered:
            return
        if record is None:  # no token, or not a valid one: the route answers 401
            await self.app(scope, receive, send)
            return
        limiter: TokenBuckets = self.state.rate_limiter
        wait = limiter.take(record.id)
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        api.hp.services.metrics.rate_limited.inc()
        seconds = retry_after_seconds(wait)
        response = error_response(
            429,
            "rate_limited",
            f"too many requests for this token (limit {limiter.rate:g}/s); retry after {seconds} s",
            {"Retry-After": str(seconds)},
        )
        await response(scope, receive, send)
