"""The library's public API: ``hookpost.Hookpost`` (docs/library.md).

Its resources take the REST API's own request models (``EndpointIn``, ``ApplicationPatch``
...: snake_case attributes, and plain dicts in either the REST's camelCase or snake_case),
so a field means the same thing, and is checked the same way, as over HTTP; lists page with
``limit``/``iterator`` like the REST lists, or ``iterate()`` walks them whole. They return the
domain's dataclasses (``Application``, ``Endpoint``, ``EventType``, ``Message``). Whatever else
a service offers (``hp.endpoints.rotate_secret``, ``hp.messages.send``...) is reached through
the same resource, and the inputs that predate this module (``NewEndpoint``...) still work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hookpost.api import inputs
from hookpost.api.mapping import list_out
from hookpost.api.routes.common import MAX_LIMIT, page_request
from hookpost.api.schemas import (
    ApplicationIn,
    ApplicationPatch,
    EndpointIn,
    EndpointPatch,
    EndpointUpdate,
    EventTypeIn,
    EventTypePatch,
    EventTypeUpdate,
    MessageIn,
)
from hookpost.domain.errors import Conflict, InvalidInput
from hookpost.domain.inputs import (
    AppChanges,
    EndpointChanges,
    EventTypeChanges,
    NewEndpoint,
    NewEventType,
)
from hookpost.domain.models import Application, Endpoint, EventType, Message, Page, PageRequest
from hookpost.domain.queries import MessageFilter
from hookpost.wiring import Hookpost as Runtime

T = TypeVar("T")
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class ListPage(Generic[T]):
    """One page of a list, as the REST list envelope: ``iterator`` continues after it,
    ``prev_iterator`` walks back before it; ``done`` when nothing follows."""

    data: list[T]
    iterator: str | None
    prev_iterator: str | None
    done: bool


def _model(model: type[M], value: M | Mapping[str, Any]) -> M:
    """A request model from itself or a dict (camelCase or snake_case keys)."""
    if isinstance(value, Mapping):
        return model.model_validate(dict(value))  # type: ignore[attr-defined, no-any-return]
    return value


def _request(limit: int, iterator: str | None, descending: bool) -> PageRequest:
    """As the REST lists take it: 1 to 250 items, an iterator from an earlier page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be from 1 to {MAX_LIMIT}")
    return page_request(limit, iterator, descending)


def _page(page: Page[T], key: Callable[[T], str]) -> ListPage[T]:
    out = list_out(page, lambda item: item, key)  # type: ignore[arg-type, return-value]
    return ListPage(out["data"], out["iterator"], out["prevIterator"], out["done"])


async def _walk(
    lister: Callable[[str | None], Awaitable[ListPage[T]]],
) -> AsyncIterator[T]:
    iterator: str | None = None
    while True:
        page = await lister(iterator)
        for item in page.data:
            yield item
        if page.done or page.iterator is None:
            return
        iterator = page.iterator


class _Resource:
    """Delegates what it does not define to its service."""

    _service: Any

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not the service's internals (nor _service before it is set)
            raise AttributeError(name)
        return getattr(self._service, name)


