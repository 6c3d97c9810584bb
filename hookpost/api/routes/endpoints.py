"""/api/v1/app/{app_id}/endpoint: subscriber endpoints, their secrets, headers and operations."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    IDEMPOTENT,
    AppCtx,
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
    BulkReplayIn,
    EndpointCreatedOut,
    EndpointHeadersIn,
    EndpointHeadersOut,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointSecretOut,
    EndpointSecretRotateIn,
    EndpointStats,
    EndpointThrottleRateStatusOut,
    EndpointUpdate,
    EndpointWrittenOut,
    EventExampleIn,
    ListResponseEndpointOut,
    MessageOut,
    RecoverIn,
    RecoverOut,
    ReplayIn,
    ReplayOut,
    RetryPolicyIn,
)
from hookpost.domain.errors import InvalidInput
from hookpost.domain.inputs import UNSET, EndpointChanges, NewEndpoint
from hookpost.domain.models import Endpoint
from hookpost.domain.retry import RetryPolicy, policy_from_dict
from hookpost.domain.signing import shown_key
from hookpost.services import Services

router = APIRouter(
    prefix="/api/v1/app/{app_id}/endpoint",
    tags=["Endpoint"],
    responses=ERRORS,
    route_class=StrictJsonRoute,
)


def _id(ep: Endpoint) -> str:
    return ep.id


def _new_endpoint(
    body: EndpointUpdate, headers: dict[str, str] | None = None, secret: str | None = None
) -> NewEndpoint:
    """PUT's body (``EndpointUpdate``); POST's adds the headers and the secret."""
    sent = body.model_fields_set
    return NewEndpoint(
        url=body.url,
        description=body.description,
        uid=body.uid,
        disabled=body.disabled,
        throttle_rate=body.throttle_rate,
        event_types=body.event_types,
        channels=body.channels,
        metadata=dict(body.metadata),
        headers=headers or {},
        secret=secret,
        # Absent from a PUT: left as it is (extensions the svix SDKs do not send).
        payload_filter=body.payload_filter if "payload_filter" in sent else UNSET,
        signature_scheme=body.signature_scheme or UNSET,
        signature_header=body.signature_header if "signature_header" in sent else UNSET,
        retry_policy=_policy(body.retry_policy) if "retry_policy" in sent else UNSET,
        timeout_s=body.timeout_seconds if "timeout_seconds" in sent else UNSET,
        ordered=body.ordered if "ordered" in sent else UNSET,
        send_traceparent=body.send_traceparent if "send_traceparent" in sent else UNSET,
    )


def _policy(body: RetryPolicyIn | None) -> RetryPolicy | None:
    """The domain's policy; InvalidInput (422) names the field, e.g. retryPolicy.maxAttempts."""
    if body is None:
        return None
    return policy_from_dict(body.model_dump(by_alias=True, exclude_unset=True))


async def _written(
    services: Services, ep: Endpoint, status: int = 200, created: bool = False
) -> Response:
    """``EndpointWrittenOut`` (``EndpointCreatedOut`` for a new endpoint: with its secret)."""
    warnings = await services.endpoints.subscription_warnings(ep)
    shown = shown_key(ep.signature_scheme, ep.secret) if created else None  # whpk_, never whsk_
    out = mapping.endpoint_written_out(ep, warnings, shown)
    return json_response(out, status)


def _changes(body: EndpointPatch) -> EndpointChanges:
    changes = body.model_dump(exclude_unset=True, exclude={"retry_policy", "timeout_seconds"})
    sent = body.model_fields_set
    if "retry_policy" in sent:
        changes["retry_policy"] = _policy(body.retry_policy)
    if "timeout_seconds" in sent:
        changes["timeout_s"] = body.timeout_seconds
    if changes.get("throttle_rate") == 0:  # the reference's Patch allows 0: no limit
        changes["throttle_rate"] = None
    for key in ("event_types", "channels"):  # an empty filter means "everything"
        if key in changes and not changes[key]:
            changes[key] = None
    return EndpointChanges(**changes)


# --------------------------------------------------------------------------- CRUD


@router.get(
    "",
    response_model=ListResponseEndpointOut,
    operation_id="v1.endpoint.list",
    summary="List Endpoints",
)
async def list_endpoints(
    app: AppCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    order: Annotated[Literal["ascending", "descending"] | None, Query()] = None,
) -> Response:
    page = await app.services.endpoints.list(app.id, page_request(limit, iterator, ordering(order)))
    return json_response(mapping.list_out(page, mapping.endpoint_out, _id))


_CATALOG_NOTE = (
    " With `HOOKPOST_STRICT_EVENT_TYPES=1`, an `eventTypes` entry that names an event type "
    "the catalog lacks or archived, or a pattern that matches no live event type, is a 422 "
    'naming the entry (`["body", "eventTypes", index]`); without it the endpoint is '
    "saved and the answer's `warnings` name the entry."
)


