"""Quotas and bounds through the API and the library: endpoints per application, event types,
URL length, recover's range, pages bounded by their payloads, deletions in batches."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hookpost.domain.errors import InvalidInput, LimitExceeded, NotFound
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.limits import MAX_URL_LENGTH
from hookpost.wiring import Hookpost
from tests.integration.conftest import ServedApi
from tests.integration.test_api_errors import assert_error, assert_invalid
from tests.support.polling import eventually
from tests.support.receiver import Receiver

Serve = Callable[..., AbstractAsyncContextManager[ServedApi]]
URL = "https://example.com/hook"


async def new_app(http: httpx.AsyncClient, **body: Any) -> str:
    r = await http.post("/api/v1/app", json={"name": "Acme", **body})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_endpoints_per_app_are_capped_with_409_naming_the_setting(
    serve_api: Serve, any_database_url: str
) -> None:
    async with serve_api(any_database_url, max_endpoints_per_app=2) as api, api.http() as http:
        app_id, other = await new_app(http), await new_app(http)
        base = f"/api/v1/app/{app_id}/endpoint"
        ids = []
        for _ in range(2):
            r = await http.post(base, json={"url": URL})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        body = assert_error(await http.post(base, json={"url": URL}), 409, "limit_exceeded")
        assert "HOOKPOST_MAX_ENDPOINTS_PER_APP (2)" in body["detail"]
        # PUT that would create one: the same answer; an update of an existing one is fine.
        r = await http.put(f"{base}/new-uid", json={"url": URL})
        assert_error(r, 409, "limit_exceeded")
        assert (await http.put(f"{base}/{ids[0]}", json={"url": URL + "2"})).status_code == 200
        r = await http.post(f"/api/v1/app/{other}/endpoint", json={"url": URL})
        assert r.status_code == 201, r.text
        # A deleted endpoint frees its place.
        assert (await http.delete(f"{base}/{ids[0]}")).status_code == 204
        assert (await http.post(base, json={"url": URL})).status_code == 201
        # The library path is held to the same limit.
        with pytest.raises(LimitExceeded):
            await api.hp.endpoints.create(app_id, NewEndpoint(url=URL))


async def test_event_types_are_capped_with_409_naming_the_setting(
    serve_api: Serve, fresh_sqlite_url: str
) -> None:
    async with serve_api(fresh_sqlite_url, max_event_types=1) as api, api.http() as http:
        r = await http.post("/api/v1/event-type", json={"name": "a.one", "description": ""})
        assert r.status_code == 201, r.text
        r = await http.post("/api/v1/event-type", json={"name": "a.two", "description": ""})
        body = assert_error(r, 409, "limit_exceeded")
        assert "HOOKPOST_MAX_EVENT_TYPES (1)" in body["detail"]
        r = await http.put("/api/v1/event-type/a.two", json={"description": ""})
        assert_error(r, 409, "limit_exceeded")
        # Archived and brought back: no new row, so no limit in the way.
        assert (await http.delete("/api/v1/event-type/a.one")).status_code == 204
        r = await http.post("/api/v1/event-type", json={"name": "a.one", "description": ""})
        assert r.status_code == 201, r.text


async def test_long_urls_are_refused_naming_url(serve_api: Serve, fresh_sqlite_url: str) -> None:
    longest = "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/"))
    too_long = longest + "a"
    async with serve_api(fresh_sqlite_url) as api, api.http() as http:
        base = f"/api/v1/app/{await new_app(http)}/endpoint"
        r = await http.post(base, json={"url": longest})
        assert r.status_code == 201, r.text
        ep = f"{base}/{r.json()['id']}"
        assert_invalid(await http.post(base, json={"url": too_long}), "body", "url")
        assert_invalid(await http.put(ep, json={"url": too_long}), "body", "url")
        assert_invalid(await http.patch(ep, json={"url": too_long}), "body", "url")
        schema = (await http.get("/api/v1/openapi.json")).json()["components"]["schemas"]
        assert schema["EndpointIn"]["properties"]["url"]["maxLength"] == MAX_URL_LENGTH
        app_id = base.split("/")[4]
        with pytest.raises(InvalidInput) as refused:
            await api.hp.endpoints.create(app_id, NewEndpoint(url=too_long))
        assert refused.value.field == "url"


async def test_recover_looks_back_at_most_14_days(serve_api: Serve, fresh_sqlite_url: str) -> None:
    async with serve_api(fresh_sqlite_url) as api, api.http() as http:
        base = f"/api/v1/app/{await new_app(http)}/endpoint"
        ep = (await http.post(base, json={"url": URL})).json()["id"]
        now = datetime.now(UTC)
        for since in (now - timedelta(days=14, minutes=1), datetime(1970, 1, 1, tzinfo=UTC)):
            r = await http.post(f"{base}/{ep}/recover", json={"since": since.isoformat()})
            items = assert_invalid(r, "body", "since")
            assert "14 days" in items[0]["msg"], items
        r = await http.post(f"{base}/{ep}/recover", json={"since": "2000-01-01T00:00:00Z"})
        assert_invalid(r, "body", "since")
        recent = (now - timedelta(days=13, hours=23)).isoformat()
        r = await http.post(f"{base}/{ep}/recover", json={"since": recent})
        assert r.status_code == 202, r.text
        r = await http.post(f"{base}/nope/recover", json={"since": "2000-01-01T00:00:00Z"})
        assert r.status_code == 404, r.text  # an unknown endpoint: 404 before the 422


PAYLOAD_BYTES = 256 * 1024
BUDGET = 3 * PAYLOAD_BYTES + PAYLOAD_BYTES // 2


async def test_pages_with_content_stop_at_the_byte_budget(
    serve_api: Serve, any_database_url: str
) -> None:
    """Pages of 250 messages of 256 KiB would build 64 MiB; with a budget of three and a half
    payloads, each page holds three messages, and the iterator walks them all."""
    settings = {"max_page_content_bytes": BUDGET}
    async with serve_api(any_database_url, **settings) as api, api.http() as http:
        app_id = await new_app(http)
        ep = (await http.post(f"/api/v1/app/{app_id}/endpoint", json={"url": URL})).json()["id"]
        sent = []
        for i in range(8):
            payload = {"i": i, "pad": "x" * PAYLOAD_BYTES}
            r = await http.post(
                f"/api/v1/app/{app_id}/msg", json={"eventType": "big.one", "payload": payload}
            )
            assert r.status_code == 202, r.text
            sent.append(r.json()["id"])
        newest_first = sent[::-1]
        for path in (f"/api/v1/app/{app_id}/msg", f"/api/v1/app/{app_id}/endpoint/{ep}/msg"):
            seen: list[str] = []
            params: dict[str, Any] = {"limit": 250}
            while True:
                r = await http.get(path, params=params)
                assert r.status_code == 200, r.text
                page = r.json()
                assert len(page["data"]) <= 3 and len(r.content) < BUDGET + 64 * 1024
                assert all(len(m["payload"]["pad"]) == PAYLOAD_BYTES for m in page["data"])
                seen += [m["id"] for m in page["data"]]
                if page["done"]:
                    break
                assert page["iterator"] == seen[-1]
                params["iterator"] = page["iterator"]
            assert seen == newest_first, path
            # Without content, nothing is cut.
            r = await http.get(path, params={"limit": 250, "with_content": "false"})
            page = r.json()
            assert [m["id"] for m in page["data"]] == newest_first and page["done"]
            assert {str(m["payload"]) for m in page["data"]} == {"{}"}


async def test_a_deleted_endpoint_is_never_sent_to_even_if_its_deletion_is_interrupted(
    fresh_sqlite_url: str,
) -> None:
    """Its deliveries are queued; its deletion hides it, then is interrupted before its rows
    are gone (a crash). The worker then sends nothing to it, and finishes the deletion."""
    receiver = await Receiver().start()
    try:
        async with Hookpost.open(fresh_sqlite_url, allow_subnets="127.0.0.0/8") as hp:
            app = await hp.apps.create("Acme")
            gone = await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/gone")))
            await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url("/kept")))
            msgs = [(await hp.messages.send(app.id, "a.b", {"i": i})).message for i in range(5)]

            store: Any = hp.store
            store.batch_rows = 1

            async def crash(*args: Any) -> int:
                raise RuntimeError("the process died here")

            store._delete_some = crash
            with pytest.raises(RuntimeError):
                await hp.endpoints.delete(app.id, gone.id)
            del store._delete_some
            with pytest.raises(NotFound):
                await hp.endpoints.get(app.id, gone.id)

            await hp.start_worker()  # also finishes the interrupted deletion
            await receiver.wait_for(5, "/kept")

            async def purged() -> bool:
                try:
                    await hp.store.get_delivery(msgs[0].id, gone.id)
                except NotFound:
                    return True
                return False

            await eventually(purged)
            assert len(receiver.on("/kept")) == 5 and receiver.on("/gone") == []
    finally:
        await receiver.stop()
