"""Error shapes, authentication and tenancy, idempotency keys, content types and the request-size
cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from svix.api import ApplicationIn, EndpointIn, MessageIn, SvixAsync
from svix.exceptions import HttpError, HTTPValidationError

from tests.integration.test_api_harness import ADMIN_TOKEN, ApiServer, running_api
from tests.support.polling import eventually

MAX_PAYLOAD = 4096


@pytest.fixture
async def api(fresh_sqlite_url: str) -> AsyncIterator[ApiServer]:
    async with running_api(fresh_sqlite_url, max_payload_bytes=MAX_PAYLOAD) as server:
        yield server


@pytest.fixture
async def app_id(http: httpx.AsyncClient) -> str:
    response = await http.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    assert response.status_code == 201
    return str(response.json()["id"])


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    return dict(body)


def assert_invalid(response: httpx.Response, *loc: str | int) -> list[dict[str, Any]]:
    """A 422 in the Svix/FastAPI shape, one of whose errors is located at ``loc``."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail and all(set(item) == {"loc", "msg", "type"} for item in detail), detail
    assert any(tuple(item["loc"][: len(loc)]) == loc for item in detail), detail
    return list(detail)


# --------------------------------------------------------------------------- 404 / 409


async def test_unknown_ids_are_404_with_code_and_detail(
    http: httpx.AsyncClient, app_id: str
) -> None:
    for path in (
        "/api/v1/app/app_nope",
        "/api/v1/app/nope/endpoint",
        "/api/v1/app/nope/msg",
        f"/api/v1/app/{app_id}/endpoint/ep_nope",
        f"/api/v1/app/{app_id}/endpoint/ep_nope/secret",
        f"/api/v1/app/{app_id}/endpoint/ep_nope/stats",
        f"/api/v1/app/{app_id}/msg/msg_nope",
        f"/api/v1/app/{app_id}/msg/msg_nope/endpoint",
        f"/api/v1/app/{app_id}/attempt/msg/msg_nope",
        f"/api/v1/app/{app_id}/attempt/endpoint/ep_nope",
        f"/api/v1/app/{app_id}/msg/msg_nope/attempt/atmpt_nope",
        "/api/v1/event-type/no.such.type",
    ):
        assert_error(await http.get(path), 404, "not_found")
    assert_error(
        await http.post("/api/v1/app/nope/msg", json={"eventType": "a.b", "payload": {}}),
        404,
        "not_found",
    )
    assert_error(await http.delete("/api/v1/app/app_nope"), 404, "not_found")
    assert_error(await http.get("/no/such/route"), 404, "not_found")
    assert_error(await http.put("/api/v1/health"), 405, "method_not_allowed")


async def test_sdk_sees_404_as_http_error(svix: SvixAsync) -> None:
    with pytest.raises(HttpError) as err:
        await svix.application.get("missing")
    assert (err.value.status_code, err.value.code) == (404, "not_found")


async def test_duplicates_are_409(http: httpx.AsyncClient, app_id: str) -> None:
    assert_error(
        await http.post("/api/v1/app", json={"name": "Again", "uid": "acme"}), 409, "conflict"
    )
    event_type = {"name": "a.b", "description": "x"}
    assert (await http.post("/api/v1/event-type", json=event_type)).status_code == 201
    assert_error(await http.post("/api/v1/event-type", json=event_type), 409, "conflict")
    endpoint = {"url": "http://127.0.0.1:9/x", "uid": "ep1"}
    assert (await http.post(f"/api/v1/app/{app_id}/endpoint", json=endpoint)).status_code == 201
    assert_error(await http.post(f"/api/v1/app/{app_id}/endpoint", json=endpoint), 409, "conflict")

    message = {"eventType": "a.b", "payload": {"n": 1}, "eventId": "evt-1"}
    first = await http.post(f"/api/v1/app/{app_id}/msg", json=message)
    assert first.status_code == 202
    body = assert_error(await http.post(f"/api/v1/app/{app_id}/msg", json=message), 409, "conflict")
    assert first.json()["id"] in body["detail"]
    listed = (await http.get(f"/api/v1/app/{app_id}/msg")).json()
    assert [m["id"] for m in listed["data"]] == [first.json()["id"]]


# --------------------------------------------------------------------------- 422


