"""The event-type catalog."""

from __future__ import annotations

from dataclasses import replace

from hookpost.domain.catalog import check_schemas
from hookpost.domain.errors import Conflict, NotFound
from hookpost.domain.inputs import UNSET, EventTypeChanges, NewEventType
from hookpost.domain.limits import Limits
from hookpost.domain.models import EventType, Page, PageRequest
from hookpost.domain.retry import check_schedule
from hookpost.services.catalog import CatalogCache
from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Store

Schedule = list[int] | None  # (``list`` is a method name below)


class EventTypeService:
    def __init__(
        self,
        store: Store,
        clock: Clock = now_ms,
        limits: Limits = Limits(),
        catalog: CatalogCache | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._max = limits.max_event_types  # LimitExceeded beyond it
        self._catalog = catalog  # the strict checks' cache: dropped on every write here

    def _written(self) -> None:
        if self._catalog is not None:
            self._catalog.invalidate()

    async def create(self, event_type: NewEventType) -> EventType:
        """A new event type, or an archived one brought back (Conflict if it exists)."""
        check_schemas(event_type.schemas)
        now = self._clock()
        try:
            created = await self._store.create_event_type(self._new(event_type, now), self._max)
            self._written()
            return created
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
        check_schemas(event_type.schemas)
        try:
            current = await self._store.get_event_type(event_type.name)
        except NotFound:
            new = self._new(event_type, self._clock())
            created = await self._store.create_event_type(new, self._max)
            self._written()
            return created, True
        return await self._update(current, EventTypeChanges.replacing(event_type)), False

    async def patch(self, name: str, changes: EventTypeChanges) -> EventType:
        return await self._update(await self._store.get_event_type(name), changes)

    async def _update(self, current: EventType, changes: EventTypeChanges) -> EventType:
        if changes.schemas is not UNSET:
            check_schemas(changes.schemas)
        updated = replace(current, **changes.given(), updated_at=self._clock())
        written = await self._store.update_event_type(updated)
        self._written()
        return written

    async def get_retry_schedule(self, name: str) -> Schedule:
        return (await self._store.get_event_type(name)).retry_schedule

    async def set_retry_schedule(self, name: str, schedule: Schedule) -> Schedule:
        """Svix's per-event-type schedule (None clears it); an endpoint's policy comes first."""
        checked = None if schedule is None else list(check_schedule(schedule, "retrySchedule"))
        current = await self._store.get_event_type(name)
        updated = replace(current, retry_schedule=checked, updated_at=self._clock())
        await self._store.update_event_type(updated)
        self._written()
        return checked

    async def delete(self, name: str, expunge: bool = False) -> None:
        """Archive by default (messages may still name it); ``expunge`` deletes the row."""
        if expunge:
            await self._store.delete_event_type(name)
            self._written()
        else:
            await self.patch(name, EventTypeChanges(archived=True))
