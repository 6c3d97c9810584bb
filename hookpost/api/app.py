"""The ASGI application: ``create_app(hp)`` builds the Svix-compatible REST API over a running
``Hookpost``.

* The caller owns the runtime's lifecycle (the CLI starts and stops it); ``create_app`` only
  holds it on ``app.state``. ``create_app_from_settings`` is the self-contained variant whose
  lifespan builds (with the given factory: ``hookpost.wiring.asgi_app`` passes ``Hookpost``),
  starts and stops one.
* The OpenAPI document is at ``/api/v1/openapi.json``, interactive docs at ``/docs``; the
  dashboard and the app portal (``hookpost.dashboard``) are served beside the API.
* ``/metrics`` serves Prometheus text (``api.metrics``): on the API's port unless
  ``HOOKPOST_METRICS_PORT`` gives it one of its own; ``HOOKPOST_METRICS_TOKEN`` protects it.
* ``Settings.api_rate_limit`` > 0 installs the per-token rate limit (``api.ratelimit``):
  429 ``rate_limited`` with ``Retry-After``; health checks and metrics are never limited.
* Everything that is per app instance (token cache, rate-limit buckets, the metrics page)
  lives on the instance, never in module globals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookpost import dashboard
from hookpost.api import metrics
from hookpost.api.asgi import scope_header
from hookpost.api.errors import error_response, install_error_handlers, payload_too_large_detail
from hookpost.api.guards import without_idempotency_key
from hookpost.api.idempotency import IdempotencyMiddleware
from hookpost.api.observe import RequestObserver
from hookpost.api.permissions import check_declared
from hookpost.api.ratelimit import RateLimitMiddleware, TokenBuckets
from hookpost.api.relay import RelayHub
from hookpost.api.routes import (
    alert_rules,
    applications,
    attempts,
    authentication,
    background_tasks,
    endpoints,
    event_types,
    health,
    messages,
    operational,
    relay,
    stats,
)
from hookpost.api.routes.common import ApiState, Runtime
from hookpost.settings import Settings

log = logging.getLogger("hookpost.api")

ENVELOPE_ALLOWANCE = 64 * 1024  # request bytes allowed beyond the payload limit (the envelope)


# Messages first: route matching walks the routers in order (POST /msg mostly takes the
# front door below, but the message reads are hot too).
ROUTE_MODULES = (
    messages,
    applications,
    endpoints,
    attempts,
    event_types,
    authentication,
    operational,
    background_tasks,
    alert_rules,
    stats,
    health,
    relay,  # hookpost listen's relay (outside the OpenAPI document)
)


def create_app(hp: Runtime) -> FastAPI:
    """The API over ``hp`` (a started ``hookpost.wiring.Hookpost``)."""
    app = _build(hp.settings)
    _attach(app, hp)
    return app


def create_app_from_settings(
    settings: Settings,
    factory: Callable[[Settings], Any],
    worker: bool = False,
) -> FastAPI:
    """A self-contained API: its lifespan builds the runtime from ``settings``, starts it (and
    a delivery worker if ``worker``), makes sure the admin token exists, and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hp = factory(settings)
        await hp.start(worker=worker)
        metrics_server = None
        try:
            if settings.metrics_port:
                metrics_server = metrics.MetricsServer(
                    hp, settings.metrics_host or settings.host, settings.metrics_port
                )
                await metrics_server.start()
            # Tokens never go to logs. Without HOOKPOST_ADMIN_TOKEN and with no admin token
            # yet, say how to make one instead of generating one nobody sees.
            if settings.admin_token:
                await hp.services.tokens.ensure_admin(settings.admin_token)
            elif not await hp.services.tokens.admin_exists():
                log.warning(
                    "no admin token exists: set HOOKPOST_ADMIN_TOKEN or run `hookpost token create`"
                )
            _attach(app, hp)
            yield
        finally:
            if metrics_server is not None:
                await metrics_server.stop()
            if hasattr(app.state, "metrics_page"):
                await app.state.metrics_page.gauges.close()
            await hp.stop()

    return _build(settings, lifespan)


