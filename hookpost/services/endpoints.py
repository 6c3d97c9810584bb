"""Endpoints: subscriber URLs with their filters, secrets, headers and health."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hookpost.domain import ids
from hookpost.domain.errors import Conflict, InvalidInput, NotFound, StaleWrite
from hookpost.domain.models import Endpoint, EndpointStats, Page, PageRequest, SigningKey
from hookpost.domain.signing import generate_secret, normalize_secret
from hookpost.services.common import Clock, now_ms, with_changes
from hookpost.store.base import Store

DEFAULT_GRACE_S = 24 * 3600
MAX_GRACE_S = 7 * 24 * 3600
MAX_OLD_KEYS = 10
WRITE_ATTEMPTS = 5  # read-modify-write rounds before a change gives up (409)

UrlCheck = Callable[[str], None]  # raises InvalidInput("url", ...) for a URL we must refuse
# The new values of some fields, computed from the endpoint as it is now and the time.
Change = Callable[[Endpoint, int], Mapping[str, Any]]


def _no_check(url: str) -> None:
    return None


class EndpointService:
    def __init__(self, store: Store, clock: Clock = now_ms, url_check: UrlCheck = _no_check):
        self._store = store
        self._clock = clock
        self._url_check = url_check

    async def create(self, app_id: str, fields: Mapping[str, Any]) -> Endpoint:
        app = await self._store.get_app(app_id)
        fields = dict(fields)
        secret = fields.pop("secret", None)
        key = normalize_secret(secret) if secret else generate_secret()
        self._url_check(fields["url"])
        now = self._clock()
        endpoint = Endpoint(
            id=ids.new_id(ids.ENDPOINT, now),
            app_id=app.id,
            keys=[SigningKey(key)],
            created_at=now,
            updated_at=now,
            **fields,
        )
        return await self._store.create_endpoint(endpoint)

    async def get(self, app_id: str, endpoint_id: str) -> Endpoint:
        app = await self._store.get_app(app_id)
        return await self._store.get_endpoint(app.id, endpoint_id)

    async def list(self, app_id: str, page: PageRequest) -> Page[Endpoint]:
        app = await self._store.get_app(app_id)
        return await self._store.list_endpoints(app.id, page)

    async def upsert(
        self, app_id: str, endpoint_id: str, fields: Mapping[str, Any]
    ) -> tuple[Endpoint, bool]:
        """PUT: replace the endpoint's settable fields, or create it when absent."""
        try:
            current = await self.get(app_id, endpoint_id)
        except NotFound as exc:
            if exc.kind != "endpoint":
                raise
            return await self.create(app_id, {"uid": endpoint_id, **fields}), True
        full = {
            "description": "",
            "uid": None,
            "disabled": False,
            "event_types": None,
            "channels": None,
            "metadata": {},
            "throttle_rate": None,
            **fields,
        }
        return await self._update(current, full), False

    async def patch(self, app_id: str, endpoint_id: str, changes: Mapping[str, Any]) -> Endpoint:
        return await self._update(await self.get(app_id, endpoint_id), changes)

    async def _update(self, current: Endpoint, changes: Mapping[str, Any]) -> Endpoint:
        if "url" in changes:
            self._url_check(changes["url"])

        def change(now: Endpoint, _: int) -> Mapping[str, Any]:
            new = dict(changes)
            if new.get("disabled") is False and now.disabled:
                new["disabled_reason"] = None  # the store also resets the health record
            if new.get("disabled") is True and not now.disabled:
                new["disabled_reason"] = "disabled by the API"
            return new

        return await self._modify(current, change)

    async def _modify(self, current: Endpoint, change: Change) -> Endpoint:
        """Read-modify-write with optimistic concurrency. A write in between (another request,
        a secret rotation, the worker disabling the endpoint) makes the store refuse ours
        (``StaleWrite``), and the change is made again on the row as it is now, so that no
        concurrent change is silently undone."""
        for _ in range(WRITE_ATTEMPTS):
            now = self._clock()
            updated = with_changes(
                current, change(current, now), updated_at=max(now, current.updated_at + 1)
            )
            try:
                return await self._store.update_endpoint(updated, current.updated_at)
            except StaleWrite:
                current = await self._store.get_endpoint(current.app_id, current.id)
        raise Conflict("the endpoint kept changing while this request ran: try again")

    async def delete(self, app_id: str, endpoint_id: str) -> None:
        endpoint = await self.get(app_id, endpoint_id)
        await self._store.delete_endpoint(endpoint.app_id, endpoint.id)

    # -- secrets -----------------------------------------------------------------------------
    async def get_secret(self, app_id: str, endpoint_id: str) -> str:
        return (await self.get(app_id, endpoint_id)).secret

    async def rotate_secret(
        self,
        app_id: str,
        endpoint_id: str,
        key: str | None = None,
        grace_s: int = DEFAULT_GRACE_S,
    ) -> Endpoint:
        """The new key signs from now on; the old one keeps signing for ``grace_s`` so that
        receivers can switch without rejecting a single request."""
        if not 0 <= grace_s <= MAX_GRACE_S:
            raise InvalidInput("gracePeriodSeconds", f"must be between 0 and {MAX_GRACE_S}")
        new_key = normalize_secret(key, "key") if key else generate_secret()

        def rotated(endpoint: Endpoint, now: int) -> Mapping[str, Any]:
            old = [SigningKey(endpoint.keys[0].secret, now + grace_s * 1000)]
            old += [k for k in endpoint.keys[1:] if k.active(now)]
            return {"keys": [SigningKey(new_key), *old[:MAX_OLD_KEYS]]}

        return await self._modify(await self.get(app_id, endpoint_id), rotated)

    # -- headers -----------------------------------------------------------------------------
    async def get_headers(self, app_id: str, endpoint_id: str) -> dict[str, str]:
        return (await self.get(app_id, endpoint_id)).headers

    async def set_headers(
        self,
        app_id: str,
        endpoint_id: str,
        headers: Mapping[str, str],
        *,
        merge: bool,
        delete: tuple[str, ...] = (),
    ) -> Endpoint:
        lowered = {name.lower() for name in delete}

        def merged(endpoint: Endpoint, _: int) -> Mapping[str, Any]:
            kept = dict(endpoint.headers) if merge else {}
            kept = {k: v for k, v in kept.items() if k.lower() not in lowered}
            return {"headers": {**kept, **headers}}

        return await self._modify(await self.get(app_id, endpoint_id), merged)

    # -- delivery operations -----------------------------------------------------------------
    async def stats(
        self,
        app_id: str,
        endpoint_id: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> EndpointStats:
        endpoint = await self.get(app_id, endpoint_id)
        return await self._store.endpoint_stats(endpoint.app_id, endpoint.id, since_ms, until_ms)

    async def recover(
        self, app_id: str, endpoint_id: str, since_ms: int, until_ms: int | None = None
    ) -> int:
        """Queue every failed (or canceled) delivery of messages created in [since, until)."""
        endpoint = await self.get(app_id, endpoint_id)
        return await self._store.recover(
            endpoint.app_id, endpoint.id, since_ms, until_ms, self._clock()
        )
