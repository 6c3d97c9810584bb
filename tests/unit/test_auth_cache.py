"""A revoked token stays refused in this process, even when a lookup that began before the
revocation finishes after it (it must not put the token back into the cache); a cached token
costs no hashing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

import hookpost.api.auth as auth_module
from hookpost.api.auth import Authenticator
from hookpost.domain.models import ApiToken
from hookpost.services.tokens import TokenService, hash_token

TOKEN = "hp_secret"
RECORD = ApiToken("tok_1", "hash", "app_1", "portal", 0, None)


class FindOnly:
    """A token store that can only look tokens up, by hash."""

    def __init__(self, find: Callable[[str], Awaitable[ApiToken | None]]) -> None:
        self.find_token = find


def tokens(find: Callable[[str], Awaitable[ApiToken | None]]) -> TokenService:
    return TokenService(FindOnly(find))  # type: ignore[arg-type]


async def test_a_lookup_in_flight_does_not_undo_a_revocation() -> None:
    release = asyncio.Event()
    looked_up = asyncio.Event()

    async def slow_find(digest: str) -> ApiToken | None:
        looked_up.set()
        await release.wait()
        return RECORD  # read before the delete

    now = [100.0]
    auth = Authenticator(tokens(slow_find), ttl_s=5.0, clock=lambda: now[0])
    pending = asyncio.create_task(auth.authenticate(TOKEN))
    await looked_up.wait()
    auth.revoked(TOKEN)
    release.set()
    assert await pending is None
    assert await auth.authenticate(TOKEN) is None  # not cached by the late lookup


async def test_after_the_cache_lifetime_the_store_decides() -> None:
    found: list[ApiToken | None] = [RECORD]

    async def find(digest: str) -> ApiToken | None:
        return found[0]

    now = [100.0]
    # No negative cache: this is about the revocation's lifetime (a token missing from the
    # store is remembered as unknown for a while, see test_negative_cache.py).
    auth = Authenticator(tokens(find), ttl_s=5.0, clock=lambda: now[0], negative_ttl_s=0.0)
    assert await auth.authenticate(TOKEN) == RECORD
    auth.revoked(TOKEN)
    assert await auth.authenticate(TOKEN) is None
    found[0] = None  # deleted in the store
    now[0] += 6
    assert await auth.authenticate(TOKEN) is None
    found[0] = RECORD  # (a store that still had it would be believed again)
    assert await auth.authenticate(TOKEN) == RECORD


async def test_a_cached_token_is_not_hashed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path's authentication is a dict lookup: the SHA-256 runs on a cache miss only,
    and a revocation still reaches the cached entry."""
    hashed: list[str] = []

    def counting_hash(token: str) -> str:
        hashed.append(token)
        return hash_token(token)

    monkeypatch.setattr(auth_module, "hash_token", counting_hash)

    async def find(digest: str) -> ApiToken | None:
        return RECORD if digest == hash_token(TOKEN) else None

    auth = Authenticator(tokens(find), ttl_s=5.0, clock=lambda: 100.0)
    for _ in range(3):
        assert await auth.authenticate(TOKEN) == RECORD
    assert hashed == [TOKEN]
    auth.revoked(TOKEN)
    assert await auth.authenticate(TOKEN) is None


async def test_stale_entries_leave_the_cache() -> None:
    """The cache holds tokens in plain text: one unused for a cache lifetime is forgotten
    (at the next authentication after that), not kept until the cache fills."""

    async def find(digest: str) -> ApiToken | None:
        return RECORD

    now = [100.0]
    auth = Authenticator(tokens(find), ttl_s=5.0, clock=lambda: now[0])
    assert await auth.authenticate(TOKEN) == RECORD
    assert TOKEN in auth._cache
    now[0] += 11.0
    assert await auth.authenticate("hp_other") == RECORD
    assert list(auth._cache) == ["hp_other"]


async def test_a_cached_token_is_refused_once_it_expires() -> None:
    """The cache keeps the record; the tokens service's expiry rule is checked on every use."""
    expiring = ApiToken("tok_2", "hash", "app_1", "portal", 0, expires_at=1_000)

    async def find(digest: str) -> ApiToken | None:
        return expiring

    wall = [999]
    service = TokenService(FindOnly(find), clock=lambda: wall[0])  # type: ignore[arg-type]
    auth = Authenticator(service, ttl_s=5.0, clock=lambda: 100.0)
    assert await auth.authenticate(TOKEN) == expiring
    wall[0] = 1_000
    assert await auth.authenticate(TOKEN) is None
    assert TOKEN in auth._cache  # refused by the rule, not by a new lookup
