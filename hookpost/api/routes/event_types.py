"""/api/v1/event-type: the event-type catalog (shared by all applications)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.inputs import event_type_changes
from hookpost.api.inputs import new_event_type as _new_event_type
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    IDEMPOTENT,
    AuthCtx,
    EventTypeName,
    Iterator,
    Limit,
    StrictJsonRoute,
    empty,
    json_response,
    ordering,
    page_request,
)
from hookpost.api.schemas import (
    EventTypeIn,
    EventTypeOut,
    EventTypePatch,
    EventTypeUpdate,
    ListResponseEventTypeOut,
    RetryScheduleInOut,
)
from hookpost.domain.models import EventType

router = APIRouter(
    prefix="/api/v1/event-type", tags=["Event Type"], responses=ERRORS, route_class=StrictJsonRoute
)


def _name(et: EventType) -> str:
    return et.name


@router.get(
    "",
    response_model=ListResponseEventTypeOut,
    operation_id="v1.event-type.list",
    summary="List Event Types",
)
async def list_event_types(
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    order: Annotated[Literal["ascending", "descending"] | None, Query()] = None,
    include_archived: Annotated[bool, Query()] = False,
    with_content: Annotated[bool, Query()] = False,
) -> Response:
    page = await c.services.event_types.list(
        page_request(limit, iterator, ordering(order)), include_archived
    )
    return json_response(
        mapping.list_out(page, lambda et: mapping.event_type_out(et, with_content), _name)
    )


@router.post(
    "",
    status_code=201,
    response_model=EventTypeOut,
    operation_id="v1.event-type.create",
    summary="Create Event Type",
    description="Create a new event type, or unarchive an archived one (409 if it exists).",
    openapi_extra=IDEMPOTENT,
)
async def create_event_type(body: EventTypeIn, c: AuthCtx) -> Response:
    et = await c.services.event_types.create(_new_event_type(body.name, body))
    return json_response(mapping.event_type_out(et), 201)


@router.get(
    "/{event_type_name}",
    response_model=EventTypeOut,
    operation_id="v1.event-type.get",
    summary="Get Event Type",
)
async def get_event_type(event_type_name: EventTypeName, c: AuthCtx) -> Response:
    return json_response(mapping.event_type_out(await c.services.event_types.get(event_type_name)))


@router.put(
    "/{event_type_name}",
    response_model=EventTypeOut,
    operation_id="v1.event-type.update",
    summary="Update Event Type",
    responses={201: {"model": EventTypeOut, "description": "Created"}},
)
async def update_event_type(
    event_type_name: EventTypeName, body: EventTypeUpdate, c: AuthCtx
) -> Response:
    new = _new_event_type(event_type_name, body)
    et, created = await c.services.event_types.upsert(new)
    return json_response(mapping.event_type_out(et), 201 if created else 200)


@router.patch(
    "/{event_type_name}",
    response_model=EventTypeOut,
    operation_id="v1.event-type.patch",
    summary="Patch Event Type",
)
async def patch_event_type(
    event_type_name: EventTypeName, body: EventTypePatch, c: AuthCtx
) -> Response:
    changes = event_type_changes(body)
    et = await c.services.event_types.patch(event_type_name, changes)
    return json_response(mapping.event_type_out(et))


@router.delete(
    "/{event_type_name}",
    status_code=204,
    response_class=Response,
    operation_id="v1.event-type.delete",
    summary="Delete Event Type",
    description="Archive the event type; with `expunge=true` delete it for good.",
)
async def delete_event_type(
    event_type_name: EventTypeName,
    c: AuthCtx,
    expunge: Annotated[bool, Query()] = False,
) -> Response:
    await c.services.event_types.delete(event_type_name, expunge)
    return empty()


_RETRY_NOTE = (
    " hookpost applies an endpoint's `retryPolicy` first, then this schedule, then "
    "`HOOKPOST_RETRY_SCHEDULE`; workers pick a change up within a few seconds "
    "(`HOOKPOST_OPTIONS_REFRESH_S`)."
)


def _schedule_out(schedule: list[int] | None) -> Response:
    durations = None if schedule is None else [{"secs": s, "nanos": 0} for s in schedule]
    return json_response({"retrySchedule": durations})


@router.get(
    "/{event_type_name}/retry-schedule",
    response_model=RetryScheduleInOut,
    operation_id="v1.event-type.get-retry-schedule",
    summary="Get Retry Schedule",
    description="Gets the retry schedule for messages using the given event type." + _RETRY_NOTE,
)
async def get_retry_schedule(event_type_name: EventTypeName, c: AuthCtx) -> Response:
    return _schedule_out(await c.services.event_types.get_retry_schedule(event_type_name))


@router.put(
    "/{event_type_name}/retry-schedule",
    response_model=RetryScheduleInOut,
    operation_id="v1.event-type.set-retry-schedule",
    summary="Set Retry Schedule",
    description=(
        "Sets a retry schedule for all messages using the given event type; null or an "
        "absent `retrySchedule` removes it." + _RETRY_NOTE
    ),
)
async def set_retry_schedule(
    event_type_name: EventTypeName, body: RetryScheduleInOut, c: AuthCtx
) -> Response:
    delays = None
    if body.retry_schedule is not None:
        delays = [d if isinstance(d, int) else d.secs + (d.nanos > 0) for d in body.retry_schedule]
    saved = await c.services.event_types.set_retry_schedule(event_type_name, delays)
    return _schedule_out(saved)
