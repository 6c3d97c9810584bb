"""Bearer-token authentication and per-application access control.

* ``Authorization: Bearer <token>``; a missing, unknown or expired token is answered 401
  ``{"code": "authentication_failed"}``.
* Tokens are looked up by their SHA-256 hash. Successful lookups are cached in memory for a few
  seconds (per app instance), so the hot paths cost no database round trip for authentication.
  The cache is keyed by the token itself, so a hit costs no hashing either (the process holds
  each request's token in memory anyway); entries are dropped within a cache lifetime of going
  stale. A token that expires is refused as soon as it expires, even while cached (the tokens
  service's rule, checked on every use).
* Failed lookups are cached too, for a shorter time (``NEGATIVE_TTL_S``), and concurrent
  lookups of one token share one read: a flood of bogus tokens costs at most one read per
  distinct token per that time. A token this process creates is forgotten as unknown at once.
* An application-scoped token (the app portal's) may only touch its own application: any other
  application, by id or uid, is "not found" (404, never 403, so that ids of other tenants
  cannot be probed). What each kind of token may do on top of that is the permission matrix
  (``domain.permissions``, ``api.permissions``, docs/permissions.md): 403 otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fastapi.security import HTTPBearer
from starlette.types import Scope, Send

from hookpost.api.asgi import scope_header
from hookpost.api.errors import not_found, send_known_error, unauthorized
from hookpost.domain.errors import NotFound
from hookpost.domain.models import ApiToken
from hookpost.services.tokens import hash_token

CACHE_TTL_S = 5.0
NEGATIVE_TTL_S = 2.0
CACHE_MAX = 10_000

bearer = HTTPBearer(
    auto_error=False,
    description="An API token: `Authorization: Bearer <token>` (admin or app-scoped).",
)


class TokenLookup(Protocol):
    """What the authenticator needs of ``services.tokens.TokenService``."""

    async def lookup(self, token_hash: str) -> ApiToken | None: ...
    def usable(self, record: ApiToken) -> bool: ...
    def on_created(self, callback: Callable[[str], None]) -> None: ...


class Authenticator:
    """Token -> ApiToken with a short in-memory cache of lookups, successful or not."""

    def __init__(
        self,
        tokens: TokenLookup,
        ttl_s: float = CACHE_TTL_S,
        max_entries: int = CACHE_MAX,
        clock: Callable[[], float] = time.monotonic,
        negative_ttl_s: float = NEGATIVE_TTL_S,
    ) -> None:
        self._lookup = tokens.lookup
        self._usable = tokens.usable  # the expiry rule, checked on every use
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._max = max_entries
        self._clock = clock
        # token -> (its record, cached until, its hash)
        self._cache: dict[str, tuple[ApiToken, float, str]] = {}
        self._unknown: dict[str, float] = {}  # token -> until when it is answered "unknown"
        self._reading: dict[str, asyncio.Future[ApiToken | None]] = {}  # token -> its lookup
        self._revoked: dict[str, float] = {}  # token hash -> until when this process refuses it
        self._creations = 0  # tokens created in this process: a read begun before is stale
        self._next_sweep = 0.0
        tokens.on_created(self.created)

    async def authenticate(self, token: str) -> ApiToken | None:
        if not token:
            return None
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        hit = self._cache.get(token)
        if hit is not None and hit[1] > now:
            record, _, digest = hit
            if self._revoked and self._is_revoked(digest, now):
                return None
        else:
            if self._unknown and self._unknown.get(token, 0.0) > now:
                return None
            digest = hash_token(token)
            if self._is_revoked(digest, now):
                return None
            creations = self._creations
            found = await self._read(token, digest)
            if found is None or digest in self._revoked:  # revoked while we looked it up
                if creations == self._creations:  # else it may have been created meanwhile
                    self._cache.pop(token, None)
                    if found is None:
                        if len(self._unknown) >= self._max:
                            self._unknown.clear()
                        self._unknown[token] = now + self._negative_ttl
                return None
            record = found
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[token] = (record, now + self._ttl, digest)
        return record if self._usable(record) else None

    async def _read(self, token: str, digest: str) -> ApiToken | None:
        """The store's record for ``token``: one read shared by every concurrent caller."""
        reading = self._reading.get(token)
        if reading is None:
            reading = asyncio.ensure_future(self._lookup(digest))
            self._reading[token] = reading
            reading.add_done_callback(lambda done: self._read_done(token, done))
        # Shielded: a caller that goes away does not cancel the others' read.
        return await asyncio.shield(reading)

    def _read_done(self, token: str, done: asyncio.Future[ApiToken | None]) -> None:
        if self._reading.get(token) is done:
            del self._reading[token]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone away

    def created(self, token: str) -> None:
        """A token this process just created or registered: it is no longer unknown (nor
        will a read that began before say so)."""
        self._creations += 1
        self._unknown.pop(token, None)
        self._reading.pop(token, None)

    def _sweep(self, now: float) -> None:
        """Forget the entries past their lifetime, once per lifetime: the cache holds tokens
        in plain text, so none stays in memory much longer than its last use."""
        self._next_sweep = now + self._ttl
        stale = [token for token, entry in self._cache.items() if entry[1] <= now]
        for token in stale:
            del self._cache[token]
        self._unknown = {token: t for token, t in self._unknown.items() if t > now}

    def revoked(self, token: str) -> None:
        """The token was deleted from the store: drop it from the cache and refuse it here
        for a cache lifetime, so that a lookup that began before the delete cannot put it
        back (after that, the store's answer is authoritative)."""
        self._cache.pop(token, None)
        self.revoked_hash(hash_token(token))

    def revoked_hash(self, digest: str) -> None:
        """``revoked``, for a token known by its hash only (revoked by id)."""
        for token in [t for t, entry in self._cache.items() if entry[2] == digest]:
            del self._cache[token]
        now = self._clock()
        if len(self._revoked) >= self._max:
            self._revoked = {d: t for d, t in self._revoked.items() if t > now}
        self._revoked[digest] = now + self._ttl

    def _is_revoked(self, digest: str, now: float) -> bool:
        until = self._revoked.get(digest)
        if until is None:
            return False
        if until > now:
            return True
        del self._revoked[digest]
        return False