async def test_malformed_bodies_and_bad_values_are_422_naming_the_field(
    http: httpx.AsyncClient, app_id: str
) -> None:
    msg_path = f"/api/v1/app/{app_id}/msg"
    json_headers = {"content-type": "application/json"}
    assert_invalid(await http.post(msg_path, content=b"{not json", headers=json_headers), "body")
    assert_invalid(await http.post(msg_path, content=b"[1, 2]", headers=json_headers), "body")
    assert_invalid(await http.post(msg_path, content=b"", headers=json_headers), "body")
    assert_invalid(await http.post(msg_path, json={"payload": {}}), "body", "eventType")
    assert_invalid(
        await http.post(msg_path, json={"eventType": "bad type!", "payload": {}}),
        "body",
        "eventType",
    )
    assert_invalid(
        await http.post(msg_path, json={"eventType": "a.b", "payload": [1]}), "body", "payload"
    )
    assert_invalid(
        await http.post(msg_path, json={"eventType": "a.b", "payload": {}, "channels": ["a b"]}),
        "body",
        "channels",
    )
    # The same errors through the FastAPI route (an unusual query spelling skips the front door).
    assert_invalid(
        await http.post(msg_path + "?with_content=maybe", json={"eventType": "a.b", "payload": {}}),
        "query",
        "with_content",
    )
    # A body that is not declared JSON: 415 (below).
    plain = await http.post(msg_path, json={"payload": {}}, headers={"content-type": "text/plain"})
    assert_error(plain, 415, "unsupported_media_type")

    ep_path = f"/api/v1/app/{app_id}/endpoint"
    assert_invalid(await http.post(ep_path, json={"url": "ftp://x"}), "body", "url")
    assert_invalid(
        await http.post(ep_path, json={"url": "http://127.0.0.1:9/", "secret": "short"}),
        "body",
        "secret",
    )
    assert_invalid(
        await http.post(ep_path, json={"url": "http://127.0.0.1:9/", "headers": {"Host": "x"}}),
        "body",
        "headers",
    )
    assert_invalid(
        await http.post(ep_path, json={"url": "http://10.0.0.1/hook"}), "body", "url"
    )  # refused by the SSRF guard, reported on the field
    assert_invalid(await http.post("/api/v1/app", json={"name": ""}), "body", "name")
    assert_invalid(await http.post("/api/v1/app", json={"name": "x", "uid": "a b"}), "body", "uid")
    assert_invalid(await http.patch(f"/api/v1/app/{app_id}", json={"name": None}), "body", "name")
    assert_invalid(await http.get("/api/v1/app/bad%20id"), "path", "app_id")


# --------------------------------------------------------------------------- 415


def assert_not_json(response: httpx.Response, named: str) -> None:
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["code"] == "unsupported_media_type", body
    assert "must be JSON" in body["detail"] and "content-type: application/json" in body["detail"]
    assert named in body["detail"], body
    assert "valid dictionary" not in response.text


async def test_a_body_without_a_json_content_type_is_a_415_that_says_so(
    http: httpx.AsyncClient,
) -> None:
    body = b'{"name": "Acme", "uid": "acme"}'
    # httpx sends no content-type for raw bytes; curl's -d alone sends a form's.
    assert_not_json(await http.post("/api/v1/app", content=body), "no content-type")
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert_not_json(
        await http.post("/api/v1/app", content=body, headers=form),
        "'application/x-www-form-urlencoded'",
    )
    assert (await http.get("/api/v1/app")).json()["data"] == []  # nothing was created

    created = await http.post(
        "/api/v1/app", content=body, headers={"content-type": "application/json"}
    )
    assert created.status_code == 201, created.text
    # The message route too, whichever way a request reaches it (front door or FastAPI's).
    message = b'{"eventType": "a.b", "payload": {}}'
    assert_not_json(await http.post("/api/v1/app/acme/msg", content=message), "no content-type")
    assert_not_json(
        await http.post(
            "/api/v1/app/acme/msg", content=message, headers={"content-type": "text/plain"}
        ),
        "'text/plain'",
    )
    # JSON spelled otherwise is JSON.
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        sent = await http.post(
            "/api/v1/app/acme/msg", content=message, headers={"content-type": content_type}
        )
        assert sent.status_code == 202, (content_type, sent.text)


