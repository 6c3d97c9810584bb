"""/api/v1/app/{app_id}/msg: messages.

Creating a message is the hot path (thousands per second). Two ways in lead to one
implementation, :func:`_create` (read and validate the body) and :func:`send_message`:

* :class:`CreateMessageFrontDoor` answers the everyday request (JSON, a Content-Length, a valid
  token within its rate limit; with or without an idempotency key) before any middleware runs
  (docs/decisions/0020-post-msg-front-door.md), and passes everything else on untouched;
* what it passes on takes the middleware stack to the route (:class:`CreateMessageRoute`),
  which reads a JSON body the same way; FastAPI's own handler, :func:`create_message`, takes
  the other content types and documents the operation in the OpenAPI document.

:func:`send_message` resolves the application id through the short-lived cache of
``services.apps.resolve`` and sends through the messages service: one
store round trip (the message, its deliveries and its idempotency key, in one write).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hookpost.api import mapping
from hookpost.api.auth import parse_bearer
from hookpost.api.errors import (
    ValidationFailure,
    clean_validation_errors,
    conflict,
    json_invalid_item,
    payload_too_large,
    response_for,
    unexpected_response,
    validation_item,
)
from hookpost.api.idempotency import HELD_KEY, REPLAYED, SentRenderer, replay, route_slot
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    IDEMPOTENT,
    ApiState,
    AppCtx,
    AppId,
    AuthCtx,
    Ctx,
    DateQuery,
    EventTypesQuery,
    Iterator,
    Limit,
    MsgId,
    StrictJsonRoute,
    WithContent,
    context,
    date_ms,
    decode_json,
    empty,
    event_types_filter,
    json_response,
    page_request,
)
from hookpost.api.schemas import (
    CHANNEL_PATTERN,
    BulkExpungeContentsIn,
    BulkExpungeContentsOut,
    ExpungeAllContentsOut,
    ListResponseMessageOut,
    MessageIn,
    MessageOut,
    MessageRawPayloadOut,
)
from hookpost.domain.errors import Conflict, InvalidInput, PayloadTooLarge
from hookpost.domain.models import Message
from hookpost.domain.permissions import Permission
from hookpost.domain.queries import MessageFilter, SentMessage
from hookpost.services.idempotency import HeldKey

router = APIRouter(
    prefix="/api/v1/app/{app_id}/msg",
    tags=["Message"],
    responses=ERRORS,
    route_class=StrictJsonRoute,
)

ChannelQuery = Annotated[
    str | None, Query(max_length=128, pattern=CHANNEL_PATTERN, description="Filter by channel")
]


def _id(msg: Message) -> str:
    return msg.id


# --------------------------------------------------------------------------- create


async def send_message(
    c: Ctx,
    app_id: str,
    body: MessageIn,
    with_content: bool,
    key: HeldKey | None = None,
) -> Response:
    """Create a message: 202 MessageOut; 409 for a repeated eventId; 413 for a payload over
    the limit; 404 for an unknown application (unless ``application`` creates it).
    ``key``: the request's idempotency key (held), checked and recorded by the message's own
    write; what it held already is answered instead."""
    if body.application is not None:
        # The key is looked up first: a repeat does not create the application either.
        if key is not None and (earlier := await key.earlier()) is not None:
            return await replay(earlier, _renderer(c.api, app_id, with_content))
        await c.app(app_id)
        await _ensure_app(c, app_id, body)
    resolved = await c.app_id(app_id)
    if key is not None and key.app_id is None:  # the application did not exist: it does now
        key.rescope(send_slot(resolved), resolved)
    try:
        created = await c.services.messages.send_to_app_id(
            resolved,
            body.event_type,
            body.payload,
            event_id=body.event_id,
            channels=body.channels or None,
            key=key,
            retention_days=body.payload_retention_period,
            retention_hours=body.payload_retention_hours,
        )
    except PayloadTooLarge:
        raise payload_too_large(c.settings.max_payload_bytes) from None
    except InvalidInput as exc:  # parsed, but it cannot be serialised back (too deep, ...)
        if exc.field != "payload" or exc.path:  # a path: the event type's schema refused it
            raise
        raise unencodable_payload(exc) from None
    if created.replayed is not None:
        return await replay(created.replayed, _renderer(c.api, app_id, with_content))
    if not created.created:
        raise conflict(
            f"a message with eventId {body.event_id!r} already exists: {created.message.id}"
        )
    return json_response(mapping.message_out(created.message, with_content), 202)


async def render_sent(
    api: ApiState, app_id: str, with_content: bool, sent: SentMessage
) -> Response:
    """The answer to a repeat of a send's idempotency key: the message it created, as it is
    now (its payload reads as ``{}`` once expunged). ``app_id`` as the path spells it: an id
    or a uid (one key, one slot for both)."""
    services = api.hp.services
    message = await services.messages.get(await services.apps.resolve(app_id), sent.message_id)
    response = json_response(mapping.message_out(message, with_content), 202)
    response.headers.update(REPLAYED)
    return response


def _renderer(api: ApiState, app_id: str, with_content: bool) -> SentRenderer:
    async def render(sent: SentMessage) -> Response:
        return await render_sent(api, app_id, with_content, sent)

    return render


def unencodable_payload(exc: Exception) -> ValidationFailure:
    """A 422 on ``payload`` for JSON that parsed but cannot be stored as JSON again (nesting
    deeper than orjson's 254 levels, an integer outside the 64-bit range)."""
    return ValidationFailure(
        [
            validation_item(
                ["body", "payload"],
                f"cannot be stored as JSON ({exc}): at most 254 levels of nesting and integers "
                "within the 64-bit range",
            )
        ]
    )


async def _ensure_app(c: Ctx, app_id: str, body: MessageIn) -> None:
    spec = body.application
    assert spec is not None
    apps = c.services.apps
    try:
        await apps.get_or_create(app_id, spec.name, dict(spec.metadata), spec.throttle_rate)
    except Conflict:  # created concurrently by another request
        await apps.get(app_id)


CREATE_PATH = re.compile(r"/api/v1/app/([a-zA-Z0-9\-_.]{1,256})/msg/?")
# The spellings pydantic accepts for a bool query parameter.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def with_content_query(query_string: bytes) -> bool | None:
    """``with_content`` from the query string (default true); None: let FastAPI decide."""
    value = True
    if not query_string:
        return value
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None
    for name, raw in pairs:
        if name != "with_content":
            continue
        lowered = raw.lower()
        if lowered in _TRUE:
            value = True
        elif lowered in _FALSE:
            value = False
        else:
            return None
    return value


CREATE_OPERATION = "v1.message.create"


def send_slot(app_id: str) -> str:
    """A send's idempotency slot, as the middleware's ``resolve_route`` makes it."""
    return route_slot(CREATE_OPERATION, {"app_id": app_id})


async def _key_app(api: ApiState, app_id: str) -> str | None:
    """The id of application ``app_id`` (an id or uid) for a key's slot; None if it does not
    exist (a send with ``application`` creates it), or cannot be read now (the send meets
    that and answers it)."""
    try:
        return await api.hp.services.apps.resolve(app_id)
    except Exception:
        return None


def _target(scope: Scope) -> tuple[str, bool] | None:
    """(app id, with_content) of a create request whose path and query the door's parsing
    reads as FastAPI would; None: FastAPI's to judge (and answer 422)."""
    match = CREATE_PATH.fullmatch(scope["path"])
    if match is None:
        return None
    with_content = with_content_query(scope["query_string"])
    return None if with_content is None else (match.group(1), with_content)


class CreateMessageRoute(StrictJsonRoute):
    """The create route reads a JSON body as the front door does (:func:`_create`: the token
    before the body, then orjson and ``MessageIn``), so a request is answered alike whichever
    way it came (an unauthenticated one with a broken body is a 401). Other content types,
    and a path or query only FastAPI can judge, take FastAPI's handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def create(request: Request) -> Response:
            target = _target(request.scope)
            content_type = request.headers.get("content-type", "")
            if target is None or not content_type.startswith("application/json"):
                return await handler(request)
            c = await context(request)
            key = request.scope.get(HELD_KEY)
            try:
                return await _create(c, target[0], target[1], request.receive, key)
            except _Disconnected:
                return Response()  # nobody to answer

        return create


async def create_message(
    app_id: AppId,
    body: MessageIn,
    c: AuthCtx,
    request: Request,
    with_content: WithContent = True,
) -> Response:
    return await send_message(c, app_id, body, with_content, request.scope.get(HELD_KEY))


router.add_api_route(
    "",
    create_message,
    methods=["POST"],
    status_code=202,
    response_model=MessageOut,
    operation_id=CREATE_OPERATION,
    summary="Create Message",
    description=(
        "Store the message and queue one delivery per matching endpoint, atomically. "
        "`application` creates the application (with the path's id as its uid) if it does not "
        "exist. A second message with the same `eventId` is refused with 409 (as Svix does); "
        "the first one is kept and no deliveries are added. A payload over the configured "
        "limit is refused with 413. With `HOOKPOST_STRICT_EVENT_TYPES=1`, an `eventType` the "
        "catalog lacks or archived is a 422 on `eventType`, and a payload that matches none "
        "of the event type's JSON Schemas (`schemas`, any version) a 422 whose `loc` is the "
        'failing JSON path (`["body", "payload", "customer", "id"]`). The '
        "answer's `payloadSha256` is the hex SHA-256 of the payload bytes as stored and sent."
    ),
    responses={413: {"description": "Payload too large"}},
    openapi_extra=IDEMPOTENT,
    route_class_override=CreateMessageRoute,
)


async def render_sent_for(api: ApiState, scope: Scope, sent: SentMessage) -> Response:
    """:func:`render_sent` for a request seen only as its ASGI scope (by the idempotency
    middleware, which may answer before the route reads the query)."""
    match = CREATE_PATH.fullmatch(scope["path"])
    assert match is not None  # a send's key is held under its own path
    with_content = with_content_query(scope["query_string"]) is not False
    return await render_sent(api, match.group(1), with_content, sent)


# The request headers the front door looks at (the first of each, as everywhere else).
_FRONT_HEADERS = frozenset(
    (
        b"authorization",
        b"content-length",
        b"content-type",
        b"idempotency-key",
        b"transfer-encoding",
    )
)


class CreateMessageFrontDoor:
    """``POST /api/v1/app/{app_id}/msg``, ahead of the whole middleware stack.

    The route sits inside seven middlewares (uvicorn's and FastAPI's, the rate limit, the body
    cap, idempotency), each a coroutine hop and most scanning the headers (see
    docs/decisions/0020-post-msg-front-door.md). The front door takes a request
    only when the first three would do no more than pass it on: a JSON body whose
    ``Content-Length`` is within the body cap, a valid token with room in its rate-limit
    bucket. It then does their part (one authentication, one token taken from the bucket),
    holds the idempotency key as the middleware would (the same service, so a repeat waits
    for the first whichever way each came in), and calls :func:`send_message`. For anything
    else it returns False, having read and sent nothing, and the request takes the stack,
    which answers it (401, 413, 429, chunked bodies) as before. ``HookpostApi.__call__`` puts
    it in front.
    """

    def __init__(self, app_state: Any, body_limit: int) -> None:
        self.state = app_state
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        target = _target(scope)
        if target is None:
            return False
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _FRONT_HEADERS and name not in found:
                found[name] = value
        if not bytes(found.get(b"content-type", b"")).startswith(b"application/json"):
            return False
        # The body is read without counting it, so its length must be declared and bounded:
        # chunked bodies (whose size only the body cap's count can bound) go round, and so
        # does a Transfer-Encoding beside a Content-Length, which some servers (h11) obey.
        if b"transfer-encoding" in found:
            return False
        try:
            if int(found[b"content-length"]) > self.body_limit:
                return False
        except (KeyError, ValueError):
            return False
        token = parse_bearer(found.get(b"authorization"))
        api: ApiState | None = getattr(self.state, "api", None)  # attached at start-up
        if token is None or api is None:
            return False
        try:
            record = await api.authenticator.authenticate(token)
        except Exception:
            return False  # the full stack meets the same failure and answers it
        if record is None:
            return False
        limiter = getattr(self.state, "rate_limiter", None)
        if limiter is not None and limiter.take(record.id) > 0.0:
            return False  # refused takes cost nothing: the rate limit middleware answers 429
        # From here on the request is ours.
        c = Ctx(record, api, Permission.CREATE_MESSAGE)
        app_id, with_content = target

        async def respond(key: HeldKey | None) -> Response | None:
            """The answer (None: the client is gone); an unexpected error is raised."""
            try:
                return await _create(c, app_id, with_content, receive, key)
            except _Disconnected:
                return None
            except Exception as exc:
                known = response_for(exc)
                if known is None:
                    raise
                return known

        raw_key = found.get(b"idempotency-key")
        try:
            if not raw_key:
                response = await respond(None)
            else:
                idempotency = api.hp.services.idempotency
                resolved = await _key_app(api, app_id)
                route = send_slot(resolved or app_id)
                async with idempotency.hold(record.id, route, raw_key, resolved) as key:
                    response = await respond(key)
                    if response is not None and not key.answered:  # a refusal, say
                        earlier = await key.keep(response.status_code, bytes(response.body))
                        if earlier is not None:
                            response = await replay(earlier, _renderer(api, app_id, with_content))
        except Exception as exc:
            # As FastAPI's outermost middleware would: a 500, and the error re-raised for the
            # server to log.
            await unexpected_response("POST", scope["path"], exc)(scope, receive, send)
            raise
        if response is not None:
            await response(scope, receive, send)
        return True


async def _create(
    c: Ctx,
    app_id: str,
    with_content: bool,
    receive: Receive,
    key: HeldKey | None = None,
) -> Response:
    """Both ways in: read and validate the body, then :func:`send_message`."""
    raw = await _read_body(receive)
    try:
        # The same strict parser as the FastAPI route (see common.decode_json).
        body = MessageIn.model_validate(decode_json(raw))
    except orjson.JSONDecodeError as exc:
        raise ValidationFailure([json_invalid_item(exc)]) from None
    except ValidationError as exc:
        raise ValidationFailure(
            [
                {**item, "loc": ["body", *item["loc"]]}
                for item in clean_validation_errors(exc.errors())
            ]
        ) from None
    return await send_message(c, app_id, body, with_content, key)


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# --------------------------------------------------------------------------- read


@router.get(
    "",
    response_model=ListResponseMessageOut,
    operation_id="v1.message.list",
    summary="List Messages",
    description=(
        "The application's messages, newest first. With content, a page stops before the "
        "message whose payload would take it over `HOOKPOST_MAX_PAGE_CONTENT_BYTES`: it then "
        "holds fewer than `limit` messages, with `done: false` and an `iterator`."
    ),
)
async def list_messages(
    app: AppCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    channel: ChannelQuery = None,
    before: DateQuery = None,
    after: DateQuery = None,
    with_content: WithContent = True,
    event_types: EventTypesQuery = None,
) -> Response:
    app.check_access()  # another tenant's application: 404 before the query's 422
    filt = MessageFilter(
        event_types=event_types_filter(event_types),
        channel=channel,
        before=date_ms(before),
        after=date_ms(after),
    )
    page = await app.services.messages.list(
        app.id, page_request(limit, iterator, True), filt, with_content
    )
    return json_response(
        mapping.list_out(page, lambda m: mapping.message_out(m, with_content), _id)
    )


@router.get(
    "/{msg_id}",
    response_model=MessageOut,
    operation_id="v1.message.get",
    summary="Get Message",
    description="By message id or by `eventId`.",
)
async def get_message(app: AppCtx, msg_id: MsgId, with_content: WithContent = True) -> Response:
    msg = await app.services.messages.get(app.id, msg_id)
    return json_response(mapping.message_out(msg, with_content))


@router.delete(
    "/{msg_id}/content",
    status_code=204,
    response_class=Response,
    operation_id="v1.message.expunge-content",
    summary="Expunge Message Content",
    description="Delete the message's payload (it reads as `{}` afterwards).",
)
async def expunge_message_content(app: AppCtx, msg_id: MsgId) -> Response:
    await app.services.messages.expunge(app.id, msg_id)
    return empty()


@router.get(
    "/{msg_id}/raw",
    response_model=MessageRawPayloadOut,
    operation_id="v1.message.get-raw-payload",
    summary="Get Message Raw Payload",
    description="The payload as stored, byte for byte, in a string (`{}` once expunged).",
)
async def get_raw_payload(app: AppCtx, msg_id: MsgId) -> Response:
    msg = await app.services.messages.get(app.id, msg_id)
    return json_response({"payload": msg.payload.decode("utf-8", "replace")})


@router.post(
    "/bulk-expunge",
    response_model=BulkExpungeContentsOut,
    operation_id="v1.message.bulk-expunge-content",
    summary="Bulk Expunge Message Contents",
    description="Delete the payloads of these messages (ids or eventIds).",
    openapi_extra=IDEMPOTENT,
)
async def bulk_expunge(app: AppCtx, body: BulkExpungeContentsIn) -> Response:
    found = await app.services.messages.bulk_expunge(app.id, body.ids)
    results = {k: "expunged" if ok else "not-found" for k, ok in found.items()}
    return json_response({"results": results})


@router.post(
    "/expunge-all-contents",
    status_code=202,
    response_model=ExpungeAllContentsOut,
    operation_id="v1.message.expunge-all-contents",
    summary="Expunge All Message Contents",
    description=(
        "Delete every payload of the application's messages, in a background task "
        "(`application.purge_content`; `data.messagesPurged`)."
    ),
    openapi_extra=IDEMPOTENT,
)
async def expunge_all_contents(app: AppCtx) -> Response:
    task = await app.services.tasks.expunge_all_contents(app.id)
    return json_response(mapping.task_out(task), 202)
