"""Issue 25.3 and 25.10: what idempotency keys hold, how long, and which request is "the same".

* One key is one slot per route and application, whatever the path's spelling (``/msg``,
  ``/msg/``, the application's uid): one message, through the front door and the stack.
* Stored answers are sealed with the main key (they hold rotated ``whsec_`` keys and live
  tokens), deleted in the background once expired, and deleted with their application.
* A scan of every table and column, after the flows that used to leave secrets behind, finds
  no ``whsec_``, no token and no expunged payload.
"""

from __future__ import annotations

import sqlite3

import asyncpg
import httpx
import pytest

from hookpost.services.idempotency import IDEMPOTENCY_TTL_MS
from hookpost.store.secretbox import generate_main_key
from tests.integration.test_api_harness import ApiServer, running_api
from tests.support.polling import eventually

MAIN_KEY = generate_main_key()
JSON = {"content-type": "application/json"}
ROUTED = {"content-type": "application/vnd.api+json"}  # not the front door's: the stack's


async def new_app(http: httpx.AsyncClient, uid: str) -> str:
    created = await http.post("/api/v1/app", json={"name": uid, "uid": uid})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.parametrize("headers", [JSON, ROUTED], ids=["front-door", "stack"])
async def test_one_key_is_one_message_whatever_the_path_spelling(
    any_database_url: str, headers: dict[str, str]
) -> None:
    async with running_api(any_database_url, main_key=MAIN_KEY) as api, api.http() as http:
        app_id = await new_app(http, "acme")
        body = httpx.Request("POST", "/", json={"eventType": "a.b", "payload": {"n": 1}}).content
        keyed = {**headers, "idempotency-key": "spelled-thrice"}
        ids = set()
        for path in (
            f"/api/v1/app/{app_id}/msg",
            f"/api/v1/app/{app_id}/msg/",
            "/api/v1/app/acme/msg",
        ):
            sent = await http.post(path, content=body, headers=keyed, follow_redirects=True)
            assert sent.status_code == 202, (path, sent.text)
            ids.add(sent.json()["id"])
        listed = (await http.get(f"/api/v1/app/{app_id}/msg")).json()["data"]
        assert len(listed) == 1 and ids == {listed[0]["id"]}


async def test_one_key_is_one_endpoint_whatever_the_app_spelling(any_database_url: str) -> None:
    async with running_api(any_database_url, main_key=MAIN_KEY) as api, api.http() as http:
        app_id = await new_app(http, "acme")
        keyed = {"idempotency-key": "ep"}
        made = set()
        for spelling in (app_id, "acme"):
            created = await http.post(
                f"/api/v1/app/{spelling}/endpoint",
                json={"url": "https://example.com/hook"},
                headers=keyed,
            )
            assert created.status_code == 201, created.text
            made.add(created.json()["id"])
        assert len(made) == 1
        listed = (await http.get(f"/api/v1/app/{app_id}/endpoint")).json()["data"]
        assert [e["id"] for e in listed] == list(made)


