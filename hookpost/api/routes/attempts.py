"""Message attempts and delivery views: attempts by endpoint or message, the messages an
endpoint was sent, the endpoints a message went to, and resend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.errors import conflict
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    ID_PATTERN,
    IDEMPOTENT,
    MAX_ID,
    AppId,
    AttemptId,
    AuthCtx,
    Ctx,
    DateQuery,
    EndpointId,
    EventTypesQuery,
    Iterator,
    Limit,
    MsgId,
    StrictJsonRoute,
    date_ms,
    empty,
    event_types_filter,
    json_response,
    page_request,
)
from hookpost.api.schemas import (
    CHANNEL_PATTERN,
    EmptyResponse,
    ListResponseEndpointMessageOut,
    ListResponseMessageAttemptOut,
    ListResponseMessageEndpointOut,
    MessageAttemptOut,
    MessageStatus,
)
from hookpost.domain.models import (
    Attempt,
    AttemptStatus,
    Delivery,
    Endpoint,
    Message,
    Page,
)
from hookpost.domain.queries import AttemptFilter

router = APIRouter(
    prefix="/api/v1/app/{app_id}",
    tags=["Message Attempt"],
    responses=ERRORS,
    route_class=StrictJsonRoute,
)


class StatusCodeClass(IntEnum):
    CODE_NONE = 0
    CODE_1XX = 100
    CODE_2XX = 200
    CODE_3XX = 300
    CODE_4XX = 400
    CODE_5XX = 500


StatusQuery = Annotated[
    MessageStatus | None,
    Query(description="Filter by status: Success = 0, Pending = 1, Fail = 2, Sending = 3"),
]
StatusCodeClassQuery = Annotated[
    StatusCodeClass | None,
    Query(description="Filter by HTTP status code class (0: no response)"),
]
ChannelQuery = Annotated[
    str | None, Query(max_length=128, pattern=CHANNEL_PATTERN, description="Filter by channel")
]
# Attempts are only ever Success or Fail; Pending/Sending attempts do not exist.
_ATTEMPT_STATUS = {0: AttemptStatus.SUCCESS, 2: AttemptStatus.FAIL}


def _attempt_id(a: Attempt) -> str:
    return a.id


def _code_class(code: int) -> int:
    return 0 if code < 100 else (code // 100) * 100


async def _messages_by_id(c: Ctx, app_id: str, msg_ids: Sequence[str]) -> dict[str, Message]:
    unique = list(dict.fromkeys(msg_ids))
    found = await asyncio.gather(*(c.services.messages.get(app_id, m) for m in unique))
    return {m.id: m for m in found}


async def _list_attempts(
    c: Ctx,
    app_id: str,
    *,
    limit: int,
    iterator: str | None,
    status: int | None,
    status_code_class: int | None,
    channel: str | None,
    before: int | None,
    after: int | None,
    with_content: bool,
    event_types: list[str] | None,
    endpoint_id: str | None = None,
    message_id: str | None = None,
) -> Response:
    await c.app(app_id)
    page_req = page_request(limit, iterator, True)
    if status is not None and int(status) not in _ATTEMPT_STATUS:
        # Still check that the parent exists, then answer an empty page.
        await c.services.messages.list_attempts(
            app_id, page_req, AttemptFilter(endpoint_id=endpoint_id, message_id=message_id)
        )
        page: Page[Attempt] = Page(items=[], done=True)
    else:
        filt = AttemptFilter(
            endpoint_id=endpoint_id,
            message_id=message_id,
            status=None if status is None else _ATTEMPT_STATUS[int(status)],
            event_types=event_types,
            before=before,
            after=after,
        )
        page = await c.services.messages.list_attempts(app_id, page_req, filt)

    # Filters the store does not know are applied to the page (iterators stay exact).
    checks: list[Callable[[Attempt], bool]] = []
    if status_code_class is not None:
        checks.append(lambda a: _code_class(a.response_status_code) == int(status_code_class))
    if channel is not None and page.items:
        msgs = await _messages_by_id(c, app_id, [a.message_id for a in page.items])
        checks.append(lambda a: channel in (msgs[a.message_id].channels or ()))
    keep = (lambda a: all(check(a) for check in checks)) if checks else None
    return json_response(
        mapping.list_out(page, lambda a: mapping.attempt_out(a, with_content), _attempt_id, keep)
    )


@router.get(
    "/attempt/endpoint/{endpoint_id}",
    response_model=ListResponseMessageAttemptOut,
    operation_id="v1.message-attempt.list-by-endpoint",
    summary="List Attempts By Endpoint",
    description="The endpoint's attempts, newest first.",
)
async def list_attempts_by_endpoint(
    app_id: AppId,
    endpoint_id: EndpointId,
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    status: StatusQuery = None,
    status_code_class: StatusCodeClassQuery = None,
    channel: ChannelQuery = None,
    before: DateQuery = None,
    after: DateQuery = None,
    with_content: Annotated[bool, Query()] = True,
    event_types: EventTypesQuery = None,
) -> Response:
    endpoint = await _endpoint_for(c, app_id, endpoint_id)
    return await _list_attempts(
        c,
        app_id,
        limit=limit,
        iterator=iterator,
        status=status,
        status_code_class=status_code_class,
        channel=channel,
        before=date_ms(before),
        after=date_ms(after),
        with_content=with_content,
        event_types=event_types_filter(event_types),
        endpoint_id=endpoint.id,
    )


@router.get(
    "/attempt/msg/{msg_id}",
    response_model=ListResponseMessageAttemptOut,
    operation_id="v1.message-attempt.list-by-msg",
    summary="List Attempts By Msg",
    description="The message's attempts, newest first.",
)
async def list_attempts_by_msg(
    app_id: AppId,
    msg_id: MsgId,
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    status: StatusQuery = None,
    status_code_class: StatusCodeClassQuery = None,
    channel: ChannelQuery = None,
    endpoint_id: Annotated[
        str | None, Query(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)
    ] = None,
    before: DateQuery = None,
    after: DateQuery = None,
    with_content: Annotated[bool, Query()] = True,
    event_types: EventTypesQuery = None,
) -> Response:
    await c.app(app_id)
    msg = await c.services.messages.get(app_id, msg_id)
    ep_id = None if endpoint_id is None else (await _endpoint_for(c, app_id, endpoint_id)).id
    return await _list_attempts(
        c,
        app_id,
        limit=limit,
        iterator=iterator,
        status=status,
        status_code_class=status_code_class,
        channel=channel,
        before=date_ms(before),
        after=date_ms(after),
        with_content=with_content,
        event_types=event_types_filter(event_types),
        endpoint_id=ep_id,
        message_id=msg.id,
    )


async def _endpoint_for(c: Ctx, app_id: str, endpoint_id: str) -> Endpoint:
    await c.app(app_id)
    return await c.services.endpoints.get(app_id, endpoint_id)


@router.get(
    "/endpoint/{endpoint_id}/msg",
    response_model=ListResponseEndpointMessageOut,
    operation_id="v1.message-attempt.list-attempted-messages",
    summary="List Attempted Messages",
    description="The messages sent (or to be sent) to the endpoint, newest first, with the "
    "status of their delivery to it.",
)
async def list_attempted_messages(
    app_id: AppId,
    endpoint_id: EndpointId,
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    channel: ChannelQuery = None,
    status: StatusQuery = None,
    before: DateQuery = None,
    after: DateQuery = None,
    with_content: Annotated[bool, Query()] = True,
    event_types: EventTypesQuery = None,
) -> Response:
    endpoint = await _endpoint_for(c, app_id, endpoint_id)
    types = event_types_filter(event_types)
    before_ms, after_ms = date_ms(before), date_ms(after)
    page = await c.services.messages.endpoint_messages(
        app_id,
        endpoint.id,
        page_request(limit, iterator, True),
        None if status is None else mapping.MESSAGE_TO_DELIVERY_STATUS[int(status)],
    )

    def keep(item: tuple[Delivery, Message]) -> bool:
        msg = item[1]
        return (
            (channel is None or channel in (msg.channels or ()))
            and (types is None or msg.event_type in types)
            and (before_ms is None or msg.created_at < before_ms)
            and (after_ms is None or msg.created_at > after_ms)
        )

    filtering = channel is not None or types or before_ms is not None or after_ms is not None
    return json_response(
        mapping.list_out(
            page,
            lambda item: mapping.endpoint_message_out(item[0], item[1], with_content),
            lambda item: item[1].id,
            keep if filtering else None,
        )
    )


@router.get(
    "/msg/{msg_id}/endpoint",
    response_model=ListResponseMessageEndpointOut,
    operation_id="v1.message-attempt.list-attempted-destinations",
    summary="List Attempted Destinations",
    description="The endpoints the message was (or is to be) sent to, with the delivery status.",
)
async def list_attempted_destinations(
    app_id: AppId,
    msg_id: MsgId,
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
) -> Response:
    await c.app(app_id)
    page = await c.services.messages.destinations(
        app_id, msg_id, page_request(limit, iterator, False)
    )
    return json_response(
        mapping.list_out(
            page,
            lambda item: mapping.message_endpoint_out(item[0], item[1]),
            lambda item: item[1].id,
        )
    )


@router.get(
    "/msg/{msg_id}/attempt/{attempt_id}",
    response_model=MessageAttemptOut,
    operation_id="v1.message-attempt.get",
    summary="Get Attempt",
)
async def get_attempt(app_id: AppId, msg_id: MsgId, attempt_id: AttemptId, c: AuthCtx) -> Response:
    await c.app(app_id)
    attempt = await c.services.messages.get_attempt(app_id, msg_id, attempt_id)
    return json_response(mapping.attempt_out(attempt))


@router.delete(
    "/msg/{msg_id}/attempt/{attempt_id}/content",
    status_code=204,
    response_class=Response,
    operation_id="v1.message-attempt.expunge-content",
    summary="Delete Attempt Response Body",
)
async def expunge_attempt_content(
    app_id: AppId, msg_id: MsgId, attempt_id: AttemptId, c: AuthCtx
) -> Response:
    await c.app(app_id)
    await c.services.messages.expunge_attempt(app_id, msg_id, attempt_id)
    return empty()


@router.post(
    "/msg/{msg_id}/endpoint/{endpoint_id}/resend",
    status_code=202,
    response_model=EmptyResponse,
    operation_id="v1.message-attempt.resend",
    summary="Resend Webhook",
    description="A manual attempt now, whatever the delivery's state. A message whose payload "
    "was expunged cannot be resent (409).",
    openapi_extra=IDEMPOTENT,
)
async def resend(app_id: AppId, msg_id: MsgId, endpoint_id: EndpointId, c: AuthCtx) -> Response:
    await c.app(app_id)
    msg = await c.services.messages.get(app_id, msg_id)
    if msg.expunged:
        raise conflict("the message's payload was expunged; it cannot be resent")
    await c.services.messages.resend(app_id, msg.id, endpoint_id)
    return json_response({}, 202)