class Applications(_Resource):
    def __init__(self, hp: Runtime) -> None:
        self._service = self._apps = hp.services.apps

    async def create(
        self, app: ApplicationIn | Mapping[str, Any] | str, *args: Any, **kwargs: Any
    ) -> Application:
        """``ApplicationIn`` (or its dict); a name string with ``uid=``... as before."""
        if isinstance(app, str):
            return await self._apps.create(app, *args, **kwargs)
        body = _model(ApplicationIn, app)
        new = inputs.new_app(body)
        return await self._apps.create(new.name, new.uid, new.metadata, new.throttle_rate)

    async def get(self, app: str) -> Application:
        """By id or uid."""
        return await self._apps.get(app)

    async def get_or_create(self, app: ApplicationIn | Mapping[str, Any]) -> Application:
        """The application with ``app.uid``, created from ``app`` if there is none."""
        body = _model(ApplicationIn, app)
        return await self._apps.get_or_create(
            body.uid, body.name, dict(body.metadata), body.throttle_rate
        )

    async def update(self, app: str, body: ApplicationIn | Mapping[str, Any]) -> Application:
        """PUT: replace it, or create it with ``app`` as its uid."""
        updated, _ = await self._apps.upsert(app, inputs.new_app(_model(ApplicationIn, body)))
        return updated

    async def patch(
        self, app: str, changes: ApplicationPatch | AppChanges | Mapping[str, Any]
    ) -> Application:
        if not isinstance(changes, AppChanges):
            changes = inputs.app_changes(_model(ApplicationPatch, changes))
        return await self._apps.patch(app, changes)

    async def delete(self, app: str) -> None:
        await self._apps.delete(app)

    async def list(
        self, *, limit: int = 50, iterator: str | None = None, descending: bool = False
    ) -> ListPage[Application]:
        page = await self._apps.list(_request(limit, iterator, descending))
        return _page(page, lambda a: a.id)

    def iterate(self, *, page_size: int = MAX_LIMIT) -> AsyncIterator[Application]:
        return _walk(lambda it: self.list(limit=page_size, iterator=it))


class Endpoints(_Resource):
    """``app``: an application's id or uid; ``endpoint``: an endpoint's id or uid."""

    def __init__(self, hp: Runtime) -> None:
        self._service = self._endpoints = hp.services.endpoints
        self._resolve = hp.services.apps.resolve

    async def create(
        self, app: str, endpoint: EndpointIn | NewEndpoint | Mapping[str, Any]
    ) -> Endpoint:
        if not isinstance(endpoint, NewEndpoint):
            body = _model(EndpointIn, endpoint)
            endpoint = inputs.new_endpoint(body, dict(body.headers or {}), body.secret)
        return await self._endpoints.create(await self._resolve(app), endpoint)

    async def get(self, app: str, endpoint: str) -> Endpoint:
        return await self._endpoints.get(await self._resolve(app), endpoint)

    async def update(
        self, app: str, endpoint: str, body: EndpointUpdate | Mapping[str, Any]
    ) -> Endpoint:
        """PUT: replace it, or create it with ``endpoint`` as its uid."""
        new = inputs.new_endpoint(_model(EndpointUpdate, body))
        updated, _ = await self._endpoints.upsert(await self._resolve(app), endpoint, new)
        return updated

    async def patch(
        self, app: str, endpoint: str, changes: EndpointPatch | EndpointChanges | Mapping[str, Any]
    ) -> Endpoint:
        if not isinstance(changes, EndpointChanges):
            changes = inputs.endpoint_changes(_model(EndpointPatch, changes))
        return await self._endpoints.patch(await self._resolve(app), endpoint, changes)

    async def delete(self, app: str, endpoint: str) -> None:
        await self._endpoints.delete(await self._resolve(app), endpoint)

    async def get_secret(self, app: str, endpoint: str) -> str:
        """The signing secret (``whsec_...``) receivers verify with."""
        return await self._endpoints.get_secret(await self._resolve(app), endpoint)

    async def list(
        self, app: str, *, limit: int = 50, iterator: str | None = None, descending: bool = False
    ) -> ListPage[Endpoint]:
        page = await self._endpoints.list(
            await self._resolve(app), _request(limit, iterator, descending)
        )
        return _page(page, lambda e: e.id)

    def iterate(self, app: str, *, page_size: int = MAX_LIMIT) -> AsyncIterator[Endpoint]:
        return _walk(lambda it: self.list(app, limit=page_size, iterator=it))


