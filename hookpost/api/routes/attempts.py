"""Message attempts and delivery views: attempts by endpoint or message, the messages an
endpoint was sent, the endpoints a message went to, and resend."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    ID_PATTERN,
    IDEMPOTENT,
    MAX_ID,
    AppCtx,
    AppScope,
    AttemptId,
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
    CountOut,
    EmptyResponse,
    ListResponseEndpointMessageOut,
    ListResponseMessageAttemptOut,
    ListResponseMessageEndpointOut,
    MessageAttemptHeadersOut,
    MessageAttemptOut,
    MessageStatus,
)
from hookpost.domain.inputs import AttemptQuery
from hookpost.domain.models import Attempt, AttemptStatus
from hookpost.domain.queries import MessageFilter

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
COUNT_CAP = 10_000  # attempts counted at most (Svix's count has a ceiling too)
# Attempts are only ever Success or Fail; Pending/Sending attempts do not exist.
_ATTEMPT_STATUS = {0: AttemptStatus.SUCCESS, 2: AttemptStatus.FAIL}


def _attempt_id(a: Attempt) -> str:
    return a.id


def _statuses(status: int | None) -> frozenset[AttemptStatus] | None:
    if status is None:
        return None
    found = _ATTEMPT_STATUS.get(int(status))
    return frozenset() if found is None else frozenset((found,))


def _by_endpoint(
    endpoint_id: str,
    status: MessageStatus | None,
    status_code_class: StatusCodeClass | None,
    channel: str | None,
    before: datetime | None,
    after: datetime | None,
    event_types: list[str] | None,
) -> AttemptQuery:
    return AttemptQuery(
        endpoint=endpoint_id,
        statuses=_statuses(status),
        event_types=event_types_filter(event_types),
        before=date_ms(before),
        after=date_ms(after),
        status_code_class=None if status_code_class is None else int(status_code_class),
        channel=channel,
    )


async def _list_attempts(
    app: AppScope,
    app_id: str,
    query: AttemptQuery,
    limit: int,
    iterator: str | None,
    with_content: bool,
    with_msg: bool = False,
) -> Response:
    messages = app.services.messages
    page = await messages.list_attempts(app_id, page_request(limit, iterator, True), query)
    if not with_msg:
        return json_response(
            mapping.list_out(page, lambda a: mapping.attempt_out(a, with_content), _attempt_id)
        )
    msgs = await messages.attempt_messages(app_id, page.items)

    def render(a: Attempt) -> dict[str, Any]:
        out = mapping.attempt_out(a, with_content)
        # with its payload: the SDKs send with_content=false unless told, and it is about the
        # attempt's response
        out["msg"] = mapping.message_out(msgs[a.message_id])
        return out

    return json_response(mapping.list_out(page, render, _attempt_id))


@router.get(
    "/attempt/endpoint/{endpoint_id}",
    response_model=ListResponseMessageAttemptOut,
    operation_id="v1.message-attempt.list-by-endpoint",
    summary="List Attempts By Endpoint",
    description="The endpoint's attempts, newest first.",
)
async def list_attempts_by_endpoint(
    app: AppCtx,
    endpoint_id: EndpointId,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    status: StatusQuery = None,
    status_code_class: StatusCodeClassQuery = None,
    channel: ChannelQuery = None,
    before: DateQuery = None,
    after: DateQuery = None,
    with_content: Annotated[bool, Query()] = True,
    with_msg: Annotated[
        bool, Query(description="Include each attempt's message (`msg`), as the SDKs read it")
    ] = False,
    event_types: EventTypesQuery = None,
) -> Response:
    app_id = app.id  # an unknown application's 404 comes before the query's 422
    query = _by_endpoint(
        endpoint_id, status, status_code_class, channel, before, after, event_types
    )
    return await _list_attempts(app, app_id, query, limit, iterator, with_content, with_msg)


@router.get(
    "/attempt/endpoint/{endpoint_id}/count",
    response_model=CountOut,
    operation_id="v1.message-attempt.count-by-endpoint",
    summary="Count Attempts By Endpoint",
    description=(
        f"How many attempts the endpoint's attempt list holds with these filters, counted up "
        f"to {COUNT_CAP} (`approximated: true` beyond)."
    ),
)
async def count_attempts_by_endpoint(
    app: AppCtx,
    endpoint_id: EndpointId,
    status: StatusQuery = None,
    status_code_class: StatusCodeClassQuery = None,
    channel: ChannelQuery = None,
    before: DateQuery = None,
    after: DateQuery = None,
    event_types: EventTypesQuery = None,
) -> Response:
    app_id = app.id
    query = _by_endpoint(
        endpoint_id, status, status_code_class, channel, before, after, event_types
    )
    count, more = await app.services.messages.count_attempts(app_id, query, COUNT_CAP)
    return json_response({"count": count, "approximated": more})


@router.get(
    "/attempt/msg/{msg_id}",
    response_model=ListResponseMessageAttemptOut,
    operation_id="v1.message-attempt.list-by-msg",
    summary="List Attempts By Msg",
    description="The message's attempts, newest first.",
)
async def list_attempts_by_msg(
    app: AppCtx,
    msg_id: MsgId,
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
    app_id = app.id
    query = AttemptQuery(
        endpoint=endpoint_id,
        message=msg_id,
        statuses=_statuses(status),
        event_types=event_types_filter(event_types),
        before=date_ms(before),
        after=date_ms(after),
        status_code_class=None if status_code_class is None else int(status_code_class),
        channel=channel,
    )
    return await _list_attempts(app, app_id, query, limit, iterator, with_content)


@router.get(
    "/endpoint/{endpoint_id}/msg",
    response_model=ListResponseEndpointMessageOut,
    operation_id="v1.message-attempt.list-attempted-messages",
    summary="List Attempted Messages",
    description="The messages sent (or to be sent) to the endpoint, newest first, with the "
    "status of their delivery to it. With content, a page may hold fewer than `limit` "
    "messages (as in List Messages).",
)
async def list_attempted_messages(
    app: AppCtx,
    endpoint_id: EndpointId,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    channel: ChannelQuery = None,
    status: StatusQuery = None,
    before: DateQuery = None,
    after: DateQuery = None,
    with_content: Annotated[bool, Query()] = True,
    event_types: EventTypesQuery = None,
) -> Response:
    app_id = app.id
    filt = MessageFilter(
        event_types=event_types_filter(event_types),
        channel=channel,
        before=date_ms(before),
        after=date_ms(after),
    )
    page = await app.services.messages.endpoint_messages(
        app_id,
        endpoint_id,
        page_request(limit, iterator, True),
        None if status is None else mapping.MESSAGE_TO_DELIVERY_STATUS[int(status)],
        filt,
        with_content,
    )
    return json_response(
        mapping.list_out(
            page,
            lambda item: mapping.endpoint_message_out(item[0], item[1], with_content),
            lambda item: item[1].id,
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
    app: AppCtx,
    msg_id: MsgId,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
) -> Response:
    page = await app.services.messages.destinations(
        app.id, msg_id, page_request(limit, iterator, False)
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
async def get_attempt(app: AppCtx, msg_id: MsgId, attempt_id: AttemptId) -> Response:
    attempt = await app.services.messages.get_attempt(app.id, msg_id, attempt_id)
    return json_response(mapping.attempt_out(attempt))


@router.get(
    "/msg/{msg_id}/attempt/{attempt_id}/headers",
    response_model=MessageAttemptHeadersOut,
    operation_id="v1.message-attempt.get-headers",
    summary="Get Attempt Headers",
    description="The headers the attempt sent, as stored with it: a sensitive endpoint header "
    "is named in `sensitive`, its value never stored. An attempt recorded before hookpost "
    "stored headers answers `recorded: false` with the headers every version sent.",
)
async def get_attempt_headers(app: AppCtx, msg_id: MsgId, attempt_id: AttemptId) -> Response:
    headers = await app.services.messages.attempt_headers(app.id, msg_id, attempt_id)
    return json_response(mapping.attempt_headers_out(headers))


@router.delete(
    "/msg/{msg_id}/attempt/{attempt_id}/content",
    status_code=204,
    response_class=Response,
    operation_id="v1.message-attempt.expunge-content",
    summary="Delete Attempt Response Body",
)
async def expunge_attempt_content(app: AppCtx, msg_id: MsgId, attempt_id: AttemptId) -> Response:
    await app.services.messages.expunge_attempt(app.id, msg_id, attempt_id)
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
async def resend(app: AppCtx, msg_id: MsgId, endpoint_id: EndpointId) -> Response:
    await app.services.messages.resend(app.id, msg_id, endpoint_id)
    return json_response({}, 202)
