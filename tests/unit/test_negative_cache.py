"""Failed token lookups are cached: a flood of bogus tokens costs at most one store read per
distinct token per ``negative_ttl_s``, concurrent lookups of one token share one read, the
cache is bounded, and a token this process creates works at once."""

from __future__ import annotations

import asyncio

from hookpost.api.auth import Authenticator
from hookpost.domain.models import ApiToken
from hookpost.services.tokens import TokenService, hash_token

BOGUS = "hpk_bogus"


class CountingStore:
    """The token part of a store, counting reads; ``gate`` holds reads until it is set."""

    def __init__(self) -> None:
        self.tokens: dict[str, ApiToken] = {}
        self.reads: list[str] = []
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()  # set by the first read

    async def find_token(self, token_hash: str) -> ApiToken | None:
        self.reads.append(token_hash)
        self.reading.set()
        found = self.tokens.get(token_hash)  # what the read sees: the store as it is now
        if self.gate is not None:
            await self.gate.wait()
        return found

    async def create_token(self, token: ApiToken) -> None:
        self.tokens[token.token_hash] = token

    async def replace_env_token(self, token: ApiToken) -> int:
        self.tokens.setdefault(token.token_hash, token)
        return 0


def authenticator(
    store: CountingStore, now: list[float], max_entries: int = 10_000
) -> tuple[Authenticator, TokenService]:
    service = TokenService(store)  # type: ignore[arg-type]
    auth = Authenticator(
        service, ttl_s=5.0, negative_ttl_s=2.0, max_entries=max_entries, clock=lambda: now[0]
    )
    return auth, service


async def test_a_bogus_token_is_read_once_per_negative_ttl() -> None:
    store, now = CountingStore(), [100.0]
    auth, _ = authenticator(store, now)
    for _ in range(50):
        assert await auth.authenticate(BOGUS) is None
    assert store.reads == [hash_token(BOGUS)]
    now[0] += 1.9
    assert await auth.authenticate(BOGUS) is None
    assert len(store.reads) == 1
    now[0] += 0.2  # past the negative lifetime: the store is asked again
    assert await auth.authenticate(BOGUS) is None
    assert len(store.reads) == 2
    # Each distinct token costs its own read.
    for n in range(10):
        assert await auth.authenticate(f"hpk_bogus-{n}") is None
        assert await auth.authenticate(f"hpk_bogus-{n}") is None
    assert len(store.reads) == 12


async def test_concurrent_lookups_of_one_token_share_one_read() -> None:
    store, now = CountingStore(), [100.0]
    store.gate = asyncio.Event()
    auth, _ = authenticator(store, now)
    lookups = [asyncio.create_task(auth.authenticate(BOGUS)) for _ in range(20)]
    await store.reading.wait()  # the others were started before: they joined this read
    store.gate.set()
    assert await asyncio.gather(*lookups) == [None] * 20
    assert len(store.reads) == 1


async def test_a_cancelled_caller_does_not_cancel_the_others_read() -> None:
    store, now = CountingStore(), [100.0]
    record = ApiToken("tok_1", hash_token("hpk_real"), None, "admin", 0)
    store.tokens[record.token_hash] = record
    store.gate = asyncio.Event()
    auth, _ = authenticator(store, now)
    first = asyncio.create_task(auth.authenticate("hpk_real"))
    second = asyncio.create_task(auth.authenticate("hpk_real"))
    await store.reading.wait()
    first.cancel()
    store.gate.set()
    assert await second == record
    assert len(store.reads) == 1


async def test_the_negative_cache_is_bounded() -> None:
    store, now = CountingStore(), [100.0]
    auth, _ = authenticator(store, now, max_entries=100)
    for n in range(1_000):
        await auth.authenticate(f"hpk_flood-{n}")
    assert len(auth._unknown) <= 100


async def test_a_token_created_in_this_process_works_at_once() -> None:
    """HOOKPOST_ADMIN_TOKEN's value may be tried before this process registers it (a client
    that switched first): the registration forgets that it was unknown."""
    store, now = CountingStore(), [100.0]
    auth, service = authenticator(store, now)
    assert await auth.authenticate("the-new-admin-token") is None
    await service.ensure_admin("the-new-admin-token")
    found = await auth.authenticate("the-new-admin-token")
    assert found is not None and found.app_id is None
    # And one minted by the service (any plaintext it returns is forgotten as unknown).
    plaintext, record = await service.create(name="minted")
    assert await auth.authenticate(plaintext) == record


async def test_a_read_begun_before_a_creation_does_not_cache_unknown() -> None:
    store, now = CountingStore(), [100.0]
    gate = store.gate = asyncio.Event()
    auth, service = authenticator(store, now)
    early = asyncio.create_task(auth.authenticate("the-new-admin-token"))
    await store.reading.wait()
    store.gate = None
    await service.ensure_admin("the-new-admin-token")  # lands while the read is in flight
    assert await auth.authenticate("the-new-admin-token") is not None  # a read of its own
    gate.set()
    assert await early is None  # it read the store before the token was there
    assert await auth.authenticate("the-new-admin-token") is not None
    assert len(store.reads) == 2
