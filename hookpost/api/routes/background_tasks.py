"""/api/v1/background-task and the usage statistics that run as background tasks
(docs/decisions/0034-background-tasks.md). Admin tokens only: a task may concern any
application."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    IDEMPOTENT,
    AuthCtx,
    Limit,
    StrictJsonRoute,
    json_response,
    ordering,
    page_request,
)
from hookpost.api.schemas import (
    AggregateEventTypesOut,
    AppUsageStatsIn,
    AppUsageStatsOut,
    BackgroundTaskOut,
    BackgroundTaskStatus,
    BackgroundTaskType,
    ListResponseBackgroundTaskOut,
)
from hookpost.domain.models import BackgroundTask

router = APIRouter(tags=["Background Task"], responses=ERRORS, route_class=StrictJsonRoute)

TASK_ID_PATTERN = r"^-?qtask_[A-Za-z0-9]{1,40}$"
TaskId = Annotated[str, Path(max_length=64, pattern=r"^qtask_[A-Za-z0-9]{1,40}$")]
TaskIterator = Annotated[
    str | None,
    Query(max_length=64, pattern=TASK_ID_PATTERN, description="The iterator of a prior page"),
]


def _id(task: BackgroundTask) -> str:
    return task.id


@router.get(
    "/api/v1/background-task",
    response_model=ListResponseBackgroundTaskOut,
    operation_id="v1.background-task.list",
    summary="List Background Tasks",
    description="The background tasks, newest first unless `order` says otherwise.",
)
async def list_tasks(
    c: AuthCtx,
    status: Annotated[BackgroundTaskStatus | None, Query()] = None,
    task: Annotated[BackgroundTaskType | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT,
    iterator: TaskIterator = None,
    order: Annotated[Literal["ascending", "descending"] | None, Query()] = None,
) -> Response:
    page = await c.services.tasks.list(
        page_request(limit, iterator, ordering(order, default_descending=True)),
        None if status is None else status.value,
        None if task is None else task.value,
    )
    return json_response(mapping.list_out(page, mapping.background_task_out, _id))


@router.get(
    "/api/v1/background-task/{task_id}",
    response_model=BackgroundTaskOut,
    operation_id="v1.background-task.get",
    summary="Get Background Task",
    description="`data` holds what the task reports once finished (`{}` while running).",
)
async def get_task(c: AuthCtx, task_id: TaskId) -> Response:
    return json_response(mapping.background_task_out(await c.services.tasks.get(task_id)))


@router.post(
    "/api/v1/stats/usage/app",
    status_code=202,
    response_model=AppUsageStatsOut,
    operation_id="v1.statistics.aggregate-app-stats",
    summary="Aggregate App Stats",
    tags=["Statistics"],
    description=(
        "A background task that counts, per application, the deliveries (`messageDestinations`) "
        "of messages created in [since, until). Svix links a report to download; hookpost "
        "keeps the result in the finished task's `data`: "
        '`{"appStats": [{"appId", "appUid", "messageDestinations"}]}`.'
    ),
    openapi_extra=IDEMPOTENT,
)
async def aggregate_app_stats(c: AuthCtx, body: AppUsageStatsIn) -> Response:
    task, unresolved = await c.services.tasks.app_usage(
        mapping.to_ms(body.since), mapping.to_ms(body.until), body.app_ids
    )
    return json_response({**mapping.task_out(task), "unresolvedAppIds": unresolved}, 202)


@router.put(
    "/api/v1/stats/usage/event-types",
    status_code=202,
    response_model=AggregateEventTypesOut,
    operation_id="v1.statistics.aggregate-event-types",
    summary="Aggregate Event Types",
    tags=["Statistics"],
    description=(
        "A background task that lists, per application, the event types its endpoints "
        "subscribe to; the result is in the finished task's `data`: "
        '`{"event_types": [{"appId", "explicitlySubscribedEventTypes", '
        '"hasCatchAllEndpoint"}]}`.'
    ),
)
async def aggregate_event_types(c: AuthCtx) -> Response:
    task = await c.services.tasks.aggregate_event_types()
    return json_response(mapping.task_out(task), 202)
