"""The errors a new user meets first say what is wrong (issue 24): a body without a JSON content
type is a 415 that says so, and a 413 quotes the configured limit and the setting's name."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.test_api_harness import ApiServer, running_api

MAX_PAYLOAD = 4096
SETTING = "HOOKPOST_MAX_PAYLOAD_BYTES"


@pytest.fixture
async def api(fresh_sqlite_url: str) -> AsyncIterator[ApiServer]:
    async with running_api(fresh_sqlite_url, max_payload_bytes=MAX_PAYLOAD) as server:
        yield server


@pytest.fixture
async def http(api: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with api.http() as client:
        yield client


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

    created = await http.post("/api/v1/app", content=body, headers={"content-type": "application/json"})
    assert created.status_code == 201, created.text
    # The message route too, whichever way a request reaches it (front door or FastAPI's).
    message = b'{"eventType": "a.b", "payload": {}}'
    assert_not_json(await http.post("/api/v1/app/acme/msg", content=message), "no content-type")
    assert_not_json(
        await http.post("/api/v1/app/acme/msg", content=message, headers={"content-type": "text/plain"}),
        "'text/plain'",
    )
    # JSON spelled otherwise is JSON.
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        sent = await http.post(
            "/api/v1/app/acme/msg", content=message, headers={"content-type": content_type}
        )
        assert sent.status_code == 202, (content_type, sent.text)


async def test_a_post_without_a_body_needs_no_content_type(http: httpx.AsyncClient) -> None:
    await http.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    endpoint = await http.post("/api/v1/app/acme/endpoint", json={"url": "http://127.0.0.1:9/x"})
    assert endpoint.status_code == 201, endpoint.text
    # A route whose body is required: no body is a 422 on the body, not a 415.
    rotate = f"/api/v1/app/acme/endpoint/{endpoint.json()['id']}/secret/rotate"
    empty = await http.post(rotate)
    assert empty.status_code == 422, empty.text
    assert empty.json()["detail"][0]["loc"][0] == "body"


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert f"{MAX_PAYLOAD} bytes" in body["detail"] and SETTING in body["detail"], body


async def test_every_413_quotes_the_configured_limit_and_names_the_setting(
    http: httpx.AsyncClient,
) -> None:
    await http.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    path = "/api/v1/app/acme/msg"
    over = {"eventType": "a.b", "payload": {"x": "y" * MAX_PAYLOAD}}
    assert_too_large(await http.post(path, json=over))  # front door, after parsing
    assert_too_large(await http.post(path + "?with_content=yes", json=over))  # FastAPI's route
    # Far over: refused from Content-Length, before the body is read.
    huge = {"eventType": "a.b", "payload": {"x": "y" * (MAX_PAYLOAD + 128 * 1024)}}
    assert_too_large(await http.post(path, json=huge))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"eventType": "a.b", "payload": {"x": "'
        for _ in range(40):
            yield b"y" * 4096
        yield b'"}}'

    streamed = await http.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert_too_large(streamed)
