"""API tokens: random, shown once, stored only as SHA-256 hashes."""

from __future__ import annotations

import contextlib
import hashlib
import secrets

from hookpost.domain import ids
from hookpost.domain.errors import Conflict
from hookpost.domain.models import ApiToken
from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Store

TOKEN_PREFIX = "hpk_"


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock

    async def create(
        self, app_id: str | None = None, name: str = "", ttl_s: int | None = None
    ) -> tuple[str, ApiToken]:
        """A new token: (the plaintext, shown once; the stored record)."""
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        record = ApiToken(
            id=ids.new_id(ids.TOKEN, now),
            token_hash=hash_token(plaintext),
            app_id=app_id,
            name=name,
            created_at=now,
            expires_at=None if ttl_s is None else now + ttl_s * 1000,
        )
        await self._store.create_token(record)
        return plaintext, record

    async def revoke(self, token: str) -> bool:
        """Delete the token's record: every process refuses it once its auth cache entry
        (``api.auth.CACHE_TTL_S``) has expired. False if it was not known."""
        return await self._store.delete_token(hash_token(token))

    async def authenticate(self, token: str) -> ApiToken | None:
        """The token's record, if it is known and has not expired."""
        record = await self.lookup(hash_token(token))
        return record if record is not None and self.usable(record) else None

    async def lookup(self, token_hash: str) -> ApiToken | None:
        """The record stored under a token's hash, expired or not (for a caller that caches
        records: it checks ``usable`` on each use)."""
        return await self._store.find_token(token_hash)

    def usable(self, record: ApiToken) -> bool:
        """Not expired now. Runs on every authenticated request: most tokens never expire,
        and those cost no clock read."""
        return record.expires_at is None or not record.expired(self._clock())

    async def admin_exists(self) -> bool:
        return await self._store.count_admin_tokens() > 0

    async def ensure_admin(self, configured: str) -> tuple[str, str | None]:
        """Make sure an admin token exists. Returns (where it came from, plaintext to print once).

        A configured token (``HOOKPOST_ADMIN_TOKEN``) is registered by its hash; otherwise an
        empty database gets a generated one, printed once and never again.
        """
        if configured:
            if await self._store.find_token(hash_token(configured)) is None:
                now = self._clock()
                token = ApiToken(
                    ids.new_id(ids.TOKEN, now),
                    hash_token(configured),
                    None,
                    "HOOKPOST_ADMIN_TOKEN",
                    now,
                )
                with contextlib.suppress(Conflict):  # another process registered it first
                    await self._store.create_token(token)
            return "HOOKPOST_ADMIN_TOKEN", None
        if not await self.admin_exists():
            plaintext, _ = await self.create(name="initial admin token")
            return "generated", plaintext
        return "database", None
