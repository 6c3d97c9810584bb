"""The event-type catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookpost.domain.errors import NotFound
from hookpost.domain.models import EventType, Page, PageRequest
from hookpost.services.common import Clock, now_ms, with_changes
from hookpost.store.base import Store


class EventTypeService:
    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock

    async def create(self, name: str, fields: Mapping[str, Any]) -> EventType:
        now = self._clock()
        event_type = EventType(name=name, created_at=now, updated_at=now, **fields)
        return await self._store.create_event_type(event_type)

    async def get(self, name: str) -> EventType:
        return await self._store.get_event_type(name)

    async def list(self, page: PageRequest, include_archived: bool = False) -> Page[EventType]:
        return await self._store.list_event_types(page, include_archived)

    async def upsert(self, name: str, fields: Mapping[str, Any]) -> tuple[EventType, bool]:
        try:
            current = await self._store.get_event_type(name)
        except NotFound:
            return await self.create(name, fields), True
        full = {
            "schemas": None,
            "archived": False,
            "deprecated": False,
            "feature_flag": None,
            **fields,
        }
        updated = with_changes(current, full, updated_at=self._clock())
        return await self._store.update_event_type(updated), False

    async def patch(self, name: str, changes: Mapping[str, Any]) -> EventType:
        current = await self._store.get_event_type(name)
        return await self._store.update_event_type(
            with_changes(current, changes, updated_at=self._clock())
        )

    async def delete(self, name: str, expunge: bool = False) -> None:
        """Archive by default (messages may still name it); ``expunge`` deletes the row."""
        if expunge:
            await self._store.delete_event_type(name)
        else:
            await self.patch(name, {"archived": True})
