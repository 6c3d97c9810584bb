"""Shared pieces of the route modules: the request context, paging, path and query types."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

import orjson
from fastapi import Depends, Path, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from hookpost.api.auth import Authenticator, authenticate, bearer_token, check_app_access
from hookpost.api.errors import (
    ValidationFailure,
    forbidden,
    not_found,
    not_json,
    validation_item,
)
from hookpost.api.fields import MAX_EVENT_TYPES
from hookpost.api.mapping import to_ms
from hookpost.api.permissions import route_permission
from hookpost.api.schemas import HttpErrorOut, HTTPValidationError
from hookpost.domain.errors import NotFound
from hookpost.domain.models import ApiToken, PageRequest
from hookpost.domain.permissions import Permission, allows, refusal
from hookpost.services import Services
from hookpost.settings import Settings

ID_PATTERN = r"^[a-zA-Z0-9\-_.]+$"
MAX_ID = 256
DEFAULT_LIMIT = 50
MAX_LIMIT = 250
_ID_RE = re.compile(ID_PATTERN)

# Path parameters.
AppId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
EndpointId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
MsgId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
AttemptId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
EventTypeName = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]


class Runtime(Protocol):
    """What the API needs of ``hookpost.wiring.Hookpost`` (kept structural: the API layer
    does not import the wiring module)."""

    settings: Settings
    services: Services


@dataclass(slots=True)
class ApiState:
    """Everything the routes share, per app instance (held on ``app.state.api``)."""

    hp: Runtime
    authenticator: Authenticator

    @classmethod
    def build(cls, hp: Runtime) -> ApiState:
        return cls(hp, Authenticator(hp.services.tokens))


@dataclass(slots=True)
class Ctx:
    """One authenticated request: the caller's token, the runtime, and the permission the
    request needs (its route's, ``api.permissions``).

    That permission is checked in one place, here, when the request first reaches the
    services (``services``, ``app``, ``app_id``; ``AppScope`` likewise): after the request's
    validation and after the application's tenancy check, so the answers keep their order
    401, 422, 404 (another tenant's application: never 403, no existence oracle), 403.
    """

    token: ApiToken
    api: ApiState
    needs: Permission | None = None  # None: nothing (left) to check

    @property
    def services(self) -> Services:
        if self.needs is not None:
            self.check()
        return self.api.hp.services

    @property
    def settings(self) -> Settings:
        return self.api.hp.settings

    @property
    def is_admin(self) -> bool:
        return self.token.app_id is None

    def require(self, permission: Permission) -> None:
        """403 unless the caller's token holds ``permission`` (``domain.permissions``)."""
        if not allows(self.token, permission):
            raise forbidden(refusal(self.token, permission))

    def check(self) -> None:
        """The request's own permission (``needs``), once."""
        if self.needs is not None:
            self.require(self.needs)
            self.needs = None

    # The POST /msg create path's; the other routes take ``AppCtx``.
    async def app(self, app_id: str) -> str:
        """Check that the caller may touch application ``app_id`` (an id or uid) and holds
        the request's permission."""
        await check_app_access(self.token, app_id, self.api.hp.services.apps.resolve)
        if self.needs is not None:
            self.check()
        return app_id

    async def app_id(self, app_id: str) -> str:
        """The id of application ``app_id`` (an id or uid), checking the caller's access on
        that same id: resolved once, so the application checked is the one used."""
        own = self.token.app_id
        try:
            resolved = await self.api.hp.services.apps.resolve(app_id)
        except NotFound:
            if own is None or app_id == own:
                raise
            raise not_found() from None
        if own is not None and resolved != own:
            raise not_found()
        if self.needs is not None:  # the POST /msg hot path: no call when nothing is left
            self.check()
        return resolved


async def authenticated(api: ApiState, headers: Any, needs: Permission | None = None) -> Ctx:
    """The request's context, or 401; ``needs``: the permission the request needs."""
    token = await authenticate(api.authenticator, bearer_token(headers))
    return Ctx(token, api, needs)


async def context(request: Request) -> Ctx:
    """Authenticate the request (``Authorization: Bearer <token>``) or answer 401; the
    context then checks the route's permission (see ``Ctx``).

    The header is read directly rather than through ``fastapi.security.HTTPBearer``: one
    dependency level less on every request. The security scheme is declared in the OpenAPI
    document by ``hookpost.api.app``.
    """
    needs = route_permission(request.scope["route"])
    return await authenticated(request.app.state.api, request.headers, needs)


AuthCtx = Annotated[Ctx, Depends(context)]


@dataclass(slots=True)
class AppScope:
    """The request's application (the path's ``{app_id}``, an id or uid), resolved once and
    checked against the caller's token by :func:`app_scope`.

    A failure to resolve it (unknown: 404; another tenant's: 404; the database away: 503) is
    raised when the route first asks for the application, not by the dependency: after the
    request's validation, so a request that is invalid as well is answered 422, as before.
    """

    ctx: Ctx
    given: str  # as in the path
    _id: str | None = None
    _denied: Exception | None = None  # another tenant's application
    _failed: Exception | None = None  # resolving it failed

    @property
    def id(self) -> str:
        """The application's id."""
        self.check_access()
        if self._failed is not None:
            raise self._failed
        assert self._id is not None
        return self._id

    def check_access(self) -> None:
        """Raise unless the caller may touch this application, existing or not (PUT creates
        it): another tenant's is "not found"; then unless it holds the request's permission
        (``Ctx``): 403."""
        if self._denied is not None:
            raise self._denied
        self.ctx.check()

    def id_if_exists(self) -> str | None:
        """The application's id, or None if there is none by that id or uid (for the routes
        that create it then): what the access check resolved, never resolved again."""
        self.check_access()
        if isinstance(self._failed, NotFound):
            return None
        return self.id

    @property
    def services(self) -> Services:
        self.check_access()
        return self.ctx.api.hp.services


async def app_scope(c: AuthCtx, app_id: AppId) -> AppScope:
    """Authenticate (the ``AuthCtx`` dependency runs first: 401 before any 422), then resolve
    the path's application once, through the cache of ``AppService.resolve``."""
    scope = AppScope(c, app_id)
    try:
        scope._id = await c.api.hp.services.apps.resolve(app_id)  # unchecked: see Ctx
    except Exception as exc:  # raised by AppScope.id, see there
        scope._failed = exc
    own = c.token.app_id
    # Only the application the id or uid resolved to counts (the path naming the token's own
    # app by its id does not: a uid may have come to hold that id if the app was deleted).
    if own is not None and scope._id != own and (scope._id is not None or app_id != own):
        failed = scope._failed
        unknown = failed is None or isinstance(failed, NotFound)
        scope._denied = not_found() if unknown else failed
    return scope


AppCtx = Annotated[AppScope, Depends(app_scope)]


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


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``: what FastAPI parses as JSON."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class StrictJsonRoute(APIRoute):
    """Route class of every router: bodies are parsed by :func:`decode_json`, so a body that
    is not strict JSON is a 422 ``json_invalid`` located at ``["body", <offset>]``. A body
    sent without a JSON content type is a 415 that says so (FastAPI would validate its bytes
    as the model: "Input should be a valid dictionary")."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def strict_json_handler(request: Request) -> Response:
            strict = StrictJsonRequest(request.scope, request.receive)
            if takes_body:
                content_type = strict.headers.get("content-type")
                if not is_json_media_type(content_type or "") and await strict.body():
                    raise not_json(content_type)
            return await handler(strict)

        return strict_json_handler


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
    Query(
        description="Filter by event type (repeat the parameter or separate with commas; "
        f"at most {MAX_EVENT_TYPES} names)"
    ),
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


def event_types_filter(values: list[str] | None, limit: int = MAX_EVENT_TYPES) -> list[str] | None:
    """``event_types`` as repeated parameters and/or comma-separated (the svix SDK's form):
    at most ``limit`` distinct names (as many as an endpoint's filter may hold), else a 422."""
    if not values:
        return None
    out: dict[str, None] = {}  # insertion-ordered set: linear in the number of names
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name or name in out:
                continue
            if len(name) > MAX_ID or not _ID_RE.fullmatch(name):
                raise query_error("event_types", f"invalid event type name {name[:64]!r}")
            out[name] = None
            if len(out) > limit:
                raise query_error("event_types", f"at most {limit} event types may be given")
    return list(out) or None


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
