"""The event-type catalog as the strict checks read it: cached, so that checking a message
costs no database round trip (docs/decisions/0026-strict-catalog-and-provenance.md).

Entries are dropped whenever this process writes an event type (``EventTypeService`` calls
``invalidate``); another process's write is seen within ``ttl_s`` (2 s, as the application
cache in ``services.apps``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.protocols import Validator

from hookpost.domain.catalog import (
    FieldWarning,
    compile_schemas,
    event_type_problem,
    payload_mismatch,
    subscription_problems,
)
from hookpost.domain.errors import InvalidInput, NotFound
from hookpost.domain.models import EventType, PageRequest
from hookpost.store.base import Store

CATALOG_CACHE_TTL_S = 2.0
PAGE = 250  # event types per read when the whole catalog is loaded


@dataclass(slots=True)
class _Entry:
    event_type: EventType | None  # None: not in the catalog
    expires: float
    validators: list[tuple[str, Validator]] | None = None  # compiled on first use


class CatalogCache:
    """Event types by name (for messages) and the whole catalog (for subscriptions), each
    read again at most every ``ttl_s`` seconds. Compiled schema validators are kept per event
    type until its ``updated_at`` changes."""

    def __init__(
        self,
        store: Store,
        ttl_s: float = CATALOG_CACHE_TTL_S,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._all: tuple[dict[str, EventType], float] | None = None
        # Bumped by invalidate: a read that started before a write in this process is used
        # by its caller, but not cached (it may predate the write).
        self._generation = 0

    def invalidate(self) -> None:
        self._entries.clear()
        self._all = None
        self._generation += 1

    async def _entry(self, name: str) -> _Entry:
        now = self._clock()
        entry = self._entries.get(name)
        if entry is not None and entry.expires > now:
            return entry
        generation = self._generation
        try:
            found: EventType | None = await self._store.get_event_type(name)
        except NotFound:
            found = None
        fresh = _Entry(found, now + self._ttl)
        if entry is not None and _same(entry.event_type, found):
            fresh.validators = entry.validators  # unchanged: keep what was compiled
        if generation != self._generation:
            return fresh
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[name] = fresh
        return fresh

    async def check_message(self, event_type: str, payload: Any) -> None:
        """InvalidInput naming ``eventType`` for a type the catalog lacks or archived, or
        naming the payload's failing JSON path when the type's JSON Schemas reject it."""
        entry = await self._entry(event_type)
        problem = event_type_problem(event_type, entry.event_type)
        if problem is not None:
            raise InvalidInput("eventType", f"{problem} (HOOKPOST_STRICT_EVENT_TYPES is on)")
        assert entry.event_type is not None
        if entry.validators is None:
            entry.validators = compile_schemas(entry.event_type.schemas)
        payload_mismatch(entry.validators, payload)

    async def catalog(self) -> dict[str, EventType]:
        """Every event type, archived ones included, by name."""
        now = self._clock()
        if self._all is not None and self._all[1] > now:
            return self._all[0]
        generation = self._generation
        found: dict[str, EventType] = {}
        page = PageRequest(limit=PAGE)
        while True:
            got = await self._store.list_event_types(page, True)
            found.update((et.name, et) for et in got.items)
            if got.done or not got.items:
                break
            page = PageRequest(limit=PAGE, iterator=got.items[-1].name)
        if generation == self._generation:
            self._all = (found, now + self._ttl)
        return found

    async def subscription_warnings(self, event_types: Sequence[str] | None) -> list[FieldWarning]:
        """A warning on ``eventTypes`` for each entry that names nothing the catalog offers."""
        if not event_types:
            return []
        problems = subscription_problems(event_types, await self.catalog())
        return [FieldWarning("eventTypes", f"{why}: it receives nothing") for _, why in problems]

    async def check_subscription(self, event_types: Sequence[str] | None) -> None:
        """InvalidInput naming ``eventTypes`` and the entry's index for the first entry the
        catalog does not allow."""
        if not event_types:
            return
        problems = subscription_problems(event_types, await self.catalog())
        if problems:
            i, why = problems[0]
            raise InvalidInput("eventTypes", f"{why} (HOOKPOST_STRICT_EVENT_TYPES is on)", (i,))


def _same(a: EventType | None, b: EventType | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.updated_at == b.updated_at and a.schemas == b.schemas
