"""The operator dashboard at ``/dashboard``: admin-token login, overview, applications (the
portal's views for any of them), tokens, and operations (operational webhooks and every
application's alert rules)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookpost.dashboard import alert_form, series, sessions
from hookpost.dashboard.views import View, app_routes, next_iterator
from hookpost.dashboard.web import error_status, error_text, form, redirect, render
from hookpost.domain.errors import HookpostError, InvalidInput, NotFound
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import Application, PageRequest
from hookpost.domain.operational import EVENT_TYPES as OPERATIONAL_TYPES
from hookpost.domain.operational import OPERATIONAL_APP_ID
from hookpost.domain.queries import MessageFilter
from hookpost.services import Services
from hookpost.settings import Settings

PREFIX = "/dashboard"
LOGIN = PREFIX + "/login"
APP_SEARCH_LIMIT = 1000
RULES_APPS = 100
RULES_PER_APP = 50


def _services(request: Request) -> Services:
    return request.app.state.hp.services  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.hp.settings  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- login


async def login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    nonce = request.cookies.get(sessions.LOGIN_CSRF_COOKIE) or sessions.new_login_csrf()
    response = render("login.html", {"login_csrf": nonce, "error": error}, status)
    response.set_cookie(
        sessions.LOGIN_CSRF_COOKIE,
        nonce,
        path=LOGIN,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def login(request: Request) -> Response:
    """An admin token opens a session of its own (a new admin token with the session's
    lifetime): the operator's token is never kept by the browser."""
    fields = await form(request)
    nonce = request.cookies.get(sessions.LOGIN_CSRF_COOKIE, "")
    if not nonce or not secrets.compare_digest(nonce, fields.get(sessions.CSRF_FIELD, "")):
        return await login_page(request, "The form expired: try again.", 403)
    services, settings = _services(request), _settings(request)
    record = await services.tokens.authenticate(fields.get("token", "").strip())
    if record is None or record.app_id is not None:
        return await login_page(request, "That is not a valid admin token.", 401)
    ttl = settings.ui_session_ttl_s
    token, _ = await sessions.open_session(services, None, ttl, sessions.ADMIN_SESSION_NAME)
    response = redirect(PREFIX, request)
    sessions.set_cookie(
        response,
        sessions.ADMIN_COOKIE,
        token,
        PREFIX,
        ttl,
        "strict",
        request.url.scheme == "https",
    )
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path=LOGIN)
    return response


Page = Callable[..., Awaitable[Response]]  # (request, session, form fields or None)


