"""The app portal at ``/app-portal``: what ``app-portal-access`` hands a customer.

``/app-portal#key=...`` serves a page whose script posts the fragment's key to
``/app-portal/session`` and drops it from the address bar; the fragment never travels in a
request line, so the key reaches no access log. The answer sets the session cookie (a
session token scoped to the key's application) and every view reads its application from
that session alone."""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hookpost.dashboard import sessions
from hookpost.dashboard.views import View, app_routes
from hookpost.dashboard.web import form, render, secure
from hookpost.domain.errors import NotFound
from hookpost.services import Services
from hookpost.settings import Settings

PREFIX = "/app-portal"
MAX_KEY = 512


def _services(request: Request) -> Services:
    return request.app.state.hp.services  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.hp.settings  # type: ignore[no-any-return]


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


async def entry(request: Request) -> Response:
    ancestors = _settings(request).portal_frame_ancestors
    return render("portal_entry.html", {}, frame_ancestors=ancestors)


async def open_session(request: Request) -> Response:
    """Exchange the portal key (JSON ``{"key": ...}``) for the session cookie."""
    services, settings = _services(request), _settings(request)
    try:
        body = json.loads(await request.body())
        key = body["key"]
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return secure(JSONResponse({"code": "validation", "detail": "key: expected a string"}, 422))
    record = await services.tokens.authenticate(key)
    if record is None or record.app_id is None:  # unknown, expired, or an admin token
        detail = "this portal link has expired or was revoked: ask for a new one"
        return secure(JSONResponse({"code": "authentication_failed", "detail": detail}, 401))
    ttl = settings.ui_session_ttl_s
    if record.expires_at is not None:
        ttl = min(ttl, max(1, (record.expires_at - int(time.time() * 1000)) // 1000))
    token, _ = await sessions.open_session(
        services, record.app_id, ttl, sessions.PORTAL_SESSION_NAME
    )
    response = secure(JSONResponse({"next": f"{PREFIX}/endpoints"}))
    sessions.set_cookie(
        response,
        sessions.PORTAL_COOKIE,
        token,
        PREFIX,
        ttl,
        settings.portal_cookie_samesite,
        _https(request),
    )
    return response


async def logout(request: Request) -> Response:
    view = await view_for(request)
    if isinstance(view, Response):
        return view
    fields = await form(request)
    try:
        sessions.check_csrf(view.csrf, fields, request)
    except sessions.CsrfRejected as exc:
        return view.page("error.html", 403, error=str(exc))
    session = await sessions.current(_services(request), request, sessions.PORTAL_COOKIE)
    if session is not None:
        await sessions.close_session(_services(request), session)
    response = render(
        "portal_expired.html",
        {"logged_out": True},
        frame_ancestors=_settings(request).portal_frame_ancestors,
    )
    sessions.clear_cookie(response, sessions.PORTAL_COOKIE, PREFIX)
    return response


async def view_for(request: Request) -> View | Response:
    services, settings = _services(request), _settings(request)
    ancestors = settings.portal_frame_ancestors
    session = await sessions.current(services, request, sessions.PORTAL_COOKIE)
    if session is None or session.app_id is None:
        return render("portal_expired.html", {"logged_out": False}, 401, ancestors)
    try:
        app = await services.apps.get(session.app_id)
    except NotFound:  # the application was deleted since
        return render("portal_expired.html", {"logged_out": False}, 401, ancestors)
    return View(
        services,
        app,
        PREFIX,
        session.csrf,
        admin=False,
        frame_ancestors=ancestors,
        reveal_secrets=settings.reveal_secrets,
    )


def routes() -> list[Route]:
    return [
        Route(PREFIX, entry, methods=["GET"]),
        Route(PREFIX + "/session", open_session, methods=["POST"]),
        Route(PREFIX + "/logout", logout, methods=["POST"]),
        *app_routes(PREFIX, view_for),
    ]
