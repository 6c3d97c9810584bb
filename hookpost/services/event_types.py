"""The event-type catalog."""

from __future__ import annotations

from dataclasses import replace

from hookpost.domain.errors import Conflict, NotFound
from hookpost.domain.inputs import EventTypeChanges, NewEventType
from hookpost.domain.limits import Limits
from hookpost.domain.models import EventType, Page, PageRequest
from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Store


class EventTypeService:
    def __init__(self, store: Store, clock: Clock = now_ms, limits: Limits = Limits()) -> None:
        self._store = store
        self._clock = clock
        self._max = limits.max_event_types  # LimitExceeded beyond it

    async def create(self, event_type: NewEventType) -> EventType:
        """A new event type, or an archived one brought back (Conflict if it exists)."""
        now = self._clock()
        try:
            return await self._store.create_event_type(self._new(event_type, now), self._max)
        except Conflict:
            current = await self._store.get_event_type(event_type.name)
            if not current.archived:
                raise Conflict(f"event type {event_type.name!r} already exists") from None
            created, _ = await self.upsert(event_type)
            return created

    @staticmethod
    def _new(event_type: NewEventType, now: int) -> EventType:
        return EventType(
            name=event_type.name,
            description=event_type.description,
            schemas=event_type.schemas,
            archived=event_type.archived,
            deprecated=event_type.deprecated,
            feature_flag=event_type.feature_flag,
            created_at=now,
            updated_at=now,
        )

    async def get(self, name: str) -> EventType:
        return await self._store.get_event_type(name)

    async def list(self, page: PageRequest, include_archived: bool = False) -> Page[EventType]:
        return await self._store.list_event_types(page, include_archived)

    async def upsert(self, event_type: NewEventType) -> tuple[EventType, bool]:
        """PUT: replace the event type, or create it when absent."""
        try:
            current = await self._store.get_event_type(event_type.name)
        except NotFound:
            created = self._new(event_type, self._clock())
            return await self._store.create_event_type(created, self._max), True
        return await self._update(current, EventTypeChanges.replacing(event_type)), False

    async def patch(self, name: str, changes: EventTypeChanges) -> EventType:
        return await self._update(await self._store.get_event_type(name), changes)

    async def _update(self, current: EventType, changes: EventTypeChanges) -> EventType:
        updated = replace(current, **changes.given(), updated_at=self._clock())
        return await self._store.update_event_type(updated)

    async def delete(self, name: str, expunge: bool = False) -> None:
        """Archive by default (messages may still name it); ``expunge`` deletes the row."""
        if expunge:
            await self._store.delete_event_type(name)
        else:
            await self.patch(name, EventTypeChanges(archived=True))
