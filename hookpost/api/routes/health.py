"""/api/v1/health: unauthenticated health checks."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from hookpost.api.routes.common import ERRORS

router = APIRouter(prefix="/api/v1/health", tags=["Health"])


@router.get(
    "",
    status_code=204,
    response_class=Response,
    operation_id="v1.health.get",
    summary="Health",
    description="204 when the API and its database are up; 503 when the database is not.",
    responses={503: ERRORS[503]},
)
async def health(request: Request) -> Response:
    await request.app.state.hp.services.status.ping()  # StoreUnavailable -> 503
    return Response(status_code=204)


@router.head("", status_code=204, response_class=Response, operation_id="v1.health.head")
async def health_head(request: Request) -> Response:
    return await health(request)


@router.get(
    "/ping",
    status_code=204,
    response_class=Response,
    operation_id="v1.health.ping",
    summary="Ping",
    description="204 while the process serves requests (no database check).",
)
async def ping() -> Response:
    return Response(status_code=204)


@router.head("/ping", status_code=204, response_class=Response, operation_id="v1.health.ping-head")
async def ping_head() -> Response:
    return Response(status_code=204)
