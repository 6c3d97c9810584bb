"""Issue 25's bad-input findings through the REST API, on SQLite and PostgreSQL: list filters
with too many values, dates past what a datetime can hold, NUL characters in paths and
queries, application uids that look like ids. Every answer is a 4xx naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
import pytest_asyncio

from hookpost.api.fields import MAX_EVENT_TYPES
from tests.integration.conftest import ServedApi
from tests.integration.test_api_errors import assert_invalid

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

PUBLIC_URL = "https://example.com/hook"  # never contacted: the worker is off


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    module_database_url: str, serve_api: Callable[..., AbstractAsyncContextManager[ServedApi]]
) -> AsyncIterator[ServedApi]:
    async with serve_api(module_database_url) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def http(api: ServedApi) -> AsyncIterator[httpx.AsyncClient]:
    async with api.http() as client:
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def ids(http: httpx.AsyncClient) -> dict[str, str]:
    app = await http.post("/api/v1/app", json={"name": "Acme"})
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    ep = await http.post(f"/api/v1/app/{app_id}/endpoint", json={"url": PUBLIC_URL})
    assert ep.status_code == 201, ep.text
    msg = await http.post(f"/api/v1/app/{app_id}/msg", json={"eventType": "a.b", "payload": {}})
    assert msg.status_code == 202, msg.text
    return {"app_id": app_id, "endpoint_id": ep.json()["id"], "msg_id": msg.json()["id"]}


def _list_paths(ids: dict[str, str]) -> list[str]:
    app_id, ep_id, msg_id = ids["app_id"], ids["endpoint_id"], ids["msg_id"]
    return [
        f"/api/v1/app/{app_id}/msg",
        f"/api/v1/app/{app_id}/attempt/endpoint/{ep_id}",
        f"/api/v1/app/{app_id}/attempt/msg/{msg_id}",
        f"/api/v1/app/{app_id}/endpoint/{ep_id}/msg",
    ]


# --------------------------------------------------------------------------- list filters


async def test_event_types_filter_is_capped(http: httpx.AsyncClient, ids: dict[str, str]) -> None:
    at_cap = ",".join(f"t{i}" for i in range(MAX_EVENT_TYPES))
    over = f"{at_cap},one.more"
    for path in _list_paths(ids):
        ok = await http.get(f"{path}?event_types={at_cap}")
        assert ok.status_code == 200, (path, ok.text[:300])
        # Spread over repeated parameters as well as commas.
        refused = await http.get(f"{path}?event_types={at_cap}&event_types=one.more")
        assert_invalid(refused, "query", "event_types")
        assert_invalid(await http.get(f"{path}?event_types={over}"), "query", "event_types")