async def test_an_empty_body_is_not_refused_for_its_content_type(http: httpx.AsyncClient) -> None:
    await http.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    endpoint = await http.post("/api/v1/app/acme/endpoint", json={"url": "http://127.0.0.1:9/x"})
    assert endpoint.status_code == 201, endpoint.text
    # A route whose body is required: no body is a 422 on the body, not a 415.
    rotate = f"/api/v1/app/acme/endpoint/{endpoint.json()['id']}/secret/rotate"
    empty = await http.post(rotate)
    assert empty.status_code == 422, empty.text
    assert empty.json()["detail"][0]["loc"][0] == "body"


async def test_query_parameters_are_validated(http: httpx.AsyncClient, app_id: str) -> None:
    for query in ("limit=0", "limit=251", "limit=abc"):
        assert_invalid(await http.get(f"/api/v1/app?{query}"), "query", "limit")
    assert (await http.get("/api/v1/app?limit=250")).status_code == 200
    assert_invalid(await http.get("/api/v1/app?order=sideways"), "query", "order")
    base = f"/api/v1/app/{app_id}/msg"
    assert_invalid(await http.get(f"{base}?before=yesterday"), "query", "before")
    assert_invalid(await http.get(f"{base}?event_types=bad%20name"), "query", "event_types")
    assert_invalid(await http.get(f"{base}?channel=a%20b"), "query", "channel")
    ok = await http.get(f"{base}?event_types=a.b,c.d&before=2030-01-01T00:00:00Z")
    assert ok.status_code == 200 and ok.json() == {
        "data": [],
        "iterator": None,
        "prevIterator": None,
        "done": True,
    }


async def test_sdk_sees_422_as_validation_error(svix: SvixAsync) -> None:
    with pytest.raises(HTTPValidationError) as err:
        await svix.endpoint.create("whatever", EndpointIn(url="not a url"))
    assert err.value.status_code == 422
    assert any(e.loc[:2] == ["body", "url"] for e in err.value.detail)


async def test_validation_errors_never_echo_the_input(http: httpx.AsyncClient, app_id: str) -> None:
    secret = "whsec_this-is-not-base64-but-secret!!"
    response = await http.post(
        f"/api/v1/app/{app_id}/endpoint", json={"url": "http://127.0.0.1:9/", "secret": secret}
    )
    assert response.status_code == 422
    assert "this-is-not-base64" not in response.text


async def test_garbage_never_causes_a_500(http: httpx.AsyncClient, app_id: str) -> None:
    bodies: list[Any] = [None, 1, "x", [], {}, {"a": {"b": [None]}}, {"name": 5, "url": 7}]
    paths = [
        ("POST", "/api/v1/app"),
        ("PUT", f"/api/v1/app/{app_id}"),
        ("PATCH", f"/api/v1/app/{app_id}"),
        ("POST", f"/api/v1/app/{app_id}/endpoint"),
        ("POST", f"/api/v1/app/{app_id}/msg"),
        ("POST", "/api/v1/event-type"),
        ("PATCH", "/api/v1/event-type/a.b"),
        ("POST", f"/api/v1/auth/app-portal-access/{app_id}"),
    ]
    for method, path in paths:
        for body in bodies:
            response = await http.request(method, path, json=body)
            assert response.status_code < 500, (method, path, body, response.text)
            response.json()  # always JSON


# --------------------------------------------------------------------------- 401 / tenancy


async def test_missing_or_invalid_token_is_401(api: ApiServer, app_id: str) -> None:
    async with api.http(token=None) as anonymous:
        for method, path in (
            ("GET", "/api/v1/app"),
            ("GET", f"/api/v1/app/{app_id}/msg"),
            ("POST", f"/api/v1/app/{app_id}/msg"),
            ("POST", "/api/v1/event-type"),
        ):
            body = {"eventType": "a.b", "payload": {}} if method == "POST" else None
            assert_error(
                await anonymous.request(method, path, json=body), 401, "authentication_failed"
            )
            for header in ("Bearer wrong", "Basic abc", "Bearer", ADMIN_TOKEN):
                response = await anonymous.request(
                    method, path, json=body, headers={"Authorization": header}
                )
                assert_error(response, 401, "authentication_failed")
        # Unauthenticated by design: health, metrics, docs.
        assert (await anonymous.get("/api/v1/health")).status_code == 204
        assert (await anonymous.get("/metrics")).status_code == 200


