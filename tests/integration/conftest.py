"""Fixtures shared by the integration tests, beside ``test_api_harness.running_api``.

* ``serve_api(database_url, *, worker=False, **settings)``: an async context manager that
  serves ``create_app(hp)`` with uvicorn on a free 127.0.0.1 port and yields a ``ServedApi``
  (an ``ApiServer`` that also holds the ASGI ``app``). Unlike ``running_api`` it applies no
  test defaults beyond the admin token (the SSRF guard keeps its production setting: no allow
  list), and the worker is off unless asked for, so nothing is ever delivered.
* ``any_database_url``: a fresh SQLite file, then an empty migrated PostgreSQL database (the
  latter marked ``postgres``: skipped without a server unless HOOKPOST_REQUIRE_POSTGRES=1).
  ``module_database_url`` is the same, shared by the tests of one module.
* ``api`` (a ``running_api`` on ``any_database_url`` with a main key), ``http`` (its admin
  client), ``svix`` (its svix SDK client), and ``app_id`` (an application "Acme"): the
  defaults a module overrides by defining its own.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from svix.api import SvixAsync

from hookpost.store.secretbox import generate_main_key
from tests.integration.test_api_harness import ApiServer, close_svix, running_api


@dataclass
class ServedApi:
    url: str
    hp: Any  # hookpost.wiring.Hookpost
    app: Any  # the FastAPI application
    admin_token: str

    def http(self, token: str | None = "") -> Any:
        """An ``httpx.AsyncClient`` with ``token`` (default: the admin token; None: none)."""
        import httpx

        token = self.admin_token if token == "" else token
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0)


@asynccontextmanager
async def _serve(settings: Any, worker: bool) -> AsyncIterator[ServedApi]:
    import uvicorn

    from hookpost.api.app import create_app
    from hookpost.api.transport import CoalescingHttpToolsProtocol
    from hookpost.wiring import Hookpost
    from tests.support.polling import until_serving

    hp = Hookpost(settings)
    await hp.start(worker=worker)
    try:
        await hp.services.tokens.ensure_admin(settings.admin_token)
        app = create_app(hp)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            http=CoalescingHttpToolsProtocol,  # as hookpost serve runs it
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())

        try:
            await until_serving(server, task)
            port = server.servers[0].sockets[0].getsockname()[1]
            yield ServedApi(f"http://127.0.0.1:{port}", hp, app, settings.admin_token)
        finally:
            server.should_exit = True
            await task
    finally:
        await hp.stop()


@pytest.fixture(scope="session")
def serve_api() -> Callable[..., AbstractAsyncContextManager[ServedApi]]:
    from hookpost.settings import Settings
    from hookpost.store.secretbox import generate_main_key
    from tests.integration.test_api_harness import ADMIN_TOKEN

    def start(
        database_url: str, *, worker: bool = False, **settings: Any
    ) -> AbstractAsyncContextManager[ServedApi]:
        settings.setdefault("admin_token", ADMIN_TOKEN)
        if not database_url.startswith("sqlite"):
            settings.setdefault("main_key", generate_main_key())
        return _serve(Settings(database_url=database_url, **settings), worker)

    return start


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_database_url(request: pytest.FixtureRequest) -> str:
    name = "fresh_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like ``any_database_url`` but shared by a module's tests (one server per backend)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'hookpost.db'}"
        return
    from tests.conftest import database_name, execute, quote_ident, run_sync, with_database

    server_url = request.getfixturevalue("postgres_url")
    template = quote_ident(database_name(request.getfixturevalue("migrated_template_url")))
    name = f"hookpost_m_{secrets.token_hex(6)}"
    run_sync(execute(server_url, f"CREATE DATABASE {quote_ident(name)} TEMPLATE {template}"))
    try:
        yield with_database(server_url, name)
    finally:
        run_sync(execute(server_url, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)"))


@pytest.fixture
async def api(any_database_url: str) -> AsyncIterator[ApiServer]:
    # PostgreSQL needs a main key (keys sealed at rest); SQLite would keep one beside its file.
    async with running_api(any_database_url, main_key=generate_main_key()) as server:
        yield server


@pytest.fixture
async def http(api: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with api.http() as client:
        yield client


@pytest.fixture
async def svix(api: ApiServer) -> AsyncIterator[SvixAsync]:
    client = api.svix()
    yield client
    await close_svix(client)


@pytest.fixture
async def app_id(http: httpx.AsyncClient) -> str:
    response = await http.post("/api/v1/app", json={"name": "Acme"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
