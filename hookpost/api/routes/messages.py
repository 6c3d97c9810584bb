"""/api/v1/app/{app_id}/msg: messages.

Creating a message is the hot path (thousands per second), so it is lean:

* :class:`CreateMessageFrontDoor` answers the everyday request (JSON, a Content-Length, a valid
  token within its rate limit; with or without an idempotency key) before any middleware runs,
  and passes everything else on untouched.
* :class:`CreateMessageFastPath`, an ASGI middleware inside the idempotency and body-limit
  middlewares, answers the rest of ``POST /api/v1/app/{app_id}/msg`` without FastAPI's routing and
  dependency machinery: it authenticates (cached), validates the body with pydantic's JSON
  parser and calls :func:`send_message`. Whatever it does not recognise (an unusual query
  string or content type) falls through to the FastAPI route below, which calls the same
  :func:`send_message`; the route also documents the operation in the OpenAPI document.
* :func:`send_message` resolves the application id through the short-lived cache of
  :class:`~hookpost.api.routes.common.AppResolver` and writes through the store directly:
  one store round trip (the transactional insert of the message and its deliveries) instead
  of two.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

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
from hookpost.api.idempotency import IdempotentRequests, replay_response
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    IDEMPOTENT,
    PENDING_ANSWER,
    AppCtx,
    AppId,
    AuthCtx,
    Ctx,
    DateQuery,
    EventTypesQuery,
    Iterator,
    Limit,
    MsgId,
    PendingAnswer,
    StrictJsonRoute,
    WithContent,
    authenticated,
    date_ms,
    decode_json,
    empty,
    event_types_filter,
    json_response,
    page_request,
)
from hookpost.api.schemas import CHANNEL_PATTERN, ListResponseMessageOut, MessageIn, MessageOut
from hookpost.domain.errors import Conflict, InvalidInput, PayloadTooLarge
from hookpost.domain.models import Message
from hookpost.domain.queries import MessageFilter, StoredAnswer

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
    pending: PendingAnswer | None = None,
) -> Response:
    """Create a message: 202 MessageOut; 409 for a repeated eventId; 413 for a payload over
    the limit; 404 for an unknown application (unless ``application`` creates it).
    ``pending``: the request's idempotency key, whose 202 is then stored with the message (one
    write, and no window in which the message exists but a retry would send it again)."""
    if body.application is not None:
        if pending is not None and (earlier := await pending.check()) is not None:
            pending.stored = True  # a repeat: the application is not created again either
            return replay_response(*earlier)
        await c.app(app_id)
        await _ensure_app(c, app_id, body)
    resolved = await c.app_id(app_id)
    accepted: Response | None = None

    def answer_for(message: Message) -> StoredAnswer:
        nonlocal accepted
        assert pending is not None
        accepted = json_response(mapping.message_out(message, with_content), 202)
        return pending.answer(202, bytes(accepted.body))

    try:
        created = await c.services.messages.send_to_app_id(
            resolved,
            body.event_type,
            body.payload,
            event_id=body.event_id,
            channels=body.channels or None,
            answer_for=None if pending is None else answer_for,
        )
    except PayloadTooLarge:
        raise payload_too_large(c.settings.max_payload_bytes) from None
    except InvalidInput as exc:  # parsed, but it cannot be serialised back (too deep, ...)
        if exc.field != "payload":
            raise
        raise unencodable_payload(exc) from None
    if pending is not None:
        pending.checked = True  # by the message's write
        if created.replayed is not None:
            pending.stored = True
            return replay_response(*created.replayed)
    if not created.created:
        raise conflict(
            f"a message with eventId {body.event_id!r} already exists: {created.message.id}"
        )
    if pending is not None and accepted is not None:  # created: its answer is stored with it
        pending.stored = True
        return accepted
    return json_response(mapping.message_out(created.message, with_content), 202)


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


@router.post(
    "",
    status_code=202,
    response_model=MessageOut,
    operation_id="v1.message.create",
    summary="Create Message",
    description=(
        "Store the message and queue one delivery per matching endpoint, atomically. "
        "`application` creates the application (with the path's id as its uid) if it does not "
        "exist. A second message with the same `eventId` is refused with 409 (as Svix does); "
        "the first one is kept and no deliveries are added. A payload over the configured "
        "limit is refused with 413."
    ),
    responses={413: {"description": "Payload too large"}},
    openapi_extra=IDEMPOTENT,
)
async def create_message(
    app_id: AppId,
    body: MessageIn,
    c: AuthCtx,
    request: Request,
    with_content: WithContent = True,
) -> Response:
    return await send_message(c, app_id, body, with_content, request.scope.get(PENDING_ANSWER))


_CREATE_PATH = re.compile(r"/api/v1/app/([a-zA-Z0-9\-_.]{1,256})/msg/?")
# The spellings pydantic accepts for a bool query parameter.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _with_content(query_string: bytes) -> bool | None:
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


class CreateMessageFastPath:
    """``POST /api/v1/app/{app_id}/msg`` without FastAPI's per-request machinery (see the
    module docstring); anything unusual falls through to the FastAPI route."""

    def __init__(self, app: ASGIApp, app_state: Any) -> None:
        self.app = app
        self.state = app_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _CREATE_PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        with_content = _with_content(scope["query_string"])
        headers = _Headers(scope)
        content_type = headers.get("content-type") or ""
        if with_content is None or not content_type.startswith("application/json"):
            await self.app(scope, receive, send)
            return
        try:
            c = await authenticated(self.state.api, headers)
            pending = scope.get(PENDING_ANSWER)
            response = await _create(c, match.group(1), with_content, receive, pending)
        except _Disconnected:
            return  # nobody to answer
        except Exception as exc:
            known = response_for(exc)
            if known is None:
                raise
            response = known
        await response(scope, receive, send)


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

    :class:`CreateMessageFastPath` sits inside seven middlewares (uvicorn's and FastAPI's, the
    rate limit, the body cap, idempotency). Each is a coroutine hop and most scan the headers:
    about 14% of the API process's CPU at full load (BENCHMARKS.md). The front door takes a
    request only when the first three would do no more than pass it on: a JSON body whose
    ``Content-Length`` is within the body cap, a valid token with room in its rate-limit
    bucket. It then does their part (one authentication, one token taken from the bucket), the
    idempotency middleware's for a keyed request (the same :class:`IdempotentRequests`), and
    the fast path's. For anything else it returns False, having read and sent nothing, and the
    request takes the full stack, which answers it (401, 413, 429, chunked bodies) as before.
    ``HookpostApi.__call__`` puts it in front.
    """

    def __init__(self, app_state: Any, body_limit: int, idempotent: IdempotentRequests) -> None:
        self.state = app_state
        self.body_limit = body_limit
        self.idempotent = idempotent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        match = _CREATE_PATH.fullmatch(scope["path"])
        if match is None:
            return False
        with_content = _with_content(scope["query_string"])
        if with_content is None:
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
        api = getattr(self.state, "api", None)  # attached when the runtime starts
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
        app_id = match.group(1)
        answered = False  # an unexpected error: its 500 was sent, the error is raised

        async def answer(reply: Send, pending: PendingAnswer | None) -> None:
            nonlocal answered
            try:
                response = await _create(Ctx(record, api), app_id, with_content, receive, pending)
            except _Disconnected:
                return  # nobody to answer
            except Exception as exc:
                known = response_for(exc)
                if known is None:
                    # As FastAPI's outermost middleware would: a 500, and the error re-raised
                    # for the server to log.
                    answered = True
                    await unexpected_response("POST", scope["path"], exc)(scope, receive, reply)
                    raise
                response = known
            await response(scope, receive, reply)

        raw_key = found.get(b"idempotency-key")
        if not raw_key:
            await answer(send, None)
            return True
        try:
            # The key is not looked up first: the message's write checks it (one store
            # round trip per send instead of two), see PendingAnswer.checked.
            await self.idempotent.run(
                api.hp.store, record.id, scope, bytes(raw_key), send, answer, look_up_first=False
            )
        except Exception as exc:
            if not answered:  # it failed outside the answer: nothing was sent yet
                await unexpected_response("POST", scope["path"], exc)(scope, receive, send)
            raise
        return True


async def _create(
    c: Ctx,
    app_id: str,
    with_content: bool,
    receive: Receive,
    pending: PendingAnswer | None = None,
) -> Response:
    """Both fast paths' common part: read and validate the body, create the message."""
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
    return await send_message(c, app_id, body, with_content, pending)


class _Headers:
    """The few request headers the fast path reads, straight from the ASGI scope."""

    __slots__ = ("_scope",)

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def get(self, name: str) -> str | None:
        key = name.encode("latin-1")
        for k, v in self._scope["headers"]:
            if k == key:
                return bytes(v).decode("latin-1")
        return None


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
