"""The application views (endpoints, messages, catalog, stats, alert rules) that the portal and the
dashboard share: the same handlers, mounted twice, each given a ``View`` whose application the
session decides (the portal's token) or the operator chose (the dashboard)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from hookpost.dashboard.sessions import CsrfRejected, check_csrf
from hookpost.dashboard.web import error_status, error_text, form, render
from hookpost.domain.errors import HookpostError
from hookpost.domain.models import Application, Page
from hookpost.services import Services


@dataclass
class View:
    services: Services
    app: Application
    base: str  # where this app's views are mounted: /app-portal or /dashboard/apps/{id}
    csrf: str
    admin: bool  # an operator (the dashboard), not the app's owner
    frame_ancestors: str
    reveal_secrets: bool = True

    @property
    def app_id(self) -> str:
        return self.app.id

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(name, {"v": self, **context}, status, self.frame_ancestors)


ViewFor = Callable[[Request], Awaitable["View | Response"]]
Handler = Callable[..., Awaitable[Response]]


def next_iterator(page: Page[Any]) -> str | None:
    """The iterator of the page after this one; None on the last."""
    if page.done or not page.items:
        return None
    return page.bounds[1] if page.bounds else None


def wrap(handler: Handler, view_for: ViewFor) -> Callable[[Request], Awaitable[Response]]:
    """Resolve the view (or answer the login/expired page), check the CSRF token of a POST,
    and turn the services' errors into an error page with their status."""

    async def endpoint(request: Request) -> Response:
        view = await view_for(request)
        if isinstance(view, Response):
            return view
        try:
            if request.method == "POST":
                fields = await form(request)
                check_csrf(view.csrf, fields, request)
                return await handler(request, view, fields)
            return await handler(request, view)
        except CsrfRejected as exc:
            return view.page("error.html", 403, error=str(exc))
        except HookpostError as exc:
            return view.page("error.html", error_status(exc), error=error_text(exc))

    return endpoint


def app_routes(prefix: str, view_for: ViewFor) -> list[Route]:
    from hookpost.dashboard import alert_views, endpoint_views, message_views

    routes = []
    views = (*endpoint_views.ROUTES, *message_views.ROUTES, *alert_views.ROUTES)
    for path, handler, methods in views:
        routes.append(Route(prefix + path, wrap(handler, view_for), methods=methods))
    return routes
