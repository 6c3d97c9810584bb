"""The errors a new user meets first say what is wrong (issue 24): a body without a JSON content
type is a 415 that says so. (Every 413 quoting the configured limit and its setting:
test_api_errors.py's ``test_oversized_payloads_are_413``.)"""

from __future__ import annotations

import httpx

# The same server as the error-shape tests.
from tests.integration.test_api_errors import api, http  # noqa: F401


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


async def test_an_empty_body_is_not_refused_for_its_content_type(http: httpx.AsyncClient) -> None:
    await http.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    endpoint = await http.post("/api/v1/app/acme/endpoint", json={"url": "http://127.0.0.1:9/x"})
    assert endpoint.status_code == 201, endpoint.text
    # A route whose body is required: no body is a 422 on the body, not a 415.
    rotate = f"/api/v1/app/acme/endpoint/{endpoint.json()['id']}/secret/rotate"
    empty = await http.post(rotate)
    assert empty.status_code == 422, empty.text
    assert empty.json()["detail"][0]["loc"][0] == "body"
