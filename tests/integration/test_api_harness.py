"""The harness of the API integration tests, and its own smoke tests.

``running_api`` starts a real hookpost (fresh SQLite, worker on, loopback allowed, retries
immediate) and serves ``create_app(hp)`` with uvicorn on a free 127.0.0.1 port, in this event
loop. The other ``test_api_*`` modules build their fixtures from it. Clients are the official
``svix`` SDK (``SvixAsync``) and plain ``httpx``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from svix.api import SvixAsync, SvixOptions

from hookpost.api.app import create_app
from hookpost.settings import Settings
from hookpost.wiring import Hookpost
from tests.support.polling import until_serving

ADMIN_TOKEN = "hp-test-admin-token"

# Every operation of the Svix reference (reference/svix-openapi.json), by path.
SVIX_OPERATIONS = {
    "/api/v1/app": {"get", "post"},
    "/api/v1/app/{app_id}": {"delete", "get", "patch", "put"},
    "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}": {"get"},
    "/api/v1/app/{app_id}/attempt/msg/{msg_id}": {"get"},
    "/api/v1/app/{app_id}/endpoint": {"get", "post"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}": {"delete", "get", "patch", "put"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers": {"get", "patch", "put"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg": {"get"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover": {"post"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret": {"get"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate": {"post"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example": {"post"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats": {"get"},
    "/api/v1/app/{app_id}/msg": {"get", "post"},
    "/api/v1/app/{app_id}/msg/{msg_id}": {"get"},
    "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}": {"get"},
    "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content": {"delete"},
    "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/headers": {"get"},  # issue 23
    "/api/v1/app/{app_id}/msg/{msg_id}/content": {"delete"},
    "/api/v1/app/{app_id}/msg/{msg_id}/endpoint": {"get"},
    "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend": {"post"},
    "/api/v1/auth/app-portal-access/{app_id}": {"post"},
    "/api/v1/auth/logout": {"post"},
    "/api/v1/event-type": {"get", "post"},
    "/api/v1/event-type/{event_type_name}": {"delete", "get", "patch", "put"},
    "/api/v1/health": {"get", "head"},
    "/api/v1/health/ping": {"get", "head"},
    "/api/v1/app/{app_id}/stats/attempts": {"get"},  # AppAttemptStatsOut (issue 21)
    # background tasks and what runs as one (issue 21)
    "/api/v1/background-task": {"get"},
    "/api/v1/background-task/{task_id}": {"get"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing": {"post"},
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay": {"post"},
    "/api/v1/stats/usage/app": {"post"},
    "/api/v1/stats/usage/event-types": {"put"},
    "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}/count": {"get"},
    "/api/v1/app/{app_id}/msg/{msg_id}/raw": {"get"},
    "/api/v1/auth/app/{app_id}/expire-all": {"post"},
    "/api/v1/app/{app_id}/msg/bulk-expunge": {"post"},
    "/api/v1/app/{app_id}/msg/expunge-all-contents": {"post"},
}


@dataclass
class ApiServer:
    url: str
    hp: Hookpost
    admin_token: str = ADMIN_TOKEN

    def svix(self, token: str | None = None) -> SvixAsync:
        # No client-side retries: a 5xx must fail the test, not be retried away.
        options = SvixOptions(server_url=self.url, retry_schedule=[], timeout=10.0)
        return SvixAsync(token or self.admin_token, options)

    def http(self, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0)


async def close_svix(client: SvixAsync) -> None:
    # The SDK has no close(); its httpx client would otherwise leak its sockets.
    await client._httpx_client.aclose()


@asynccontextmanager
async def running_api(
    database_url: str,
    *,
    tracing: Any = None,
    tls: tuple[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[ApiServer]:
    """``tls``: (certificate file, key file) to serve HTTPS instead of HTTP."""
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        allow_subnets="127.0.0.0/8",
        retry_schedule=(0, 0),
        poll_interval_s=0.05,
        **overrides,
    )
    hp = Hookpost(settings, tracing=tracing)  # tracing: a services.tracing.Tracing
    await hp.start(worker=True)
    await hp.services.tokens.ensure_admin(settings.admin_token)
    config = uvicorn.Config(
        create_app(hp),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ssl_certfile=None if tls is None else tls[0],
        ssl_keyfile=None if tls is None else tls[1],
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until_serving(server, task)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield ApiServer(f"{'http' if tls is None else 'https'}://127.0.0.1:{port}", hp)
    finally:
        server.should_exit = True
        await task
        await hp.stop()


@asynccontextmanager
async def svix_client(api: ApiServer, token: str | None = None) -> AsyncIterator[SvixAsync]:
    client = api.svix(token)
    try:
        yield client
    finally:
        await close_svix(client)


# --------------------------------------------------------------------------- smoke tests


@pytest.fixture
async def api(fresh_sqlite_url: str) -> AsyncIterator[ApiServer]:
    async with running_api(fresh_sqlite_url) as server:
        yield server


async def test_health_through_the_sdk_and_plain_http(api: ApiServer) -> None:
    async with svix_client(api) as svix:
        await svix.health.get()  # raises on non-2xx
    async with api.http(token=None) as http:
        for path in ("/api/v1/health", "/api/v1/health/ping"):
            assert (await http.get(path)).status_code == 204
            assert (await http.head(path)).status_code == 204


async def test_openapi_document_lists_every_svix_operation(api: ApiServer) -> None:
    async with api.http(token=None) as http:
        response = await http.get("/api/v1/openapi.json")
        docs = await http.get("/docs")
    assert response.status_code == 200
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    doc = response.json()
    for path, methods in SVIX_OPERATIONS.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), (path, methods)
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    create = doc["paths"]["/api/v1/app/{app_id}/msg"]["post"]
    assert create["operationId"] == "v1.message.create"
    assert create["security"] == [{"HTTPBearer": []}]
    assert "security" not in doc["paths"]["/api/v1/health"]["get"]


async def test_metrics_expose_queue_gauges_and_runtime_metrics(api: ApiServer) -> None:
    async with api.http(token=None) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in (
        "hookpost_queue_due",
        "hookpost_queue_scheduled",
        "hookpost_oldest_due_age_seconds",
        "hookpost_messages_accepted_total",
        "hookpost_deliveries_total",
        "hookpost_attempt_duration_seconds",
    ):
        assert f"# TYPE {name} " in response.text, name
    assert "\nhookpost_queue_due 0.0\n" in response.text


async def test_store_unavailable_is_503_with_retry_after(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hookpost.domain.errors import StoreUnavailable

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("sqlite: database is locked")

    monkeypatch.setattr(api.hp.store, "ping", down)
    monkeypatch.setattr(api.hp.store, "list_apps", down)
    async with api.http() as http:
        for path in ("/api/v1/health", "/api/v1/app"):
            response = await http.get(path)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json()["code"] == "store_unavailable"


async def test_asgi_app_owns_the_runtime(fresh_sqlite_url: str) -> None:
    from hookpost.wiring import asgi_app

    settings = Settings(database_url=fresh_sqlite_url, admin_token=ADMIN_TOKEN)
    app = asgi_app(settings, worker=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until_serving(server, task)
        port = server.servers[0].sockets[0].getsockname()[1]
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as c:
            assert (await c.get("/api/v1/health")).status_code == 204
            created = await c.post("/api/v1/app", json={"name": "Acme"})
            assert created.status_code == 201
    finally:
        server.should_exit = True
        await task
