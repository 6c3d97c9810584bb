"""``/docs``: Swagger UI from the vendored ``swagger-ui-dist`` (static/vendor/swagger-ui),
started by a static script: no CDN, no inline code, the same strict CSP as the dashboard."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookpost.dashboard.web import render


async def docs(request: Request) -> Response:
    return render("docs.html", {"openapi_url": "/api/v1/openapi.json"})


def routes() -> list[Route]:
    return [Route("/docs", docs, methods=["GET"])]