def bearer_token(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (case-insensitive scheme)."""
    return parse_bearer(headers.get("authorization"))


def parse_bearer(value: str | bytes | None) -> str | None:
    """The token of an ``Authorization`` header's value, if it is ``Bearer <token>``."""
    if not value:
        return None
    if not isinstance(value, str):
        value = bytes(value).decode("latin-1")  # ASGI scopes hold raw header bytes
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def authenticate(authenticator: Authenticator, token: str | None) -> ApiToken:
    if token is None:
        raise unauthorized("missing bearer token (Authorization: Bearer <token>)")
    record = await authenticator.authenticate(token)
    if record is None:
        raise unauthorized("invalid or expired token")
    return record


async def check_app_access(
    token: ApiToken, app_id_or_uid: str, resolve: Callable[[str], Awaitable[str]]
) -> None:
    """Allow an app-scoped token only on its own application (by id or uid), else 404.

    ``resolve`` maps an application id or uid to the application's id (NotFound if none).
    """
    if token.app_id is None or app_id_or_uid == token.app_id:
        return
    try:
        resolved = await resolve(app_id_or_uid)
    except NotFound:
        raise not_found() from None
    if resolved != token.app_id:
        raise not_found()


async def authenticate_scope(
    authenticator: Authenticator, scope: Scope, send: Send
) -> tuple[ApiToken | None, bool]:
    """For the middlewares outside FastAPI's error handlers: the record of the request's bearer
    token (None: no token, or not a valid one), and whether an error was answered instead (a
    database away: 503 with Retry-After, as FastAPI's handlers would; any other is raised)."""
    token = parse_bearer(scope_header(scope, b"authorization"))
    if token is None:
        return None, False
    try:
        return await authenticator.authenticate(token), False
    except Exception as exc:
        if await send_known_error(exc, scope, send):
            return None, True
        raise
