"""The permission table (``api.permissions``) against the app's route table and the docs.

Every operation of the OpenAPI document declares a permission (an app with one that does not
cannot be built), the table names only real operations, the routes outside the document are
the known few, and docs/permissions.md says exactly what the code does.
``tests/integration/test_permissions.py`` calls every operation with both kinds of token.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute, iter_route_contexts

from hookpost.api.app import create_app_from_settings
from hookpost.api.permissions import ROUTE_PERMISSIONS, check_declared, operations
from hookpost.domain.permissions import ADMIN_PERMISSIONS, APP_TOKEN_PERMISSIONS, Permission
from hookpost.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Routes of the table that the OpenAPI document does not list (and the matrix does not cover).
OUTSIDE_THE_DOCUMENT = {
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/api/v1/openapi.json",
    # hookpost listen's relay: its own protocol, permissions checked in routes/relay.py
    "/api/v1/app/{app_id}/relay",
    "/api/v1/app/{app_id}/relay/{endpoint_id}/events",
    "/api/v1/app/{app_id}/relay/{endpoint_id}/reply",
    "/api/v1/relay/{token}",
}
# The dashboard's and the portal's pages: outside the API, behind sessions of their own
# (hookpost.dashboard.sessions; tests/integration/test_dashboard_http.py, tests/browser/).
UI_PREFIXES = ("/dashboard", "/app-portal", "/ui/static")
KINDS = ("admin", "app-portal")


def route_table() -> list[APIRoute]:
    """The operations of the API's document, from a freshly built app's route table."""
    return operations(create_app_from_settings(Settings(), factory=lambda s: None).routes)


def allowed(kind: str, permission: Permission | None) -> bool:
    held = ADMIN_PERMISSIONS if kind == "admin" else APP_TOKEN_PERMISSIONS
    return permission is None or permission in held


# --------------------------------------------------------------------------- the table itself


def test_every_route_is_in_the_document_or_listed() -> None:
    app = create_app_from_settings(Settings(), factory=lambda s: None)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            assert route.operation_id in ROUTE_PERMISSIONS, route.path
        else:
            path = getattr(route, "path", None)
            assert path in OUTSIDE_THE_DOCUMENT or (path or "").startswith(UI_PREFIXES), route


def test_the_table_names_only_real_operations() -> None:
    table = route_table()
    assert {str(r.operation_id) for r in table} == set(ROUTE_PERMISSIONS)
    assert len(table) >= 40  # the document did not lose its operations


def test_an_operation_without_a_permission_is_refused_at_build_time() -> None:

    router = APIRouter()

    @router.get("/api/v1/new-thing", operation_id="v1.new-thing.get")
    async def new_thing() -> None: ...

    with pytest.raises(RuntimeError, match=r"v1\.new-thing\.get"):
        check_declared(router.routes)
