"""/api/v1/app: applications (tenants)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.inputs import app_changes
from hookpost.api.inputs import new_app as _new_app
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    IDEMPOTENT,
    AppCtx,
    AuthCtx,
    Iterator,
    Limit,
    StrictJsonRoute,
    empty,
    json_response,
    ordering,
    page_request,
)
from hookpost.api.schemas import (
    ApplicationIn,
    ApplicationOut,
    ApplicationPatch,
    ListResponseApplicationOut,
)
from hookpost.domain.errors import Conflict, NotFound
from hookpost.domain.models import Page

router = APIRouter(
    prefix="/api/v1/app", tags=["Application"], responses=ERRORS, route_class=StrictJsonRoute
)


@router.get(
    "",
    response_model=ListResponseApplicationOut,
    operation_id="v1.application.list",
    summary="List Applications",
)
async def list_applications(
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    order: Annotated[Literal["ascending", "descending"] | None, Query()] = None,
) -> Response:
    if not c.is_admin:
        # An app-scoped token sees exactly its own application.
        assert c.token.app_id is not None
        try:
            own = [await c.services.apps.get(c.token.app_id)]
        except NotFound:
            own = []
        page = Page(items=own if iterator is None else [], done=True)
    else:
        page = await c.services.apps.list(page_request(limit, iterator, ordering(order)))
    return json_response(mapping.list_out(page, mapping.app_out, lambda a: a.id))


@router.post(
    "",
    status_code=201,
    response_model=ApplicationOut,
    operation_id="v1.application.create",
    summary="Create Application",
    responses={200: {"model": ApplicationOut, "description": "Existing (get_if_exists)"}},
    openapi_extra=IDEMPOTENT,
)
async def create_application(
    body: ApplicationIn,
    c: AuthCtx,
    get_if_exists: Annotated[bool, Query()] = False,
) -> Response:
    apps = c.services.apps
    if get_if_exists and body.uid is not None:
        try:
            return json_response(mapping.app_out(await apps.get(body.uid)), 200)
        except NotFound:
            pass
    try:
        app = await apps.create(body.name, body.uid, dict(body.metadata), body.throttle_rate)
    except Conflict:
        if get_if_exists and body.uid is not None:  # created concurrently
            return json_response(mapping.app_out(await apps.get(body.uid)), 200)
        raise
    return json_response(mapping.app_out(app), 201)


@router.get(
    "/{app_id}",
    response_model=ApplicationOut,
    operation_id="v1.application.get",
    summary="Get Application",
)
async def get_application(app: AppCtx) -> Response:
    return json_response(mapping.app_out(await app.services.apps.get(app.id)))


@router.put(
    "/{app_id}",
    response_model=ApplicationOut,
    operation_id="v1.application.update",
    summary="Update Application",
    responses={201: {"model": ApplicationOut, "description": "Created"}},
)
async def update_application(app: AppCtx, body: ApplicationIn) -> Response:
    app.check_access()  # another tenant's app: 404 (an unknown one is created)
    updated, created = await app.services.apps.upsert(
        app.given, _new_app(body), app_id=app.id_if_exists()
    )
    return json_response(mapping.app_out(updated), 201 if created else 200)


@router.patch(
    "/{app_id}",
    response_model=ApplicationOut,
    operation_id="v1.application.patch",
    summary="Patch Application",
)
async def patch_application(app: AppCtx, body: ApplicationPatch) -> Response:
    app.check_access()  # another tenant's app: 404; then the permission: 403
    patched = await app.services.apps.patch(app.id, app_changes(body))
    return json_response(mapping.app_out(patched))


@router.delete(
    "/{app_id}",
    status_code=204,
    response_class=Response,
    operation_id="v1.application.delete",
    summary="Delete Application",
    description=(
        "The application (its uid free again) and its endpoints are gone from the API, and "
        "none of its messages is sent any more, at once; its rows are then deleted in batches "
        "before the answer."
    ),
)
async def delete_application(app: AppCtx) -> Response:
    app.check_access()  # another tenant's app: 404; then the permission: 403
    await app.services.apps.delete(app.id)
    return empty()
