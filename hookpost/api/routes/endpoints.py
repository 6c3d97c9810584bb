"""/api/v1/app/{app_id}/endpoint: subscriber endpoints, their secrets, headers and operations."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    IDEMPOTENT,
    AppId,
    AuthCtx,
    DateQuery,
    EndpointId,
    Iterator,
    Limit,
    StrictJsonRoute,
    date_ms,
    empty,
    json_response,
    ordering,
    page_request,
)
from hookpost.api.schemas import (
    EndpointHeadersIn,
    EndpointHeadersOut,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointSecretOut,
    EndpointSecretRotateIn,
    EndpointStats,
    EndpointUpdate,
    EventExampleIn,
    ListResponseEndpointOut,
    MessageOut,
    RecoverIn,
    RecoverOut,
)
from hookpost.domain import ids
from hookpost.domain.errors import NotFound
from hookpost.domain.models import Endpoint, EventType

router = APIRouter(
    prefix="/api/v1/app/{app_id}/endpoint",
    tags=["Endpoint"],
    responses=ERRORS,
    route_class=StrictJsonRoute,
)


def _id(ep: Endpoint) -> str:
    return ep.id


def _update_fields(body: EndpointUpdate) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "url": body.url,
        "description": body.description,
        "disabled": body.disabled,
        "throttle_rate": body.throttle_rate,
        "event_types": body.event_types,
        "channels": body.channels,
        "metadata": dict(body.metadata),
    }
    if body.uid is not None:
        fields["uid"] = body.uid
    return fields


def _patch_changes(body: EndpointPatch) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("throttle_rate") == 0:  # the reference's Patch allows 0: no limit
        changes["throttle_rate"] = None
    for key in ("event_types", "channels"):  # an empty filter means "everything"
        if key in changes and not changes[key]:
            changes[key] = None
    return changes


# --------------------------------------------------------------------------- CRUD


@router.get(
    "",
    response_model=ListResponseEndpointOut,
    operation_id="v1.endpoint.list",
    summary="List Endpoints",
)
async def list_endpoints(
    app_id: AppId,
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    order: Annotated[Literal["ascending", "descending"] | None, Query()] = None,
) -> Response:
    await c.app(app_id)
    page = await c.services.endpoints.list(app_id, page_request(limit, iterator, ordering(order)))
    return json_response(mapping.list_out(page, mapping.endpoint_out, _id))


@router.post(
    "",
    status_code=201,
    response_model=EndpointOut,
    operation_id="v1.endpoint.create",
    summary="Create Endpoint",
    openapi_extra=IDEMPOTENT,
)
async def create_endpoint(app_id: AppId, body: EndpointIn, c: AuthCtx) -> Response:
    await c.app(app_id)
    fields = _update_fields(body)
    fields["headers"] = dict(body.headers or {})
    if body.secret is not None:
        fields["secret"] = body.secret
    ep = await c.services.endpoints.create(app_id, fields)
    return json_response(mapping.endpoint_out(ep), 201)


@router.get(
    "/{endpoint_id}",
    response_model=EndpointOut,
    operation_id="v1.endpoint.get",
    summary="Get Endpoint",
)
async def get_endpoint(app_id: AppId, endpoint_id: EndpointId, c: AuthCtx) -> Response:
    await c.app(app_id)
    return json_response(mapping.endpoint_out(await c.services.endpoints.get(app_id, endpoint_id)))


@router.put(
    "/{endpoint_id}",
    response_model=EndpointOut,
    operation_id="v1.endpoint.update",
    summary="Update Endpoint",
    responses={201: {"model": EndpointOut, "description": "Created"}},
)
async def update_endpoint(
    app_id: AppId, endpoint_id: EndpointId, body: EndpointUpdate, c: AuthCtx
) -> Response:
    await c.app(app_id)
    ep, created = await c.services.endpoints.upsert(app_id, endpoint_id, _update_fields(body))
    return json_response(mapping.endpoint_out(ep), 201 if created else 200)


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    operation_id="v1.endpoint.patch",
    summary="Patch Endpoint",
)
async def patch_endpoint(
    app_id: AppId, endpoint_id: EndpointId, body: EndpointPatch, c: AuthCtx
) -> Response:
    await c.app(app_id)
    ep = await c.services.endpoints.patch(app_id, endpoint_id, _patch_changes(body))
    return json_response(mapping.endpoint_out(ep))


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    operation_id="v1.endpoint.delete",
    summary="Delete Endpoint",
)
async def delete_endpoint(app_id: AppId, endpoint_id: EndpointId, c: AuthCtx) -> Response:
    await c.app(app_id)
    await c.services.endpoints.delete(app_id, endpoint_id)
    return empty()


# --------------------------------------------------------------------------- secret


@router.get(
    "/{endpoint_id}/secret",
    response_model=EndpointSecretOut,
    operation_id="v1.endpoint.get-secret",
    summary="Get Endpoint Secret",
)
async def get_endpoint_secret(app_id: AppId, endpoint_id: EndpointId, c: AuthCtx) -> Response:
    await c.app(app_id)
    return json_response({"key": await c.services.endpoints.get_secret(app_id, endpoint_id)})


@router.post(
    "/{endpoint_id}/secret/rotate",
    response_model=EndpointSecretOut,
    operation_id="v1.endpoint.rotate-secret",
    summary="Rotate Endpoint Secret",
    description=(
        "The new key signs from now on; the previous one keeps signing (as a second signature) "
        "for `gracePeriodSeconds` (default 24 hours). Answers 200 with the new key (the Svix "
        "reference says 204; the svix SDK parses an `EndpointSecretOut` body)."
    ),
    openapi_extra=IDEMPOTENT,
)
async def rotate_endpoint_secret(
    app_id: AppId, endpoint_id: EndpointId, body: EndpointSecretRotateIn, c: AuthCtx
) -> Response:
    await c.app(app_id)
    ep = await c.services.endpoints.rotate_secret(
        app_id, endpoint_id, body.key, body.grace_period_seconds
    )
    return json_response({"key": ep.secret})


# --------------------------------------------------------------------------- headers


@router.get(
    "/{endpoint_id}/headers",
    response_model=EndpointHeadersOut,
    operation_id="v1.endpoint.get-headers",
    summary="Get Endpoint Headers",
)
async def get_endpoint_headers(app_id: AppId, endpoint_id: EndpointId, c: AuthCtx) -> Response:
    await c.app(app_id)
    headers = await c.services.endpoints.get_headers(app_id, endpoint_id)
    return json_response(mapping.headers_out(headers))


@router.put(
    "/{endpoint_id}/headers",
    status_code=204,
    response_class=Response,
    operation_id="v1.endpoint.update-headers",
    summary="Update Endpoint Headers",
)
async def update_endpoint_headers(
    app_id: AppId, endpoint_id: EndpointId, body: EndpointHeadersIn, c: AuthCtx
) -> Response:
    await c.app(app_id)
    await c.services.endpoints.set_headers(app_id, endpoint_id, dict(body.headers), merge=False)
    return empty()


@router.patch(
    "/{endpoint_id}/headers",
    status_code=204,
    response_class=Response,
    operation_id="v1.endpoint.patch-headers",
    summary="Patch Endpoint Headers",
)
async def patch_endpoint_headers(
    app_id: AppId, endpoint_id: EndpointId, body: EndpointHeadersPatchIn, c: AuthCtx
) -> Response:
    await c.app(app_id)
    await c.services.endpoints.set_headers(
        app_id,
        endpoint_id,
        body.headers_to_set(),
        merge=True,
        delete=tuple(body.headers_to_delete()),
    )
    return empty()


# --------------------------------------------------------------------------- operations


@router.get(
    "/{endpoint_id}/stats",
    response_model=EndpointStats,
    operation_id="v1.endpoint.get-stats",
    summary="Endpoint Stats",
)
async def get_endpoint_stats(
    app_id: AppId,
    endpoint_id: EndpointId,
    c: AuthCtx,
    since: DateQuery = None,
    until: DateQuery = None,
) -> Response:
    await c.app(app_id)
    stats = await c.services.endpoints.stats(app_id, endpoint_id, date_ms(since), date_ms(until))
    return json_response(mapping.stats_out(stats))


@router.post(
    "/{endpoint_id}/recover",
    status_code=202,
    response_model=RecoverOut,
    operation_id="v1.endpoint.recover",
    summary="Recover Failed Webhooks",
    description=(
        "Queue again every failed delivery to this endpoint of messages created in "
        "[since, until). The deliveries are queued before the answer is sent."
    ),
    openapi_extra=IDEMPOTENT,
)
async def recover_endpoint(
    app_id: AppId, endpoint_id: EndpointId, body: RecoverIn, c: AuthCtx
) -> Response:
    await c.app(app_id)
    await c.services.endpoints.recover(
        app_id, endpoint_id, mapping.to_ms(body.since), mapping.to_ms_opt(body.until)
    )
    now = int(time.time() * 1000)
    out = {
        "id": ids.new_id(ids.TASK, now),
        "status": "running",
        "task": "endpoint.recover",
        "updatedAt": mapping.iso(now),
    }
    return json_response(out, 202)


def example_payload(et: EventType | None, event_type: str, index: int) -> dict[str, Any]:
    """The first (or ``index``-th) example of the event type's newest schema, if it has one."""
    if et is not None and et.schemas:
        for version in sorted(et.schemas, reverse=True):
            examples = et.schemas[version].get("examples")
            if isinstance(examples, list) and examples:
                chosen = examples[index] if 0 <= index < len(examples) else examples[0]
                if isinstance(chosen, dict):
                    return chosen
    return {"example": True, "eventType": event_type, "message": "an example event"}


@router.post(
    "/{endpoint_id}/send-example",
    response_model=MessageOut,
    operation_id="v1.endpoint.send-example",
    summary="Send Event Type Example Message",
    description=(
        "Send an example message of the event type to this endpoint only. The payload is the "
        "first example in the event type's schema, else a generic example object."
    ),
    openapi_extra=IDEMPOTENT,
)
async def send_example(
    app_id: AppId, endpoint_id: EndpointId, body: EventExampleIn, c: AuthCtx
) -> Response:
    await c.app(app_id)
    ep = await c.services.endpoints.get(app_id, endpoint_id)
    try:
        et: EventType | None = await c.services.event_types.get(body.event_type)
    except NotFound:
        et = None
    payload = example_payload(et, body.event_type, body.example_index)
    created = await c.services.messages.send(
        ep.app_id, body.event_type, payload, endpoint_ids=[ep.id]
    )
    return json_response(mapping.message_out(created.message))