async def test_app_token_sees_only_its_application(
    api: ApiServer, http: httpx.AsyncClient, app_id: str
) -> None:
    other = (await http.post("/api/v1/app", json={"name": "Other", "uid": "other"})).json()
    portal = await http.post(f"/api/v1/auth/app-portal-access/{app_id}", json={})
    assert portal.status_code == 200
    token = portal.json()["token"]
    async with api.http(token) as scoped:
        assert (await scoped.get(f"/api/v1/app/{app_id}")).status_code == 200
        assert (await scoped.get("/api/v1/app/acme")).status_code == 200
        assert (await scoped.get(f"/api/v1/app/{app_id}/endpoint")).status_code == 200
        assert (await scoped.get("/api/v1/event-type")).status_code == 200  # reads are fine
        for method, path in (
            ("GET", f"/api/v1/app/{other['id']}"),
            ("GET", "/api/v1/app/other"),
            ("GET", "/api/v1/app/does-not-exist"),
            ("GET", f"/api/v1/app/{other['id']}/endpoint"),
            ("GET", f"/api/v1/app/{other['id']}/msg"),
            ("DELETE", f"/api/v1/app/{other['id']}"),
            ("POST", f"/api/v1/auth/app-portal-access/{other['id']}"),
        ):
            assert_error(await scoped.request(method, path, json={}), 404, "not_found")
        assert_error(
            await scoped.post(
                f"/api/v1/app/{other['id']}/msg", json={"eventType": "a", "payload": {}}
            ),
            404,
            "not_found",
        )
        for method, path, body in (
            ("POST", "/api/v1/app", {"name": "x"}),
            ("DELETE", f"/api/v1/app/{app_id}", None),
            ("POST", "/api/v1/event-type", {"name": "x.y", "description": ""}),
            ("POST", f"/api/v1/auth/app-portal-access/{app_id}", {}),
        ):
            assert_error(await scoped.request(method, path, json=body), 403, "forbidden")
        listed = (await scoped.get("/api/v1/app")).json()
        assert [a["id"] for a in listed["data"]] == [app_id]


# --------------------------------------------------------------------------- idempotency