class HookpostApi(FastAPI):
    """FastAPI with :class:`~hookpost.api.routes.messages.CreateMessageFrontDoor` in front of
    its middleware stack: a request the front door takes never enters the stack."""

    front_door: Callable[[Scope, Receive, Send], Awaitable[bool]] | None = None
    observer: RequestObserver | None = None  # set once the runtime is attached

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            scope = without_idempotency_key(scope)  # see there
        observer = self.observer
        if observer is None:
            await self._answer(scope, receive, send)
        else:
            await observer.observe(scope, receive, send, self._answer)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer an HTTP request; True if the front door took it."""
        door = self.front_door
        if door is not None and await door(scope, receive, send):
            return True
        await super().__call__(scope, receive, send)
        return False


def _build(settings: Settings, lifespan: Any = None) -> FastAPI:
    app = HookpostApi(
        title="hookpost",
        version=_version(),
        description=(
            "Self-hosted webhook delivery with a Svix-compatible REST API: the official "
            "`svix` SDKs work as clients. Authenticate with `Authorization: Bearer <token>`."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served by the dashboard from vendored assets (hookpost.dashboard)
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry checks the global providers on every request; hookpost
        # exports Prometheus metrics instead (see docs/decisions/0022-fastapi-telemetry-off.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    if not settings.metrics_port:  # else served on its own port (api.metrics.MetricsServer)
        app.add_api_route(metrics.PATH, metrics.metrics_route, include_in_schema=False)
    check_declared(app.routes)  # every operation declares the permission it needs
    app.router.routes.extend(dashboard.routes())  # /dashboard, /app-portal, /docs: no schema
    _with_security(app)
    # add_middleware wraps what is there: the last added runs first. Order on a request:
    # rate limit -> body cap -> idempotency -> FastAPI's routing. The rate limit comes first
    # so that refused requests cost nothing (not even reading the body) and a 429 is never
    # stored as an idempotent response.
    body_limit = settings.max_payload_bytes + ENVELOPE_ALLOWANCE
    app.add_middleware(
        IdempotencyMiddleware, app_state=app.state, render_sent=messages.render_sent_for
    )
    app.add_middleware(
        BodyLimitMiddleware, limit=body_limit, payload_limit=settings.max_payload_bytes
    )
    if settings.api_rate_limit > 0:
        app.state.rate_limiter = TokenBuckets(settings.api_rate_limit)
        app.add_middleware(RateLimitMiddleware, app_state=app.state)
    # Ahead of all of the above, for the POST /msg requests none of them would act on.
    app.front_door = messages.CreateMessageFrontDoor(app.state, body_limit)
    return app


def _with_security(app: FastAPI) -> None:
    """Declare bearer authentication in the OpenAPI document (the routes read the header
    themselves, see ``routes.common.context``); health checks need none. Path parameters are
    listed in path order (FastAPI lists ``{app_id}``, which ``routes.common.AppCtx`` declares,
    after the route's own)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["HTTPBearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Bearer <token>` (admin or app-scoped).",
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/api/v1/health"):
                continue
            for operation in operations.values():
                operation["security"] = [{"HTTPBearer": []}]
                _path_order(path, operation)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _path_order(path: str, operation: dict[str, Any]) -> None:
    params = operation.get("parameters")
    if not params:
        return
    in_path = sorted(
        (p for p in params if p["in"] == "path"), key=lambda p: path.index(f"{{{p['name']}}}")
    )
    others = [p for p in params if p["in"] != "path"]
    operation["parameters"] = in_path + others


def _version() -> str:
    try:
        return version("hookpost")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


def _attach(app: FastAPI, hp: Runtime) -> None:
    app.state.hp = hp
    app.state.api = ApiState.build(hp)
    app.state.metrics_page = metrics.MetricsPage(hp)
    app.state.relay_hub = RelayHub()  # the `hookpost listen` connections of this process
    if isinstance(app, HookpostApi):
        # The routers' own routes (app.routes holds the routers FastAPI included, which
        # match a request without naming its route).
        routes = [r for m in ROUTE_MODULES for r in m.router.routes]
        app.observer = RequestObserver(
            hp.services.metrics,
            routes,
            messages.router.prefix,
            hp.settings.access_log,
            tracing=hp.services.tracing,
        )


# --------------------------------------------------------------------------- middleware


class BodyTooLarge(HTTPException):
    def __init__(self, payload_limit: int) -> None:
        super().__init__(413, payload_too_large_detail(payload_limit))


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413 ``payload_too_large`` before they
    are parsed: by ``Content-Length`` up front, and by counting the bytes as they stream in
    (chunked uploads). ``limit`` is the payload limit plus the envelope's allowance; the
    answer quotes ``payload_limit``, the setting the operator knows."""

    def __init__(self, app: ASGIApp, limit: int, payload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.payload_limit = payload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = scope_header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False  # the server refuses a malformed Content-Length itself
            if too_big:
                response = error_response(
                    413,
                    "payload_too_large",
                    payload_too_large_detail(self.payload_limit),
                    {"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(self.payload_limit)
            return message

        await self.app(scope, limited_receive, send)