@router.post(
    "",
    status_code=201,
    response_model=EndpointCreatedOut,
    operation_id="v1.endpoint.create",
    summary="Create Endpoint",
    description=(
        "An application has at most `HOOKPOST_MAX_ENDPOINTS_PER_APP` endpoints (default "
        "100): beyond, 409 `limit_exceeded`. The answer carries the new endpoint's `secret` "
        "(with `HOOKPOST_REVEAL_SECRETS=0`, the only answer besides a rotation's that "
        "does)." + _CATALOG_NOTE
    ),
    openapi_extra=IDEMPOTENT,
)
async def create_endpoint(app: AppCtx, body: EndpointIn) -> Response:
    new = _new_endpoint(body, dict(body.headers or {}), body.secret)
    ep = await app.services.endpoints.create(app.id, new)
    return await _written(app.services, ep, 201, created=True)


@router.get(
    "/{endpoint_id}",
    response_model=EndpointOut,
    operation_id="v1.endpoint.get",
    summary="Get Endpoint",
)
async def get_endpoint(app: AppCtx, endpoint_id: EndpointId) -> Response:
    return json_response(
        mapping.endpoint_out(await app.services.endpoints.get(app.id, endpoint_id))
    )


@router.put(
    "/{endpoint_id}",
    response_model=EndpointWrittenOut,
    operation_id="v1.endpoint.update",
    summary="Update Endpoint",
    description="Creates the endpoint (201, with its `secret`) if it does not exist."
    + _CATALOG_NOTE,
    responses={201: {"model": EndpointCreatedOut, "description": "Created"}},
)
async def update_endpoint(app: AppCtx, endpoint_id: EndpointId, body: EndpointUpdate) -> Response:
    ep, created = await app.services.endpoints.upsert(app.id, endpoint_id, _new_endpoint(body))
    return await _written(app.services, ep, 201 if created else 200, created)


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointWrittenOut,
    operation_id="v1.endpoint.patch",
    summary="Patch Endpoint",
    description=_CATALOG_NOTE.strip(),
)
async def patch_endpoint(app: AppCtx, endpoint_id: EndpointId, body: EndpointPatch) -> Response:
    ep = await app.services.endpoints.patch(app.id, endpoint_id, _changes(body))
    return await _written(app.services, ep)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    operation_id="v1.endpoint.delete",
    summary="Delete Endpoint",
    description=(
        "The endpoint is gone from the API, and nothing more is sent to it, at once; its "
        "deliveries and attempts are then deleted in batches before the answer."
    ),
)
async def delete_endpoint(app: AppCtx, endpoint_id: EndpointId) -> Response:
    await app.services.endpoints.delete(app.id, endpoint_id)
    return empty()


# --------------------------------------------------------------------------- secret


@router.get(
    "/{endpoint_id}/secret",
    response_model=EndpointSecretOut,
    operation_id="v1.endpoint.get-secret",
    summary="Get Endpoint Secret",
    description=(
        "With `HOOKPOST_REVEAL_SECRETS=0` a secret is shown once (in the answers to the "
        "endpoint's creation and to a rotation): this then answers 403 `forbidden`, the "
        "detail saying how to rotate."
    ),
)
async def get_endpoint_secret(app: AppCtx, endpoint_id: EndpointId) -> Response:
    return json_response({"key": await app.services.endpoints.get_secret(app.id, endpoint_id)})


@router.post(
    "/{endpoint_id}/secret/rotate",
    response_model=EndpointSecretOut,
    operation_id="v1.endpoint.rotate-secret",
    summary="Rotate Endpoint Secret",
    description=(
        "The new key signs from now on; the previous one keeps signing (as a second signature) "
        "for `gracePeriodSeconds` (default 24 hours). Answers 200 with the new key (the Svix "
        "reference says 204; the svix SDK parses an `EndpointSecretOut` body), also with "
        "`HOOKPOST_REVEAL_SECRETS=0`: it is the one answer that shows the new key."
    ),
    openapi_extra=IDEMPOTENT,
)
async def rotate_endpoint_secret(
    app: AppCtx, endpoint_id: EndpointId, body: EndpointSecretRotateIn
) -> Response:
    ep = await app.services.endpoints.rotate_secret(
        app.id, endpoint_id, body.key, body.grace_period_seconds
    )
    return json_response({"key": shown_key(ep.signature_scheme, ep.secret)})


# --------------------------------------------------------------------------- headers


@router.get(
    "/{endpoint_id}/headers",
    response_model=EndpointHeadersOut,
    operation_id="v1.endpoint.get-headers",
    summary="Get Endpoint Headers",
)
async def get_endpoint_headers(app: AppCtx, endpoint_id: EndpointId) -> Response:
    headers = await app.services.endpoints.get_headers(app.id, endpoint_id)
    return json_response(mapping.headers_out(headers))


@router.put(
    "/{endpoint_id}/headers",
    status_code=204,
    response_class=Response,
    operation_id="v1.endpoint.update-headers",
    summary="Update Endpoint Headers",
)
async def update_endpoint_headers(
    app: AppCtx, endpoint_id: EndpointId, body: EndpointHeadersIn
) -> Response:
    await app.services.endpoints.set_headers(app.id, endpoint_id, dict(body.headers), merge=False)
    return empty()


