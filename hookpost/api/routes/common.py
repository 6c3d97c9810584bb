"""Shared pieces of the route modules: the request context, paging, path and query types."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

import orjson
from fastapi import Depends, Path, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from hookpost.api.auth import (
    Authenticator,
    authenticate,
    bearer_token,
    check_app_access,
    require_admin,
)
from hookpost.api.errors import ValidationFailure, validation_item
from hookpost.api.mapping import to_ms
from hookpost.api.schemas import HttpErrorOut, HTTPValidationError
from hookpost.domain.models import ApiToken, Application, PageRequest
from hookpost.services import Services
from hookpost.settings import Settings
from hookpost.store.base import Store

ID_PATTERN = r"^[a-zA-Z0-9\-_.]+$"
MAX_ID = 256
DEFAULT_LIMIT = 50
MAX_LIMIT = 250
APP_CACHE_TTL_S = 2.0
_ID_RE = re.compile(ID_PATTERN)


class Runtime(Protocol):
    """What the API needs of ``hookpost.wiring.Hookpost`` (kept structural: the API layer
    does not import the wiring module)."""

    settings: Settings
    store: Store
    services: Services


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


@dataclass(slots=True)
class ApiState:
    """Everything the routes share, per app instance (held on ``app.state.api``)."""

    hp: Runtime
    authenticator: Authenticator
    apps: AppResolver

    @classmethod
    def build(cls, hp: Runtime) -> ApiState:
        return cls(hp, Authenticator(hp.store.find_token), AppResolver(hp.store.get_app))


@dataclass(slots=True)
class Ctx:
    """One authenticated request: the caller's token and the runtime."""

    token: ApiToken
    api: ApiState

    @property
    def services(self) -> Services:
        return self.api.hp.services

    @property
    def settings(self) -> Settings:
        return self.api.hp.settings

    @property
    def store(self) -> Store:
        return self.api.hp.store

    @property
    def is_admin(self) -> bool:
        return self.token.app_id is None

    def require_admin(self) -> None:
        require_admin(self.token)

    async def app(self, app_id: str) -> str:
        """Check that the caller may touch application ``app_id`` (an id or uid)."""
        await check_app_access(self.token, app_id, self.api.apps.resolve)
        return app_id

    async def app_id(self, app_id: str) -> str:
        """The id of application ``app_id`` (an id or uid), checking the caller's access."""
        await check_app_access(self.token, app_id, self.api.apps.resolve)
        return await self.api.apps.resolve(app_id)

    def apps_changed(self) -> None:
        self.api.apps.invalidate()


async def authenticated(api: ApiState, headers: Any) -> Ctx:
    token = await authenticate(api.authenticator, bearer_token(headers))
    return Ctx(token, api)


async def context(request: Request) -> Ctx:
    """Authenticate the request (``Authorization: Bearer <token>``) or answer 401.

    The header is read directly rather than through ``fastapi.security.HTTPBearer``: one
    dependency level less on every request. The security scheme is declared in the OpenAPI
    document by ``hookpost.api.app``.
    """
    return await authenticated(request.app.state.api, request.headers)


AuthCtx = Annotated[Ctx, Depends(context)]


# --------------------------------------------------------------------------- request bodies


def decode_json(raw: bytes) -> Any:
    """A request body as JSON, strictly: orjson refuses invalid UTF-8, lone surrogates, NaN
    and Infinity, numbers that overflow a double, and nesting over 1024 levels, all with an
    ``orjson.JSONDecodeError`` (a ``json.JSONDecodeError``). Python's ``json`` module, which
    FastAPI would use, accepts lone surrogates and NaN (which cannot be stored) and meets deep
    nesting with a RecursionError (answered 400)."""
    return orjson.loads(raw)


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Route class of every router: bodies are parsed by :func:`decode_json`, so a body that
    is not strict JSON is a 422 ``json_invalid`` located at ``["body", <offset>]``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_json_handler


# --------------------------------------------------------------------------- path parameters

AppId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
EndpointId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
MsgId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
AttemptId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
EventTypeName = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]

# --------------------------------------------------------------------------- query parameters

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Limit the number of returned items")]
ITERATOR_PATTERN = r"^-?[a-zA-Z0-9\-_.]*$"
Iterator = Annotated[
    str | None,
    Query(
        max_length=MAX_ID + 1,
        pattern=ITERATOR_PATTERN,
        description="The iterator returned from a prior invocation (a leading '-' walks back)",
    ),
]
WithContent = Annotated[
    bool, Query(description="When `true` message payloads are included in the response")
]
EventTypesQuery = Annotated[
    list[str] | None,
    Query(description="Filter by event type (repeat the parameter or separate with commas)"),
]
DateQuery = Annotated[datetime | None, Query()]


def page_request(limit: int, iterator: str | None, descending: bool) -> PageRequest:
    backwards = False
    if iterator is not None and iterator.startswith("-"):
        backwards = True
        iterator = iterator[1:]
    return PageRequest(
        limit=limit, iterator=iterator or None, backwards=backwards, descending=descending
    )


def ordering(order: str | None, default_descending: bool = False) -> bool:
    if order is None:
        return default_descending
    return order == "descending"


def event_types_filter(values: list[str] | None) -> list[str] | None:
    """``event_types`` as repeated parameters and/or comma-separated (the svix SDK's form)."""
    if not values:
        return None
    out: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if len(name) > MAX_ID or not _ID_RE.fullmatch(name):
                raise query_error("event_types", f"invalid event type name {name[:64]!r}")
            if name not in out:
                out.append(name)
    return out or None


def date_ms(value: datetime | None) -> int | None:
    """A query datetime as epoch ms; a naive one is taken as UTC (as the svix SDK sends)."""
    return None if value is None else to_ms(value)


def query_error(name: str, msg: str) -> ValidationFailure:
    """A query parameter the declarations could not check, answered as a 422."""
    return ValidationFailure([validation_item(["query", name], msg)])


# --------------------------------------------------------------------------- responses


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def empty(status: int = 204) -> Response:
    return Response(status_code=status)


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": HttpErrorOut, "description": "Unauthorized"},
    403: {"model": HttpErrorOut, "description": "Forbidden"},
    404: {"model": HttpErrorOut, "description": "Not Found"},
    409: {"model": HttpErrorOut, "description": "Conflict"},
    422: {"model": HTTPValidationError, "description": "Validation Error"},
    429: {"model": HttpErrorOut, "description": "Rate limited (see `Retry-After`)"},
    503: {"model": HttpErrorOut, "description": "Store unavailable (retry)"},
}

IDEMPOTENT: dict[str, Any] = {
    "parameters": [
        {
            "in": "header",
            "name": "idempotency-key",
            "required": False,
            "description": "The request's idempotency key: a repeat within 24 hours (same key, "
            "same token, same path) replays the first response without executing again.",
            "schema": {"type": "string"},
        }
    ]
}
