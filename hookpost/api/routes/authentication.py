"""/api/v1/auth: app-portal access tokens and logout."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from hookpost.api.auth import bearer_token
from hookpost.api.routes.common import (
    ERRORS,
    IDEMPOTENT,
    AppCtx,
    AuthCtx,
    StrictJsonRoute,
    empty,
    json_response,
)
from hookpost.api.schemas import AppPortalAccessIn, AppPortalAccessOut

router = APIRouter(
    prefix="/api/v1/auth", tags=["Authentication"], responses=ERRORS, route_class=StrictJsonRoute
)


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
    if body.application is not None:
        spec = body.application
        found = await apps.get_or_create(
            app.given, spec.name, dict(spec.metadata), spec.throttle_rate
        )
        app_id = found.id
    else:
        app_id = app.id
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
        "authenticated tokens). Admin tokens cannot log out: 403."
    ),
)
async def logout(c: AuthCtx, request: Request) -> Response:
    tokens = c.services.tokens  # admin tokens: 403 (the permission, see api.permissions)
    token = bearer_token(request.headers)
    assert token is not None  # authenticated by it
    await tokens.revoke(token)
    c.api.authenticator.revoked(token)
    return empty()