async def table_texts(api: ApiServer) -> dict[str, list[str]]:
    """Every row of every table of the API's database, each as one text (every column)."""
    url = api.hp.settings.database_url
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            found = {}
            for table in tables:
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                found[table] = [
                    " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
                    for row in rows
                ]
            return found
        finally:
            conn.close()
    pg = await asyncpg.connect(url)
    try:
        tables = [
            r[0]
            for r in await pg.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        found = {}
        for table in tables:
            # bytea columns as text come out as \x<hex>: decode them too.
            rows = await pg.fetch(f'SELECT t::text AS row, t AS rec FROM "{table}" t')
            found[table] = [
                r["row"]
                + " "
                + " ".join(v.decode("latin-1") for v in r["rec"] if isinstance(v, bytes))
                for r in rows
            ]
        return found
    finally:
        await pg.close()


async def test_no_secret_token_or_expunged_payload_is_left_in_the_database(
    any_database_url: str,
) -> None:
    marker = "expunged-payload-7f3a9c"
    async with running_api(any_database_url, main_key=MAIN_KEY) as api, api.http() as http:
        app_id = await new_app(http, "acme")
        gone = await new_app(http, "gone")
        secrets_seen: list[str] = []
        tokens_seen: list[str] = []
        for a in (app_id, gone):
            ep = await http.post(
                f"/api/v1/app/{a}/endpoint",
                json={"url": "https://example.com/hook"},
                headers={"idempotency-key": f"ep-{a}"},
            )
            assert ep.status_code == 201
            ep_id = ep.json()["id"]
            rotated = await http.post(
                f"/api/v1/app/{a}/endpoint/{ep_id}/secret/rotate",
                json={},
                headers={"idempotency-key": f"rotate-{a}"},
            )
            assert rotated.status_code in (200, 204), rotated.text
            secret = await http.get(f"/api/v1/app/{a}/endpoint/{ep_id}/secret")
            secrets_seen.append(secret.json()["key"])
            if rotated.content:
                secrets_seen.append(rotated.json()["key"])
            portal = await http.post(
                f"/api/v1/auth/app-portal-access/{a}",
                json={},
                headers={"idempotency-key": f"portal-{a}"},
            )
            assert portal.status_code == 200
            tokens_seen.append(portal.json()["token"])
            again = await http.post(
                f"/api/v1/auth/app-portal-access/{a}",
                json={},
                headers={"idempotency-key": f"portal-{a}"},
            )  # a replay: the sealed answer, opened
            assert again.headers.get("idempotent-replayed") == "true"
            assert again.json() == portal.json()
        admin = await http.post(
            "/api/v1/auth/token", json={"name": "ops"}, headers={"idempotency-key": "tok"}
        )
        assert admin.status_code == 201, admin.text
        tokens_seen.append(admin.json()["token"])
        sent = await http.post(
            f"/api/v1/app/{app_id}/msg",
            json={"eventType": "a.b", "payload": {"secret": marker}},
            headers={"idempotency-key": "msg"},
        )
        assert sent.status_code == 202
        expunged = await http.delete(f"/api/v1/app/{app_id}/msg/{sent.json()['id']}/content")
        assert expunged.status_code in (200, 204), expunged.text
        # Controls: the answers are there (so the scan reads what it should).
        before = await table_texts(api)
        assert len(before["idempotency_keys"]) >= 8
        assert any(gone in row for row in before["idempotency_keys"])
        deleted = await http.delete(f"/api/v1/app/{gone}")
        assert deleted.status_code == 204

        found = await table_texts(api)
        everything = "\n".join(row for rows in found.values() for row in rows)
        assert "whsec_" not in everything
        assert all(s.removeprefix("whsec_") not in everything for s in secrets_seen)
        assert all(t not in everything for t in tokens_seen)
        assert all(t.removeprefix("hpk_") not in everything for t in tokens_seen)
        assert marker not in everything
        assert not any(gone in row for row in found["idempotency_keys"]), "app's keys left"
        assert any(app_id in row for row in found["idempotency_keys"])  # the other app's stay


async def test_expired_keys_are_deleted_in_the_background(any_database_url: str) -> None:
    async with running_api(any_database_url, main_key=MAIN_KEY) as api:
        store, service = api.hp.store, api.hp.services.idempotency
        now = service._clock()
        for i in range(5):
            await store.put_idempotent("tok", f"old-{i}", 200, b"{}", now - 1, now - 2)
        await store.put_idempotent("tok", "live", 200, b"{}", now + IDEMPOTENCY_TTL_MS, now)
        assert await service.purge_expired(batch=2) == 5
        assert await store.get_idempotent("tok", "live", now) is not None
        # And a worker process does so by itself.
        await store.put_idempotent("tok", "stale", 200, b"{}", now - 1, now - 2)
        await api.hp.stop_worker()
        await api.hp.start_worker()

        async def purged() -> bool:
            return "stale" not in "\n".join((await table_texts(api))["idempotency_keys"])

        await eventually(purged)
