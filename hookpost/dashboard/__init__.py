"""The operator dashboard (``/dashboard``), the embeddable app portal (``/app-portal``) and
the API docs page (``/docs``): server-rendered pages over the services, with vendored htmx,
uPlot and Swagger UI (see static/vendor/VENDORED.md). docs/portal.md, decision 0039."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from hookpost.dashboard.web import STATIC_DIR, STATIC_URL


def routes() -> list[BaseRoute]:
    from hookpost.dashboard import apidocs, operator, portal

    return [
        Mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="hookpost-ui-static"),
        *apidocs.routes(),
        *portal.routes(),
        *operator.routes(),
    ]