def admin(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """An admin session or the login page; the CSRF token on every POST; errors as pages."""

    async def endpoint(request: Request) -> Response:
        session = await sessions.current(_services(request), request, sessions.ADMIN_COOKIE)
        if session is None or session.app_id is not None:
            return redirect(LOGIN, request)
        fields = None
        try:
            if request.method == "POST":
                fields = await form(request)
                sessions.check_csrf(session.csrf, fields, request)
            return await handler(request, session, fields)
        except sessions.CsrfRejected as exc:
            return _page("error.html", session, 403, error=str(exc))
        except HookpostError as exc:
            return _page("error.html", session, error_status(exc), error=error_text(exc))

    return endpoint


def _page(name: str, session: sessions.Session, status: int = 200, **context: Any) -> Response:
    return render(name, {"csrf": session.csrf, "v": None, **context}, status)


async def logout(request: Request, session: sessions.Session, _: object) -> Response:
    await sessions.close_session(_services(request), session)
    response = redirect(LOGIN, request)
    sessions.clear_cookie(response, sessions.ADMIN_COOKIE, PREFIX)
    return response


# --------------------------------------------------------------------------- overview


async def overview(request: Request, session: sessions.Session, _: object) -> Response:
    return _page("overview.html", session, **await _overview(_services(request)))


async def overview_live(request: Request, session: sessions.Session, _: object) -> Response:
    return _page("overview_fragment.html", session, **await _overview(_services(request)))


async def _overview(services: Services) -> dict[str, Any]:
    data = await series.overview(services)
    queue = await services.status.queue()
    try:
        recent = await services.messages.list(
            OPERATIONAL_APP_ID, PageRequest(limit=10, descending=True), MessageFilter()
        )
        events = [(m, json.loads(m.payload)) for m in recent.items if not m.expunged]
    except NotFound:
        events = []  # no operational webhook endpoint was ever made
    return {"data": data, "chart": data.throughput.as_json(), "queue": queue, "events": events}


# --------------------------------------------------------------------------- applications


async def apps(request: Request, session: sessions.Session, _: object) -> Response:
    services = _services(request)
    q = request.query_params.get("q", "").strip().lower()
    found, iterator, scanned = [], None, 0
    while scanned < APP_SEARCH_LIMIT:
        page = await services.apps.list(PageRequest(limit=250, iterator=iterator))
        scanned += len(page.items)
        for a in page.items:
            if not q or q in a.name.lower() or q in (a.uid or "").lower() or q == a.id.lower():
                found.append(a)
        iterator = next_iterator(page)
        if iterator is None:
            break
    return _page("apps.html", session, apps=found[:200], q=q, partial=iterator is not None)


async def app_view_for(request: Request) -> View | Response:
    services = _services(request)
    session = await sessions.current(services, request, sessions.ADMIN_COOKIE)
    if session is None or session.app_id is not None:
        return redirect(LOGIN, request)
    app_id = request.path_params["app_id"]
    try:
        app = await services.apps.get(app_id)
    except NotFound as exc:
        return _page("error.html", session, 404, error=error_text(exc))
    base = f"{PREFIX}/apps/{app.id}"
    return View(
        services, app, base, session.csrf, True, "'none'", _settings(request).reveal_secrets
    )


async def app_home(request: Request) -> Response:
    return redirect(f"{PREFIX}/apps/{request.path_params['app_id']}/endpoints", request)


# --------------------------------------------------------------------------- operations


async def tokens(request: Request, session: sessions.Session, _: object) -> Response:
    return await _tokens_page(request, session)


async def _tokens_page(request: Request, session: sessions.Session, **extra: Any) -> Response:
    iterator = request.query_params.get("iterator") or None
    page = await _services(request).tokens.list(PageRequest(limit=100, iterator=iterator))
    return _page("tokens.html", session, tokens=page.items, more=next_iterator(page), **extra)


async def token_create(
    request: Request, session: sessions.Session, fields: dict[str, str]
) -> Response:
    services = _services(request)
    app_ref = fields.get("appId", "").strip()
    app_id = await services.apps.resolve(app_ref) if app_ref else None
    ttl = fields.get("expiryHours", "").strip()
    try:
        ttl_s = int(float(ttl) * 3600) if ttl else None
    except ValueError:
        raise InvalidInput("expiryHours", "must be a number of hours") from None
    token, record = await services.tokens.create(app_id, fields.get("name", ""), ttl_s)
    return await _tokens_page(request, session, created=token, created_record=record)


async def token_revoke(request: Request, session: sessions.Session, _: object) -> Response:
    record = await _services(request).tokens.revoke_id(request.path_params["token_id"])
    api = getattr(request.app.state, "api", None)  # the API's cache of authenticated tokens
    if api is not None:
        api.authenticator.revoked_hash(record.token_hash)
    return redirect(f"{PREFIX}/tokens", request)


async def operations(request: Request, session: sessions.Session, _: object) -> Response:
    services = _services(request)
    page = await services.operational.list(PageRequest(limit=100))
    rules, partial = await _alert_rules(services)
    return _page(
        "operations.html",
        session,
        endpoints=page.items,
        types=OPERATIONAL_TYPES,
        rules=rules,
        rules_partial=partial,
        condition=alert_form.condition,
    )


async def _alert_rules(services: Services) -> tuple[list[tuple[Application, Any, Any]], bool]:
    """Every application's alert rules, bounded (a query per application): the first
    ``RULES_APPS`` applications and ``RULES_PER_APP`` rules of each; True if a bound was hit."""
    found: list[tuple[Application, Any, Any]] = []
    apps = await services.apps.list(PageRequest(limit=RULES_APPS))
    partial = not apps.done
    for app in apps.items:
        if app.id == OPERATIONAL_APP_ID:
            continue
        page = await services.alert_rules.list(app.id, PageRequest(limit=RULES_PER_APP))
        partial |= not page.done
        found += [(app, rule, state) for rule, state in page.items]
    return found, partial


async def operational_create(
    request: Request, session: sessions.Session, fields: dict[str, str]
) -> Response:
    chosen = [t for t in OPERATIONAL_TYPES if fields.get(f"type:{t}") == "on"]
    endpoint = NewEndpoint(url=fields.get("url", "").strip(), event_types=chosen or None)
    await _services(request).operational.create(endpoint)
    return redirect(f"{PREFIX}/operations", request)


async def operational_delete(request: Request, session: sessions.Session, _: object) -> Response:
    await _services(request).operational.delete(request.path_params["endpoint_id"])
    return redirect(f"{PREFIX}/operations", request)


def routes() -> list[Route]:
    return [
        Route(LOGIN, login_page, methods=["GET"]),
        Route(LOGIN, login, methods=["POST"]),
        Route(PREFIX + "/logout", admin(logout), methods=["POST"]),
        Route(PREFIX, admin(overview), methods=["GET"]),
        Route(PREFIX + "/overview/live", admin(overview_live), methods=["GET"]),
        Route(PREFIX + "/apps", admin(apps), methods=["GET"]),
        Route(PREFIX + "/apps/{app_id}", app_home, methods=["GET"]),
        *app_routes(PREFIX + "/apps/{app_id}", app_view_for),
        Route(PREFIX + "/tokens", admin(tokens), methods=["GET"]),
        Route(PREFIX + "/tokens", admin(token_create), methods=["POST"]),
        Route(PREFIX + "/tokens/{token_id}/revoke", admin(token_revoke), methods=["POST"]),
        Route(PREFIX + "/operations", admin(operations), methods=["GET"]),
        Route(PREFIX + "/operations", admin(operational_create), methods=["POST"]),
        Route(
            PREFIX + "/operations/{endpoint_id}/delete",
            admin(operational_delete),
            methods=["POST"],
        ),
    ]
