"""Fixtures for the store contract suite: every test runs once per backend.

``store`` is an opened, migrated store on a fresh database (SQLite file or throwaway
PostgreSQL database). ``world`` is a DeliveryQueue with a way to fill it
(``support.QueueWorld``): such a store, or the in-memory queue. The PostgreSQL parameter
carries the ``postgres`` marker, so the suite-wide PostgreSQL policy in ``tests/conftest.py``
(skip without a server, or fail when ``HOOKPOST_REQUIRE_POSTGRES=1``) applies to it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from hookpost.store.base import Store
from hookpost.store.rows import PlainBox, SecretBox

from .support import MemoryWorld, QueueWorld, StoreWorld

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
URL_FIXTURES = {"sqlite": "migrated_sqlite_url", "postgres": "migrated_postgres_url"}

StoreFactory = Callable[..., AbstractAsyncContextManager[Store]]


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:") else "postgres"


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def postgres_store_class() -> type[Any]:
    """hookpost.store.postgres.store.PostgresStore, imported lazily."""
    from hookpost.store.postgres.store import PostgresStore

    return PostgresStore


def build_store(url: str, box: SecretBox | None = None) -> Store:
    """A store (not yet opened) on an already-migrated database."""
    box = box or PlainBox()
    if backend_of(url) == "sqlite":
        from hookpost.store.sqlite.store import SqliteStore

        return SqliteStore(sqlite_path(url), box)
    return postgres_store_class()(url, box)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A migrated, opened store on a fresh database, once per backend."""
    url: str = request.getfixturevalue(URL_FIXTURES[request.param])  # already migrated
    s = build_store(url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=[*BACKENDS, pytest.param("memory", id="memory")])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[QueueWorld]:
    """A DeliveryQueue to fill and claim from, once per backend and once in memory."""
    if request.param == "memory":
        yield MemoryWorld()
        return
    url: str = request.getfixturevalue(URL_FIXTURES[request.param])  # already migrated
    s = build_store(url)
    await s.open()
    try:
        yield StoreWorld(s)
    finally:
        await s.close()


@pytest.fixture
def store_url(request: pytest.FixtureRequest, store: Store) -> str:
    """The database URL behind ``store`` (the same per-test fresh database)."""
    kind = request.node.callspec.params["store"]
    return str(request.getfixturevalue(URL_FIXTURES[kind]))


@pytest.fixture
def store_factory(store_url: str) -> StoreFactory:
    """Opens further store instances on the database behind ``store`` (as another process
    would): ``async with store_factory() as other: ...``; ``box=`` seals and opens its keys."""

    @asynccontextmanager
    async def factory(box: SecretBox | None = None) -> AsyncIterator[Store]:
        s = build_store(store_url, box)
        await s.open()
        try:
            yield s
        finally:
            await s.close()

    return factory


# --------------------------------------------------------------------- migration fixtures


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (no schema) per backend, for the migration tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    async with _empty_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


async def _pg_execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def _empty_postgres_database(server_url: str) -> AsyncIterator[str]:
    name = f"hookpost_t_{secrets.token_hex(6)}"
    await _pg_execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + quote(name, safe="")))
    finally:
        await _pg_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def second_database_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[str]:
    """Another empty database of the same kind as ``database_url``."""
    if backend_of(database_url) == "sqlite":
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    async with _empty_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url