class EventTypes(_Resource):
    def __init__(self, hp: Runtime) -> None:
        self._service = self._event_types = hp.services.event_types

    async def create(self, event_type: EventTypeIn | NewEventType | Mapping[str, Any]) -> EventType:
        if not isinstance(event_type, NewEventType):
            body = _model(EventTypeIn, event_type)
            event_type = inputs.new_event_type(body.name, body)
        return await self._event_types.create(event_type)

    async def get(self, name: str) -> EventType:
        return await self._event_types.get(name)

    async def update(self, name: str, body: EventTypeUpdate | Mapping[str, Any]) -> EventType:
        """PUT: replace it, or create it."""
        new = inputs.new_event_type(name, _model(EventTypeUpdate, body))
        updated, _ = await self._event_types.upsert(new)
        return updated

    async def patch(
        self, name: str, changes: EventTypePatch | EventTypeChanges | Mapping[str, Any]
    ) -> EventType:
        if not isinstance(changes, EventTypeChanges):
            changes = inputs.event_type_changes(_model(EventTypePatch, changes))
        return await self._event_types.patch(name, changes)

    async def list(
        self,
        *,
        limit: int = 50,
        iterator: str | None = None,
        descending: bool = False,
        include_archived: bool = False,
    ) -> ListPage[EventType]:
        page = await self._event_types.list(_request(limit, iterator, descending), include_archived)
        return _page(page, lambda e: e.name)

    def iterate(
        self, *, page_size: int = MAX_LIMIT, include_archived: bool = False
    ) -> AsyncIterator[EventType]:
        return _walk(
            lambda it: self.list(limit=page_size, iterator=it, include_archived=include_archived)
        )


class Messages(_Resource):
    """``send(app_id, event_type, payload, ...)`` (the service's) is still here as well."""

    def __init__(self, hp: Runtime) -> None:
        self._service = self._messages = hp.services.messages
        self._resolve = hp.services.apps.resolve

    async def create(self, app: str, message: MessageIn | Mapping[str, Any]) -> Message:
        """Send a message (POST /msg); a repeated ``event_id`` is a ``Conflict``, as the 409
        of the REST API. ``message.application`` is not supported here (create it first)."""
        body = _model(MessageIn, message)
        if body.application is not None:
            raise ValueError("application: create the application first (apps.get_or_create)")
        created = await self._messages.send_to_app_id(
            await self._resolve(app),
            body.event_type,
            body.payload,
            event_id=body.event_id,
            channels=body.channels or None,
            retention_days=body.payload_retention_period,
            retention_hours=body.payload_retention_hours,
        )
        if not created.created:
            raise Conflict(f"a message with eventId {body.event_id!r} exists: {created.message.id}")
        return created.message

    async def get(self, app: str, message: str) -> Message:
        return await self._messages.get(await self._resolve(app), message)

    async def list(
        self,
        app: str,
        *,
        limit: int = 50,
        iterator: str | None = None,
        event_types: Collection[str] | None = None,
        channel: str | None = None,
        with_content: bool = True,
    ) -> ListPage[Message]:
        """Newest first, as the REST list."""
        page = await self._messages.list(
            await self._resolve(app),
            _request(limit, iterator, True),
            MessageFilter(event_types=event_types, channel=channel),
            with_content,
        )
        return _page(page, lambda m: m.id)

    def iterate(
        self, app: str, *, page_size: int = MAX_LIMIT, **filters: Any
    ) -> AsyncIterator[Message]:
        return _walk(lambda it: self.list(app, limit=page_size, iterator=it, **filters))


class Hookpost(Runtime):
    """The runtime (``hookpost.wiring.Hookpost``: its store, services and worker) with the
    typed resources above. ``Hookpost.open(database_url, worker=False, **settings)``: any
    ``hookpost.settings.Settings`` field may be given by name (``allow_subnets=``...)."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._resources = (Applications(self), Endpoints(self), EventTypes(self), Messages(self))

    @property
    def apps(self) -> Applications:  # type: ignore[override]
        return self._resources[0]

    @property
    def endpoints(self) -> Endpoints:  # type: ignore[override]
        return self._resources[1]

    @property
    def event_types(self) -> EventTypes:  # type: ignore[override]
        return self._resources[2]

    @property
    def messages(self) -> Messages:  # type: ignore[override]
        return self._resources[3]


__all__ = [
    "Applications",
    "Endpoints",
    "EventTypes",
    "Hookpost",
    "ListPage",
    "Messages",
]
