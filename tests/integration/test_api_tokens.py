"""Token management through the API (a hookpost extension): list, create, revoke; the token
set by HOOKPOST_ADMIN_TOKEN replaced when the variable changes; failed lookups cached.

``hookpost token ...`` (the CLI) and a restart with another HOOKPOST_ADMIN_TOKEN are in
``tests/multiprocess/test_cli.py``; who may call what is ``test_permissions.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hookpost.api.app import create_app
from hookpost.api.auth import CACHE_TTL_S, Authenticator
from tests.integration.test_api_errors import assert_error, assert_invalid
from tests.integration.test_api_harness import ApiServer, running_api

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def api(fresh_sqlite_url: str) -> AsyncIterator[ApiServer]:
    async with running_api(fresh_sqlite_url) as server:
        yield server


@pytest.fixture
async def admin(api: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with api.http() as client:
        yield client


async def listed(admin: httpx.AsyncClient, query: str = "") -> list[dict[str, Any]]:
    response = await admin.get(f"/api/v1/auth/token{query}")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def test_create_list_and_revoke_an_admin_token(api: ApiServer, admin: httpx.AsyncClient):
    created = await admin.post("/api/v1/auth/token", json={"name": "ci", "expiry": 3600})
    assert created.status_code == 201, created.text
    out = created.json()
    assert set(out) == {"id", "name", "appId", "createdAt", "expiresAt", "hint", "token"}
    assert out["name"] == "ci" and out["appId"] is None and out["expiresAt"] is not None
    token = out["token"]
    async with api.http(token) as new:
        assert (await new.get("/api/v1/app")).status_code == 200  # works at once

    tokens = await listed(admin)
    assert {t["name"] for t in tokens} == {"HOOKPOST_ADMIN_TOKEN", "ci"}
    for t in tokens:  # never the token, nor its hash: its last four characters at most
        assert set(t) == {"id", "name", "appId", "createdAt", "expiresAt", "hint"}
    by_name = {t["name"]: t for t in tokens}
    assert by_name["ci"]["hint"] == "..." + token[-4:] == out["hint"]
    assert by_name["HOOKPOST_ADMIN_TOKEN"]["hint"] == "..." + api.admin_token[-4:]
    text = (await admin.get("/api/v1/auth/token")).text
    stored = await api.hp.services.tokens.authenticate(token)
    assert stored is not None
    assert token not in text and stored.token_hash not in text

    revoked = await admin.delete(f"/api/v1/auth/token/{out['id']}")
    assert revoked.status_code == 204, revoked.text
    async with api.http(token) as gone:  # this process refuses it at once
        assert_error(await gone.get("/api/v1/app"), 401, "authentication_failed")
    assert_error(await admin.delete(f"/api/v1/auth/token/{out['id']}"), 404, "not_found")
    assert [t["name"] for t in await listed(admin)] == ["HOOKPOST_ADMIN_TOKEN"]


async def test_an_app_scoped_token_has_the_portal_permissions(
    api: ApiServer, admin: httpx.AsyncClient
):
    app = (await admin.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})).json()
    other = (await admin.post("/api/v1/app", json={"name": "Other"})).json()
    created = await admin.post("/api/v1/auth/token", json={"appId": "acme", "name": "portal"})
    assert created.status_code == 201, created.text
    assert created.json()["appId"] == app["id"]  # the uid resolved to the id
    await admin.post(f"/api/v1/auth/app-portal-access/{other['id']}", json={})

    assert [t["appId"] for t in await listed(admin, "?app_id=acme")] == [app["id"]]
    assert [t["appId"] for t in await listed(admin, f"?app_id={other['id']}")] == [other["id"]]
    assert_error(await admin.get("/api/v1/auth/token?app_id=nope"), 404, "not_found")

    async with api.http(created.json()["token"]) as scoped:
        assert (await scoped.get("/api/v1/app/acme")).status_code == 200
        assert_error(await scoped.get("/api/v1/auth/token"), 403, "forbidden")
        assert_error(await scoped.post("/api/v1/auth/token", json={}), 403, "forbidden")
        assert_error(
            await scoped.delete(f"/api/v1/auth/token/{created.json()['id']}"), 403, "forbidden"
        )


async def test_bad_token_requests_are_4xx_naming_the_field(admin: httpx.AsyncClient):
    assert_invalid(
        await admin.post("/api/v1/auth/token", json={"name": "HOOKPOST_ADMIN_TOKEN"}),
        "body",
        "name",
    )
    assert_invalid(await admin.post("/api/v1/auth/token", json={"expiry": 0}), "body", "expiry")
    assert_invalid(await admin.post("/api/v1/auth/token", json={"name": "x" * 300}), "body", "name")
    assert_error(await admin.post("/api/v1/auth/token", json={"appId": "nope"}), 404, "not_found")
    assert_invalid(await admin.delete("/api/v1/auth/token/a b"), "path", "token_id")


async def test_an_expired_token_is_refused(
    api: ApiServer, admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    created = (await admin.post("/api/v1/auth/token", json={"expiry": 60})).json()
    record = await api.hp.services.tokens.authenticate(created["token"])
    assert record is not None and record.expires_at == record.created_at + 60_000
    async with api.http(created["token"]) as http:
        assert (await http.get("/api/v1/app")).status_code == 200  # and now cached
        tokens = api.hp.services.tokens
        now = record.created_at + 60_000  # the expiry, read through the service's clock
        monkeypatch.setattr(tokens, "_clock", lambda: now)
        assert_error(await http.get("/api/v1/app"), 401, "authentication_failed")
        now -= 1
        assert (await http.get("/api/v1/app")).status_code == 200


async def test_revoking_reaches_other_processes_within_the_cache_lifetime(api: ApiServer):
    """Another API process (another app over the same database) caches a token it has
    authenticated; once the token is revoked here, it refuses it when the entry expires."""
    other_app = create_app(api.hp)
    now = [1000.0]
    other_auth = Authenticator(api.hp.services.tokens, clock=lambda: now[0])
    other_app.state.api.authenticator = other_auth
    token, record = await api.hp.services.tokens.create(name="leaked")
    assert await other_auth.authenticate(token) == record  # cached there
    async with api.http() as admin:
        assert (await admin.delete(f"/api/v1/auth/token/{record.id}")).status_code == 204
    assert await other_auth.authenticate(token) == record  # still cached: at most CACHE_TTL_S
    now[0] += CACHE_TTL_S
    assert await other_auth.authenticate(token) is None


async def test_a_new_admin_token_value_replaces_the_old_one(api: ApiServer):
    tokens = api.hp.services.tokens
    old = api.admin_token
    assert await tokens.authenticate(old) is not None
    source, printed = await tokens.ensure_admin("hp-the-next-admin-token")  # a restart, changed
    assert printed is None and "revoked" in source
    assert await tokens.authenticate(old) is None
    assert await tokens.authenticate("hp-the-next-admin-token") is not None
    assert await tokens.ensure_admin("hp-the-next-admin-token") == ("HOOKPOST_ADMIN_TOKEN", None)
    assert await tokens.authenticate("hp-the-next-admin-token") is not None
    # Tokens made otherwise are left alone.
    kept, _ = await tokens.create(name="ci")
    await tokens.ensure_admin("hp-yet-another-admin-token")
    assert await tokens.authenticate(kept) is not None


async def test_a_flood_of_bogus_tokens_costs_one_read_per_token(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch
):
    """Each request authenticates up to three times (rate limit, idempotency, route): a bogus
    token is read from the store once, then answered from the negative cache."""
    reads: list[str] = []
    find = api.hp.store.find_token

    async def counting(token_hash: str) -> Any:
        reads.append(token_hash)
        return await find(token_hash)

    monkeypatch.setattr(api.hp.store, "find_token", counting)
    async with api.http("hpk_bogus-1") as bogus:
        for _ in range(20):
            r = await bogus.post(
                "/api/v1/app", json={"name": "x"}, headers={"idempotency-key": "k"}
            )
            assert_error(r, 401, "authentication_failed")
            assert_error(await bogus.get("/api/v1/app"), 401, "authentication_failed")
    assert len(reads) == 1
    async with api.http("hpk_bogus-2") as bogus:
        assert_error(await bogus.get("/api/v1/app"), 401, "authentication_failed")
    assert len(reads) == 2


async def test_the_openapi_document_lists_the_token_operations(admin: httpx.AsyncClient):
    doc = (await admin.get("/api/v1/openapi.json")).json()
    ops = {
        op["operationId"]: op
        for path in ("/api/v1/auth/token", "/api/v1/auth/token/{token_id}")
        for op in doc["paths"][path].values()
    }
    assert set(ops) == {
        "v1.authentication.list-tokens",
        "v1.authentication.create-token",
        "v1.authentication.revoke-token",
    }
    listed_schema = doc["components"]["schemas"]["ApiTokenOut"]["properties"]
    assert set(listed_schema) == {"id", "name", "appId", "createdAt", "expiresAt", "hint"}