async def test_idempotency_key_replays_the_first_response(
    http: httpx.AsyncClient, app_id: str
) -> None:
    path = f"/api/v1/app/{app_id}/msg"
    key = {"idempotency-key": "key-1"}
    first = await http.post(path, json={"eventType": "a.b", "payload": {"n": 1}}, headers=key)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    # Same key, even with another body: the first response, not a second message.
    again = await http.post(path, json={"eventType": "a.b", "payload": {"n": 2}}, headers=key)
    assert (again.status_code, again.json()) == (202, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    other = await http.post(
        path, json={"eventType": "a.b", "payload": {"n": 3}}, headers={"idempotency-key": "key-2"}
    )
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    listed = (await http.get(path)).json()
    assert len(listed["data"]) == 2

    # Concurrent repeats wait for the first and replay it.
    burst = await asyncio.gather(
        *(
            http.post(
                path, json={"eventType": "a.b", "payload": {}}, headers={"idempotency-key": "k3"}
            )
            for _ in range(5)
        )
    )
    assert len({r.json()["id"] for r in burst}) == 1
    assert len((await http.get(path)).json()["data"]) == 3

    # Other endpoints too: creating an application twice with one key creates one.
    app_key = {"idempotency-key": "app-key"}
    a = await http.post("/api/v1/app", json={"name": "Once"}, headers=app_key)
    b = await http.post("/api/v1/app", json={"name": "Once"}, headers=app_key)
    assert a.status_code == b.status_code == 201 and a.json() == b.json()


async def test_a_keyed_send_records_its_key_with_the_message(
    api: ApiServer, http: httpx.AsyncClient, app_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /msg with an idempotency key: the key is recorded by the message's own write (no
    second write, no moment when the message exists but a retry would send it again); the
    answers the middleware stores itself (a 409 here) are still stored."""
    store = api.hp.store
    puts: list[tuple[str, int]] = []
    original_put = store.put_idempotent

    async def counting_put(
        scope: str, key: str, status: int, body: bytes, exp: int, now: int, app_id: Any = None
    ) -> Any:
        puts.append((key, status))
        return await original_put(scope, key, status, body, exp, now, app_id)

    monkeypatch.setattr(store, "put_idempotent", counting_put)
    path = f"/api/v1/app/{app_id}/msg"
    body = {"eventType": "a.b", "payload": {"n": 1}, "eventId": "evt-1"}
    first = await http.post(path, json=body, headers={"idempotency-key": "one"})
    assert first.status_code == 202 and puts == []
    replay = await http.post(path, json=body, headers={"idempotency-key": "one"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content  # the message, rendered again alike
    taken = await http.post(path, json=body, headers={"idempotency-key": "two"})
    assert_error(taken, 409, "conflict")
    # Keyed by the route and the resolved application, not the path's spelling (issue 25.10).
    assert puts == [(f"v1.message.create app_id={app_id} two", 409)]
    replay = await http.post(path, json=body, headers={"idempotency-key": "two"})
    assert replay.status_code == 409 and replay.headers["idempotent-replayed"] == "true"
    # Through the FastAPI route too (a JSON content type the front door does not take).
    routed = {"idempotency-key": "three", "content-type": "application/vnd.api+json"}
    content = httpx.Request("POST", "/", json={**body, "eventId": "evt-3"}).content
    first = await http.post(path, content=content, headers=routed)
    assert first.status_code == 202 and len(puts) == 1
    replay = await http.post(path, content=content, headers=routed)
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"


async def test_simultaneous_repeats_of_a_key_run_once(
    api: ApiServer, http: httpx.AsyncClient, app_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeats that arrive while the first one is still looking its key up wait for it (they
    used to look up too, all find nothing, and all run). Half of them take the POST /msg
    front door (JSON), half the middleware stack (another JSON type); that the two share one
    in-flight map is test_front_door's
    test_a_repeat_waits_for_the_first_whichever_way_each_came_in."""
    store = api.hp.store
    lookups = 0
    release = asyncio.Event()
    original_get = store.get_idempotent

    async def slow_get(scope: str, key: str, now: int) -> Any:
        nonlocal lookups
        lookups += 1
        if lookups == 1:
            await release.wait()  # the first lookup is slow: the repeats arrive meanwhile
        return await original_get(scope, key, now)

    monkeypatch.setattr(store, "get_idempotent", slow_get)
    path = f"/api/v1/app/{app_id}/msg"
    content = b'{"eventType": "a.b", "payload": {}}'
    kinds = ("application/json", "application/vnd.api+json")
    sends = [
        asyncio.create_task(
            http.post(
                path,
                content=content,
                headers={"idempotency-key": "same", "content-type": kinds[i % 2]},
            )
        )
        for i in range(4)
    ]
    # An observation window (what is checked is that nothing happens): the repeats reach
    # the middleware within it, and before the fix each looked its key up at once.
    try:
        # The first lookup has begun (on a loaded machine it may take longer than the window).
        async def began() -> int:
            return lookups

        await eventually(began, lambda n: n >= 1)
        await asyncio.sleep(0.2)
        assert lookups == 1  # the repeats wait behind the first, they do not look up
    finally:
        release.set()  # else a failure leaves the first request hanging the server's shutdown
    answers = await asyncio.wait_for(asyncio.gather(*sends), 10)
    assert len({a.json()["id"] for a in answers}) == 1
    assert len((await http.get(path)).json()["data"]) == 1


async def test_idempotency_keys_are_scoped_by_token(api: ApiServer, app_id: str) -> None:
    # A second admin token (app-portal tokens may not create messages: docs/permissions.md).
    other, _ = await api.hp.services.tokens.create(name="second admin")
    async with api.http() as admin:
        path = f"/api/v1/app/{app_id}/msg"
        body = {"eventType": "a.b", "payload": {}}
        key = {"idempotency-key": "shared"}
        first = await admin.post(path, json=body, headers=key)
        async with api.http(other) as scoped:
            second = await scoped.post(path, json=body, headers=key)
        assert first.json()["id"] != second.json()["id"]


async def test_sdk_retries_are_deduplicated_by_its_idempotency_key(
    api: ApiServer, svix: SvixAsync, app_id: str
) -> None:
    from svix.api import MessageCreateOptions

    options = MessageCreateOptions(idempotency_key="sdk-key")
    one = await svix.message.create(app_id, MessageIn(event_type="a.b", payload={}), options)
    two = await svix.message.create(app_id, MessageIn(event_type="a.b", payload={}), options)
    assert one.id == two.id
    other = await svix.application.create(ApplicationIn(name="B"))
    assert other.id != app_id


# --------------------------------------------------------------------------- 413


def assert_too_large(response: httpx.Response) -> None:
    """A 413 that quotes the configured limit and names its setting (not the body cap)."""
    detail = assert_error(response, 413, "payload_too_large")["detail"]
    assert f"{MAX_PAYLOAD} bytes" in detail and "HOOKPOST_MAX_PAYLOAD_BYTES" in detail, detail


async def test_oversized_payloads_are_413(http: httpx.AsyncClient, app_id: str) -> None:
    path = f"/api/v1/app/{app_id}/msg"
    fits = await http.post(path, json={"eventType": "a.b", "payload": {"x": "y" * 1000}})
    assert fits.status_code == 202

    # Payload over the limit, body within the envelope allowance: refused after parsing.
    over = await http.post(path, json={"eventType": "a.b", "payload": {"x": "y" * MAX_PAYLOAD}})
    assert_too_large(over)
    # Through the FastAPI route as well.
    over_slow = await http.post(
        path + "?with_content=yes", json={"eventType": "a.b", "payload": {"x": "y" * MAX_PAYLOAD}}
    )
    assert_too_large(over_slow)

    # A body far over the cap: refused from Content-Length, before it is read.
    huge = {"eventType": "a.b", "payload": {"x": "y" * (MAX_PAYLOAD + 128 * 1024)}}
    assert_too_large(await http.post(path, json=huge))

    # Chunked (no Content-Length): refused while streaming in.
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"eventType": "a.b", "payload": {"x": "'
        for _ in range(40):
            yield b"y" * 4096
        yield b'"}}'

    streamed = await http.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert_too_large(streamed)
    assert len((await http.get(path)).json()["data"]) == 1


# --------------------------------------------------------------------------- front door


async def test_front_door_and_fastapi_route_answer_alike(
    http: httpx.AsyncClient, app_id: str
) -> None:
    """POST /msg is served by the front door; unusual requests go through to the FastAPI
    route. Both must answer the same way."""
    path = f"/api/v1/app/{app_id}/msg"
    body = {"eventType": "a.b", "payload": {"n": 1}, "channels": ["eu"], "eventId": "e1"}
    fast = await http.post(path, json=body)
    slow = await http.post(
        path,
        content=httpx.Request("POST", "/", json={**body, "eventId": "e2"}).content,
        headers={"content-type": "application/vnd.api+json"},  # not the front door's
    )
    assert fast.status_code == slow.status_code == 202
    a, b = fast.json(), slow.json()
    fields = {
        "id",
        "eventType",
        "eventId",
        "payload",
        "channels",
        "timestamp",
        "payloadSha256",
        "expunged",
    }
    assert set(a) == set(b) == fields
    assert (a["payload"], b["payload"]) == ({"n": 1}, {"n": 1})
    assert (a["eventId"], b["eventId"]) == ("e1", "e2")

    hidden = await http.post(path + "?with_content=false", json={**body, "eventId": "e3"})
    assert hidden.json()["payload"] == {}
    hidden_slow = await http.post(path + "?with_content=False&x=1", json={**body, "eventId": "e4"})
    assert hidden_slow.json()["payload"] == {}

    dup_fast = await http.post(path, json=body)
    dup_slow = await http.post(path + "?with_content=nope", json=body)
    assert dup_fast.status_code == 409
    assert dup_slow.status_code == 422  # the query is checked first on the FastAPI route
    dup_slow = await http.post(
        path,
        content=httpx.Request("POST", "/", json=body).content,
        headers={"content-type": "application/vnd.api+json"},
    )
    assert dup_slow.status_code == 409 and dup_slow.json()["code"] == "conflict"


async def test_expired_token_is_401(api: ApiServer, app_id: str) -> None:
    token, _ = await api.hp.services.tokens.create(app_id=app_id, ttl_s=0)
    async with api.http(token) as expired:
        assert_error(await expired.get(f"/api/v1/app/{app_id}"), 401, "authentication_failed")