@router.patch(
    "/{endpoint_id}/headers",
    status_code=204,
    response_class=Response,
    operation_id="v1.endpoint.patch-headers",
    summary="Patch Endpoint Headers",
)
async def patch_endpoint_headers(
    app: AppCtx, endpoint_id: EndpointId, body: EndpointHeadersPatchIn
) -> Response:
    await app.services.endpoints.set_headers(
        app.id,
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
    app: AppCtx,
    endpoint_id: EndpointId,
    since: DateQuery = None,
    until: DateQuery = None,
) -> Response:
    stats = await app.services.endpoints.stats(app.id, endpoint_id, date_ms(since), date_ms(until))
    return json_response(mapping.stats_out(stats))


@router.get(
    "/{endpoint_id}/rate-limit-status",
    response_model=EndpointThrottleRateStatusOut,
    operation_id="v1.endpoint.get-throttling-status",
    summary="Get Throttling Status",
    description=(
        "`RateLimited` while the endpoint's `throttleRate` holds due deliveries back, with "
        "`throttledSince` the due time of the oldest one waiting; else `Ok`."
    ),
)
async def get_endpoint_throttling_status(app: AppCtx, endpoint_id: EndpointId) -> Response:
    status = await app.services.endpoints.throttle_status(app.id, endpoint_id)
    return json_response(mapping.throttle_status_out(status))


@router.post(
    "/{endpoint_id}/recover",
    status_code=202,
    response_model=RecoverOut,
    operation_id="v1.endpoint.recover",
    summary="Recover Failed Webhooks",
    description=(
        "Queue again every failed delivery to this endpoint of messages created in "
        "[since, until). `since` is at most 14 days ago (as Svix): older is a 422. A "
        "background task does it (`GET /api/v1/background-task/{task_id}`; "
        "`background_task.finished` when done, `data.messages_sent` the count)."
    ),
    openapi_extra=IDEMPOTENT,
)
async def recover_endpoint(app: AppCtx, endpoint_id: EndpointId, body: RecoverIn) -> Response:
    task = await app.services.endpoints.recover(
        app.id, endpoint_id, mapping.to_ms(body.since), mapping.to_ms_opt(body.until)
    )
    return json_response(mapping.task_out(task), 202)


@router.post(
    "/{endpoint_id}/replay-missing",
    status_code=202,
    response_model=ReplayOut,
    operation_id="v1.endpoint.replay-missing",
    summary="Replay Missing Webhooks",
    description=(
        "Send this endpoint the messages created in [since, until) that it never had a "
        "delivery of (sent while it was disabled, or before it subscribed), of those that "
        "match its filters now. A background task (`endpoint.replay`; `data.messagesSent`)."
    ),
    openapi_extra=IDEMPOTENT,
)
async def replay_missing(app: AppCtx, endpoint_id: EndpointId, body: ReplayIn) -> Response:
    task = await app.services.tasks.replay_missing(
        app.id, endpoint_id, mapping.to_ms(body.since), mapping.to_ms_opt(body.until)
    )
    return json_response(mapping.task_out(task), 202)


@router.post(
    "/{endpoint_id}/bulk-replay",
    status_code=202,
    response_model=ReplayOut,
    operation_id="v1.endpoint.bulk-replay",
    summary="Bulk Replay Messages",
    description=(
        "Send this endpoint again its deliveries of messages created in [since, until), "
        "succeeded and failed alike, or only those of `status` and `eventTypes` (exact "
        "names). Those still pending or sending are not queued twice. A background task "
        "(`endpoint.bulk-replay`; `data.messagesSent`). hookpost extension: `dryRun: true` "
        "only counts them (`data.messagesMatched`). `channel`, `tag` and `statusCodeClass` "
        "are not supported (422)."
    ),
    openapi_extra=IDEMPOTENT,
)
async def bulk_replay(app: AppCtx, endpoint_id: EndpointId, body: BulkReplayIn) -> Response:
    tasks, app_id = app.services.tasks, app.id  # another tenant's application: 404 first
    for name, value in (
        ("channel", body.channel),
        ("tag", body.tag),
        ("statusCodeClass", body.status_code_class),
    ):
        if value is not None:
            raise InvalidInput(name, "is not supported by hookpost's bulk replay")
    task = await tasks.bulk_replay(
        app_id,
        endpoint_id,
        mapping.to_ms(body.since),
        mapping.to_ms_opt(body.until),
        statuses=None if body.status is None else mapping.delivery_statuses(body.status),
        event_types=body.event_types,
        dry_run=body.dry_run,
    )
    return json_response(mapping.task_out(task), 202)


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
async def send_example(app: AppCtx, endpoint_id: EndpointId, body: EventExampleIn) -> Response:
    msg = await app.services.messages.send_example(
        app.id, endpoint_id, body.event_type, body.example_index
    )
    return json_response(mapping.message_out(msg))
