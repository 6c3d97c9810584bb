"""API tokens: random, shown once, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from hookpost.domain import ids
from hookpost.domain.errors import InvalidInput, NotFound
from hookpost.domain.models import ApiToken, Page, PageRequest
from hookpost.domain.permissions import ENV_ADMIN_TOKEN_NAME, token_hint
from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Store

TOKEN_PREFIX = "hpk_"
ENV_SOURCE = "HOOKPOST_ADMIN_TOKEN"


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock
        self._on_created: list[Callable[[str], None]] = []

    def on_created(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(plaintext)`` whenever this process creates or registers a token
        (the API's authenticator forgets that it was unknown)."""
        self._on_created.append(callback)

    def _created(self, plaintext: str) -> None:
        for callback in self._on_created:
            callback(plaintext)

    async def create(
        self, app_id: str | None = None, name: str = "", ttl_s: int | None = None
    ) -> tuple[str, ApiToken]:
        """A new token: (the plaintext, shown once; the stored record)."""
        if name == ENV_ADMIN_TOKEN_NAME:
            raise InvalidInput("name", f"{name!r} is reserved for the token set by {ENV_SOURCE}")
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        record = ApiToken(
            id=ids.new_id(ids.TOKEN, now),
            token_hash=hash_token(plaintext),
            app_id=app_id,
            name=name,
            created_at=now,
            expires_at=None if ttl_s is None else now + ttl_s * 1000,
            hint=token_hint(plaintext),
        )
        await self._store.create_token(record)
        self._created(plaintext)
        return plaintext, record

    async def list(self, page: PageRequest, app_id: str | None = None) -> Page[ApiToken]:
        """Every token's record (never a plaintext: none is stored), or application
        ``app_id``'s."""
        return await self._store.list_tokens(page, app_id)

    async def revoke(self, token: str) -> bool:
        """Delete the token's record: every process refuses it once its auth cache entry
        (``api.auth.CACHE_TTL_S``) has expired. False if it was not known."""
        return await self._store.delete_token(hash_token(token))

    async def revoke_id(self, token_id: str) -> ApiToken:
        """Delete the record with this id, as ``revoke`` does; the record it was."""
        record = await self._store.delete_token_by_id(token_id)
        if record is None:
            raise NotFound("token", token_id)
        return record

    async def expire_app_tokens(self, app_id: str) -> int:
        """Revoke every token scoped to the application (app-portal tokens included): how
        many."""
        revoked = 0
        while True:
            page = await self._store.list_tokens(PageRequest(limit=250), app_id)
            for record in page.items:
                revoked += await self._store.delete_token_by_id(record.id) is not None
            if page.done or not page.items:
                return revoked

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

        A configured token (``HOOKPOST_ADMIN_TOKEN``) is registered by its hash, and replaces
        the one an earlier value registered (revoked: changing the variable and restarting is
        how a leaked one is retired). Otherwise an empty database gets a generated one, printed
        once and never again.
        """
        if configured:
            now = self._clock()
            token = ApiToken(
                ids.new_id(ids.TOKEN, now),
                hash_token(configured),
                None,
                ENV_ADMIN_TOKEN_NAME,
                now,
                hint=token_hint(configured),
            )
            replaced = await self._store.replace_env_token(token)
            self._created(configured)
            if replaced:
                return f"{ENV_SOURCE} (the previous value's token is revoked)", None
            return ENV_SOURCE, None
        if not await self.admin_exists():
            plaintext, _ = await self.create(name="initial admin token")
            return "generated", plaintext
        return "database", None
