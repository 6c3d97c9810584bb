"""Applications: the tenants."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from hookpost.domain import ids
from hookpost.domain.errors import Conflict, NotFound
from hookpost.domain.inputs import UNSET, AppChanges, NewApp, Unset
from hookpost.domain.models import Application, Page, PageRequest
from hookpost.domain.operational import OPERATIONAL_APP_ID
from hookpost.services.common import Clock, filtered, now_ms
from hookpost.store.base import Store

APP_CACHE_TTL_S = 2.0


def _app_id(app: Application) -> str:
    return app.id


class AppResolver:
    """Application id or uid -> the application's id, cached for ``ttl_s`` seconds.

    An id always resolves to itself until the application is deleted (and then writes that
    name it fail with NotFound in the store), so id entries cannot go wrong. A uid can move
    to another application; entries are dropped whenever this process changes an
    application, and another process's change is seen within ``ttl_s``.
    """

    def __init__(
        self,
        get_app: Callable[[str], Awaitable[Application]],
        ttl_s: float = APP_CACHE_TTL_S,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._get_app = get_app
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    async def resolve(self, app_id_or_uid: str) -> str:
        now = self._clock()
        hit = self._cache.get(app_id_or_uid)
        if hit is not None and hit[1] > now:
            return hit[0]
        app = await self._get_app(app_id_or_uid)  # NotFound propagates
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[app_id_or_uid] = (app.id, now + self._ttl)
        return app.id

    def invalidate(self) -> None:
        self._cache.clear()


class AppService:
    """The other services take an application's id: ``resolve`` turns an id or uid into it."""

    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock
        self._ids = AppResolver(self._get)
        # The application's id for an id or uid (NotFound if there is none), cached: see
        # AppResolver. The resolver's own method: POST /msg resolves on every request.
        self.resolve: Callable[[str], Awaitable[str]] = self._ids.resolve

    async def _get(self, app_id_or_uid: str) -> Application:
        """The store's application, but the operational one (hookpost's own, whose endpoints
        the /operational-webhook routes manage) is no client's: NotFound."""
        app = await self._store.get_app(app_id_or_uid)
        if app.id == OPERATIONAL_APP_ID:
            raise NotFound("application", app_id_or_uid)
        return app

    async def create(
        self,
        name: str,
        uid: str | None = None,
        metadata: dict[str, str] | None = None,
        throttle_rate: int | None = None,
    ) -> Application:
        ids.check_uid(ids.APP, uid)
        now = self._clock()
        app = Application(
            id=ids.new_id(ids.APP, now),
            name=name,
            uid=uid,
            metadata=metadata or {},
            throttle_rate=throttle_rate,
            created_at=now,
            updated_at=now,
        )
        return await self._store.create_app(app)

    async def get(self, app_id_or_uid: str) -> Application:
        return await self._get(app_id_or_uid)

    async def get_or_create(
        self,
        uid: str | None,
        name: str,
        metadata: dict[str, str] | None = None,
        throttle_rate: int | None = None,
    ) -> Application:
        """The application with this uid (or id), created if there is none."""
        if uid is not None:
            try:
                return await self._get(uid)
            except NotFound:
                pass
        try:
            return await self.create(name, uid, metadata, throttle_rate)
        except Conflict:
            if uid is None:
                raise
            return await self._get(uid)  # created concurrently by another request

    async def list(self, page: PageRequest) -> Page[Application]:
        listed = await self._store.list_apps(page)
        if all(a.id != OPERATIONAL_APP_ID for a in listed.items):
            return listed
        return filtered(listed, lambda a: a.id != OPERATIONAL_APP_ID, _app_id)

    async def upsert(
        self, app_id_or_uid: str, app: NewApp, *, app_id: str | Unset | None = UNSET
    ) -> tuple[Application, bool]:
        """PUT: replace the app, or create it (with ``app_id_or_uid`` as its uid) when absent.
        ``app_id``: what the caller already resolved ``app_id_or_uid`` to, None if to nothing
        (the API's access check did: it is not resolved again)."""
        current = None
        lookup = app_id_or_uid if app_id is UNSET else app_id
        if lookup is not None:
            with contextlib.suppress(NotFound):
                current = await self._get(lookup)
        if current is None:
            uid = app.uid or app_id_or_uid
            created = await self.create(app.name, uid, app.metadata, app.throttle_rate)
            self._ids.invalidate()  # the uid may have been cached for another application
            return created, True
        return await self._update(current, AppChanges.replacing(app)), False

    async def patch(self, app_id_or_uid: str, changes: AppChanges) -> Application:
        return await self._update(await self._get(app_id_or_uid), changes)

    async def _update(self, current: Application, changes: AppChanges) -> Application:
        if changes.uid is not UNSET and changes.uid != current.uid:
            ids.check_uid(ids.APP, changes.uid)
        app = replace(current, **changes.given(), updated_at=self._clock())
        updated = await self._store.update_app(app)
        self._ids.invalidate()  # its uid may have changed
        return updated

    async def delete(self, app_id_or_uid: str) -> None:
        """Hidden at once; its rows are deleted in batches before this returns."""
        app = await self._get(app_id_or_uid)
        try:
            await self._store.delete_app(app.id)
        finally:
            self._ids.invalidate()  # hidden even if the batches that follow were interrupted

    async def purge_deleted(self) -> int:
        """Finish the deletions a crash interrupted: how many applications and endpoints."""
        return await self._store.purge_deleted()
