"""/api/v1/operational-webhook/endpoint: the operator's own endpoints, told about endpoint
changes and failing deliveries (docs/decisions/0029-operational-webhooks.md). Admin tokens
only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    IDEMPOTENT,
    AuthCtx,
    EndpointId,
    Iterator,
    Limit,
    StrictJsonRoute,
    empty,
    json_response,
    ordering,
    page_request,
)
from hookpost.api.schemas import (
    EndpointHeadersIn,
    EndpointHeadersOut,
    EndpointSecretOut,
    EndpointSecretRotateIn,
    ListResponseOperationalWebhookEndpointOut,
    OperationalWebhookEndpointIn,
    OperationalWebhookEndpointOut,
    OperationalWebhookEndpointUpsertIn,
)
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import Endpoint

router = APIRouter(
    prefix="/api/v1/operational-webhook/endpoint",
    tags=["Webhook Endpoint"],
    responses=ERRORS,
    route_class=StrictJsonRoute,
)


def _id(ep: Endpoint) -> str:
    return ep.id


def _new(
    body: OperationalWebhookEndpointUpsertIn,
    headers: dict[str, str] | None = None,
    secret: str | None = None,
) -> NewEndpoint:
    return NewEndpoint(
        url=body.url,
        description=body.description,
        uid=body.uid,
        disabled=body.disabled,
        throttle_rate=body.throttle_rate,
        event_types=body.event_types,
        metadata=dict(body.metadata),
        headers=headers or {},
        secret=secret,
    )


def _out(ep: Endpoint, status: int = 200) -> Response:
    return json_response(mapping.operational_endpoint_out(ep), status)


@router.get(
    "",
    response_model=ListResponseOperationalWebhookEndpointOut,
    operation_id="v1.operational-webhook.endpoint.list",
    summary="List Operational Webhook Endpoints",
)
async def list_endpoints(
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    order: Annotated[Literal["ascending", "descending"] | None, Query()] = None,
) -> Response:
    page = await c.services.operational.list(page_request(limit, iterator, ordering(order)))
    return json_response(mapping.list_out(page, mapping.operational_endpoint_out, _id))


@router.post(
    "",
    status_code=201,
    response_model=OperationalWebhookEndpointOut,
    operation_id="v1.operational-webhook.endpoint.create",
    summary="Create Operational Webhook Endpoint",
    description=(
        "Its deliveries are signed (Standard Webhooks), retried and logged like any other. "
        "The endpoints count against `HOOKPOST_MAX_ENDPOINTS_PER_APP`."
    ),
    openapi_extra=IDEMPOTENT,
)
async def create_endpoint(c: AuthCtx, body: OperationalWebhookEndpointIn) -> Response:
    ep = await c.services.operational.create(_new(body, dict(body.headers or {}), body.secret))
    return _out(ep, 201)


@router.get(
    "/{endpoint_id}",
    response_model=OperationalWebhookEndpointOut,
    operation_id="v1.operational-webhook.endpoint.get",
    summary="Get Operational Webhook Endpoint",
)
async def get_endpoint(c: AuthCtx, endpoint_id: EndpointId) -> Response:
    return _out(await c.services.operational.get(endpoint_id))


@router.put(
    "/{endpoint_id}",
    response_model=OperationalWebhookEndpointOut,
    operation_id="v1.operational-webhook.endpoint.upsert",
    summary="Update Operational Webhook Endpoint",
    description="Creates the endpoint (201) if it does not exist.",
    responses={201: {"model": OperationalWebhookEndpointOut, "description": "Created"}},
)
async def upsert_endpoint(
    c: AuthCtx, endpoint_id: EndpointId, body: OperationalWebhookEndpointUpsertIn
) -> Response:
    ep, created = await c.services.operational.upsert(endpoint_id, _new(body))
    return _out(ep, 201 if created else 200)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    operation_id="v1.operational-webhook.endpoint.delete",
    summary="Delete Operational Webhook Endpoint",
)
async def delete_endpoint(c: AuthCtx, endpoint_id: EndpointId) -> Response:
    await c.services.operational.delete(endpoint_id)
    return empty()


@router.get(
    "/{endpoint_id}/secret",
    response_model=EndpointSecretOut,
    operation_id="v1.operational-webhook.endpoint.get-secret",
    summary="Get Operational Webhook Endpoint Secret",
    description="With `HOOKPOST_REVEAL_SECRETS=0`: 403, as for an application's endpoint.",
)
async def get_endpoint_secret(c: AuthCtx, endpoint_id: EndpointId) -> Response:
    return json_response({"key": await c.services.operational.get_secret(endpoint_id)})


@router.post(
    "/{endpoint_id}/secret/rotate",
    status_code=204,
    response_class=Response,
    operation_id="v1.operational-webhook.endpoint.rotate-secret",
    summary="Rotate Operational Webhook Endpoint Secret",
    description=(
        "The previous key keeps signing for `gracePeriodSeconds` (default 24 hours). Answers "
        "204 as the reference says (the svix SDK expects no body here)."
    ),
    openapi_extra=IDEMPOTENT,
)
async def rotate_endpoint_secret(
    c: AuthCtx, endpoint_id: EndpointId, body: EndpointSecretRotateIn
) -> Response:
    await c.services.operational.rotate_secret(endpoint_id, body.key, body.grace_period_seconds)
    return empty()


@router.get(
    "/{endpoint_id}/headers",
    response_model=EndpointHeadersOut,
    operation_id="v1.operational-webhook.endpoint.get-headers",
    summary="Get Operational Webhook Endpoint Headers",
)
async def get_endpoint_headers(c: AuthCtx, endpoint_id: EndpointId) -> Response:
    return json_response(mapping.headers_out(await c.services.operational.get_headers(endpoint_id)))


@router.put(
    "/{endpoint_id}/headers",
    status_code=204,
    response_class=Response,
    operation_id="v1.operational-webhook.endpoint.set-headers",
    summary="Set Operational Webhook Endpoint Headers",
)
async def set_endpoint_headers(
    c: AuthCtx, endpoint_id: EndpointId, body: EndpointHeadersIn
) -> Response:
    await c.services.operational.set_headers(endpoint_id, dict(body.headers))
    return empty()
