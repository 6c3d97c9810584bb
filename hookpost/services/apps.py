"""Applications: the tenants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookpost.domain import ids
from hookpost.domain.errors import NotFound
from hookpost.domain.models import Application, Page, PageRequest
from hookpost.services.common import Clock, now_ms, with_changes
from hookpost.store.base import Store


class AppService:
    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock

    async def create(
        self,
        name: str,
        uid: str | None = None,
        metadata: dict[str, str] | None = None,
        throttle_rate: int | None = None,
    ) -> Application:
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
        return await self._store.get_app(app_id_or_uid)

    async def get_or_create(
        self,
        uid: str | None,
        name: str,
        metadata: dict[str, str] | None = None,
        throttle_rate: int | None = None,
    ) -> Application:
        if uid is not None:
            try:
                return await self._store.get_app(uid)
            except NotFound:
                pass
        return await self.create(name, uid, metadata, throttle_rate)

    async def list(self, page: PageRequest) -> Page[Application]:
        return await self._store.list_apps(page)

    async def upsert(
        self, app_id_or_uid: str, fields: Mapping[str, Any]
    ) -> tuple[Application, bool]:
        """PUT: replace the app, or create it (with ``app_id_or_uid`` as its uid) when absent."""
        try:
            current = await self._store.get_app(app_id_or_uid)
        except NotFound:
            uid = fields.get("uid") or app_id_or_uid
            created = await self.create(
                fields["name"], uid, fields.get("metadata"), fields.get("throttle_rate")
            )
            return created, True
        full = {"uid": None, "metadata": {}, "throttle_rate": None, **fields}
        return await self._update(current, full), False

    async def patch(self, app_id_or_uid: str, changes: Mapping[str, Any]) -> Application:
        return await self._update(await self._store.get_app(app_id_or_uid), changes)

    async def _update(self, current: Application, changes: Mapping[str, Any]) -> Application:
        app = with_changes(current, changes, updated_at=self._clock())
        return await self._store.update_app(app)

    async def delete(self, app_id_or_uid: str) -> None:
        app = await self._store.get_app(app_id_or_uid)
        await self._store.delete_app(app.id)
