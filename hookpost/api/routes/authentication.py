"""/api/v1/auth: app-portal access tokens, logout, and (a hookpost extension) token management."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.auth import bearer_token
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    ID_PATTERN,
    IDEMPOTENT,
    MAX_ID,
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
    ApiTokenCreatedOut,
    ApiTokenIn,
    ApplicationTokenExpireIn,
    AppPortalAccessIn,
    AppPortalAccessOut,
    ListResponseApiTokenOut,
)
from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import ApiToken

router = APIRouter(
    prefix="/api/v1/auth", tags=["Authentication"], responses=ERRORS, route_class=StrictJsonRoute
)

TokenId = Annotated[str, Path(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
AppFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_ID,
        pattern=ID_PATTERN,
        description="Only the tokens scoped to this application (id or uid)",
    ),
]


def _id(token: ApiToken) -> str:
    return token.id


@router.post(
    "/app-portal-access/{app_id}",
    response_model=AppPortalAccessOut,
    operation_id="v1.authentication.app-portal-access",
    summary="Get Consumer App Portal Access",
    description=(
        "Mint a token scoped to this one application (for the app portal, or to hand to the "
        "application's owner). `application` creates the application (with the path's id as "
        "its uid) if it does not exist. Admin tokens only."
    ),
    openapi_extra=IDEMPOTENT,
)
async def app_portal_access(app: AppCtx, body: AppPortalAccessIn, request: Request) -> Response:
    app.check_access()  # another tenant's application: 404; then the permission: 403
    apps = app.services.apps
    app_id = app.id_if_exists() if body.application is not None else app.id
    if app_id is None:
        assert body.application is not None
        spec = body.application
        found = await apps.get_or_create(
            app.given, spec.name, dict(spec.metadata), spec.throttle_rate
        )
        app_id = found.id
    token, _ = await app.services.tokens.create(app_id=app_id, name="app-portal", ttl_s=body.expiry)
    base = str(request.base_url).rstrip("/")
    return json_response({"url": f"{base}/app-portal#key={token}", "token": token})


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    operation_id="v1.authentication.logout",
    summary="Logout",
    description=(
        "Revoke the calling app-scoped token (such as an app-portal token). This process "
        "refuses it at once; other API processes within a few seconds (their cache of "
        "authenticated tokens). Admin tokens cannot log out: 403 (revoke one with "
        "`DELETE /api/v1/auth/token/{token_id}`)."
    ),
)
async def logout(c: AuthCtx, request: Request) -> Response:
    tokens = c.services.tokens  # admin tokens: 403 (the permission, see api.permissions)
    token = bearer_token(request.headers)
    assert token is not None  # authenticated by it
    await tokens.revoke(token)
    c.api.authenticator.revoked(token)
    return empty()


# --------------------------------------------------------------------------- token management


@router.get(
    "/token",
    response_model=ListResponseApiTokenOut,
    operation_id="v1.authentication.list-tokens",
    summary="List Tokens",
    description=(
        "A hookpost extension. Every API token, admin and app-scoped, by id: its name, "
        "application (null: an admin token), creation and expiry. Never the token itself, "
        "nor its hash. Admin tokens only."
    ),
)
async def list_tokens(
    c: AuthCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    order: Annotated[Literal["ascending", "descending"] | None, Query()] = None,
    app_id: AppFilter = None,
) -> Response:
    services = c.services
    scoped = None if app_id is None else await services.apps.resolve(app_id)
    page = await services.tokens.list(page_request(limit, iterator, ordering(order)), scoped)
    return json_response(mapping.list_out(page, mapping.token_out, _id))


@router.post(
    "/token",
    status_code=201,
    response_model=ApiTokenCreatedOut,
    operation_id="v1.authentication.create-token",
    summary="Create Token",
    description=(
        "A hookpost extension. A new API token: an admin token, or with `appId` one scoped to "
        "that application (what an app-portal token may do, see docs/permissions.md). "
        "`expiry`: its lifetime in seconds (none: until revoked). The answer holds the token, "
        "shown this once. Admin tokens only."
    ),
    openapi_extra=IDEMPOTENT,
)
async def create_token(c: AuthCtx, body: ApiTokenIn) -> Response:
    services = c.services
    app_id = None if body.app_id is None else await services.apps.resolve(body.app_id)
    token, record = await services.tokens.create(app_id=app_id, name=body.name, ttl_s=body.expiry)
    return json_response({**mapping.token_out(record), "token": token}, 201)


@router.delete(
    "/token/{token_id}",
    status_code=204,
    response_class=Response,
    operation_id="v1.authentication.revoke-token",
    summary="Revoke Token",
    description=(
        "A hookpost extension. Delete the token: this process refuses it at once, other API "
        "processes within a few seconds (their cache of authenticated tokens). The token set "
        "by `HOOKPOST_ADMIN_TOKEN` comes back when a process starts with the same value: "
        "change the variable instead. Admin tokens only."
    ),
)
async def revoke_token(c: AuthCtx, token_id: TokenId) -> Response:
    record = await c.services.tokens.revoke_id(token_id)  # unknown: 404
    c.api.authenticator.revoked_hash(record.token_hash)
    return empty()


@router.post(
    "/app/{app_id}/expire-all",
    status_code=204,
    response_class=Response,
    operation_id="v1.authentication.expire-all",
    summary="Expire All",
    description=(
        "Revoke every token scoped to the application (app-portal tokens included), at once: "
        "`expiry` must be 0 or absent (hookpost does not keep a revoked token alive), and "
        "`sessionIds` names sessions hookpost's tokens do not have (it then revokes none)."
    ),
    openapi_extra=IDEMPOTENT,
)
async def expire_all(app: AppCtx, body: ApplicationTokenExpireIn) -> Response:
    tokens, app_id = app.services.tokens, app.id  # the caller's access, before anything else
    if body.expiry:
        raise InvalidInput("expiry", "hookpost expires tokens at once: 0 or absent")
    if not body.session_ids:
        await tokens.expire_app_tokens(app_id)
    return empty()
