"""Hostile input through the REST API: every answer is a 4xx naming the field, never a 5xx.

Runs against SQLite and PostgreSQL (PostgreSQL refuses some strings SQLite stores, such as
NUL characters, so both matter). The server keeps its production defaults: 1 MiB payload
limit, SSRF guard on with no allow list; the worker is off, so nothing is ever delivered.

Covered: payload size (413, default and configured), payload type (must be an object), JSON
that is malformed, not UTF-8, has lone surrogates, NaN or overflowing numbers, or is nested
100,000 levels deep; names, channels and uids (characters, length, count); custom header names
(reserved, hop-by-hop, ``webhook-*``/``svix-*``, not tokens) and values (CR/LF/NUL, length);
endpoint URLs (scheme, host, length, user info, literal private addresses, HTTPS-only
mode); metadata sizes; the ``limit`` query parameter of every list operation in the OpenAPI
document; huge numbers in bounded fields; unicode where it is and is not allowed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from hookpost.settings import Settings
from tests.integration.conftest import ServedApi
from tests.integration.test_api_errors import assert_error

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

MIB = 1024 * 1024
JSON = {"content-type": "application/json"}
# A JSON content type the POST /msg front door does not take: the FastAPI route answers.
SLOW = {"content-type": "application/vnd.api+json"}
PUBLIC_URL = "https://example.com/hook"  # never contacted: the worker is off


def invalid(response: httpx.Response, *loc: str | int) -> list[dict[str, Any]]:
    """A 422 in the validation shape, one of whose errors is located at ``loc``."""
    assert response.status_code == 422, (loc, response.status_code, response.text[:300])
    detail = response.json()["detail"]
    assert detail and all(set(item) == {"loc", "msg", "type"} for item in detail), detail
    locs = [tuple(item["loc"][: len(loc)]) for item in detail]
    assert loc in locs, (loc, detail)
    return list(detail)


def not_5xx(response: httpx.Response, what: Any = "") -> httpx.Response:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if response.content:
        response.json()  # every answer is JSON
    return response


# One server per backend for the whole module; each test makes its own application.
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
    return {
        "app_id": app_id,
        "endpoint_id": ep.json()["id"],
        "msg_id": msg.json()["id"],
        "attempt_id": "atmpt_none",
        "event_type_name": "a.b",
    }


# --------------------------------------------------------------------------- payloads


async def test_payload_size_limit_is_413_by_default_1_mib(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    path = f"/api/v1/app/{ids['app_id']}/msg"
    frame = len(orjson.dumps({"x": ""}))
    fits = {"eventType": "a.b", "payload": {"x": "y" * (MIB - frame)}}
    over = {"eventType": "a.b", "payload": {"x": "y" * (MIB - frame + 1)}}
    assert (await http.post(path, json=fits)).status_code == 202
    for headers in (JSON, SLOW):
        r = await http.post(path, content=orjson.dumps(over), headers=headers)
        assert_error(r, 413, "payload_too_large")
    # Far over: refused from Content-Length before the body is read.
    huge = {"eventType": "a.b", "payload": {"x": "y" * (2 * MIB)}}
    assert_error(await http.post(path, json=huge), 413, "payload_too_large")


async def test_payload_size_limit_is_configurable(
    fresh_sqlite_url: str, serve_api: Callable[..., AbstractAsyncContextManager[ServedApi]]
) -> None:
    env = {"HOOKPOST_MAX_PAYLOAD_BYTES": "1000"}
    limit = Settings.from_env(env).max_payload_bytes
    assert limit == 1000
    async with serve_api(fresh_sqlite_url, max_payload_bytes=limit) as api, api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "A"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        frame = len(orjson.dumps({"x": ""}))
        ok = await http.post(
            path, json={"eventType": "a.b", "payload": {"x": "y" * (1000 - frame)}}
        )
        assert ok.status_code == 202, ok.text
        for headers in (JSON, SLOW):
            body = orjson.dumps({"eventType": "a.b", "payload": {"x": "y" * (1001 - frame)}})
            assert_error(
                await http.post(path, content=body, headers=headers), 413, "payload_too_large"
            )


async def test_payload_must_be_a_json_object(http: httpx.AsyncClient, ids: dict[str, str]) -> None:
    path = f"/api/v1/app/{ids['app_id']}/msg"
    for payload in ([1, 2], [], "text", 42, 1.5, None, True):
        for headers in (JSON, SLOW):
            body = orjson.dumps({"eventType": "a.b", "payload": payload})
            invalid(await http.post(path, content=body, headers=headers), "body", "payload")


async def test_malformed_json_is_422_never_5xx(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    app_id, ep_id = ids["app_id"], ids["endpoint_id"]
    targets = [
        ("POST", f"/api/v1/app/{app_id}/msg", JSON),  # the front door
        ("POST", f"/api/v1/app/{app_id}/msg", SLOW),  # the FastAPI route
        ("POST", "/api/v1/app", JSON),
        ("PATCH", f"/api/v1/app/{app_id}", JSON),
        ("POST", f"/api/v1/app/{app_id}/endpoint", JSON),
        ("PUT", f"/api/v1/app/{app_id}/endpoint/{ep_id}/headers", JSON),
        ("POST", "/api/v1/event-type", JSON),
    ]
    bad_bodies = [
        b"{not json",
        b'{"eventType": "a.b", "payload": {}',  # truncated
        b'{"name": "x"} trailing',
        b"\xff\xfe\x00garbage",  # not UTF-8
        b'{"name": "\xc3\x28", "eventType": "a.b", "payload": {"x": "\xff"}}',
        b'{"name": "\\ud800", "eventType": "a.b", "payload": {"x": "\\udc00"}}',  # lone halves
        b'{"name": "x", "eventType": "a.b", "payload": {"x": NaN}}',
        b'{"name": "x", "eventType": "a.b", "payload": {"x": Infinity}}',
        b'{"name": "x", "eventType": "a.b", "payload": {"x": 1e999}}',
        b'{"name": "x", "eventType": "a.b", "payload": {"x": -' + b"9" * 500 + b"}}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"name": "x", "eventType": "a.b", "payload": '
        + b'{"a":' * 100_000
        + b"1"
        + b"}" * 100_001,
        b"\x00" * 64,
    ]
    for method, path, headers in targets:
        for body in bad_bodies:
            started = time.monotonic()
            r = await http.request(method, path, content=body, headers=headers)
            assert time.monotonic() - started < 5, (method, path, body[:40])
            invalid(r, "body")
    assert len((await http.get(f"/api/v1/app/{app_id}/msg")).json()["data"]) == 1


async def test_deep_and_huge_values_in_valid_json(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    path = f"/api/v1/app/{ids['app_id']}/msg"

    def nested(depth: int) -> bytes:
        return b"[" * depth + b"]" * depth

    for headers in (JSON, SLOW):
        ok = b'{"eventType": "a.b", "payload": {"x": ' + nested(100) + b"}}"
        assert (await http.post(path, content=ok, headers=headers)).status_code == 202
        # Parsed fine, but deeper than can be stored: named on the payload.
        deep = b'{"eventType": "a.b", "payload": {"x": ' + nested(500) + b"}}"
        invalid(await http.post(path, content=deep, headers=headers), "body", "payload")
        for number in (2**63 - 1, -(2**63), 2**64 - 1, 2**64, 10**300):
            body = b'{"eventType": "a.b", "payload": {"n": ' + str(number).encode() + b"}}"
            not_5xx(await http.post(path, content=body, headers=headers), number)
        tiny = b'{"eventType": "a.b", "payload": {"n": 1e-400}}'
        assert (await http.post(path, content=tiny, headers=headers)).status_code == 202

    # Event type schemas are bounded in depth too.
    schema: Any = {"type": "object"}
    for _ in range(70):
        schema = {"properties": {"x": schema}}
    r = await http.post(
        "/api/v1/event-type",
        json={"name": "deep.schema", "description": "", "schemas": {"1": schema}},
    )
    invalid(r, "body", "schemas")

    # Huge numbers in bounded fields: 422 on the field.
    big = 10**30
    app_id, ep_id = ids["app_id"], ids["endpoint_id"]
    for method, url, body, field in (
        ("POST", "/api/v1/app", {"name": "x", "throttleRate": big}, "throttleRate"),
        ("PATCH", f"/api/v1/app/{app_id}", {"throttleRate": -big}, "throttleRate"),
        (
            "POST",
            f"/api/v1/app/{app_id}/endpoint",
            {"url": PUBLIC_URL, "throttleRate": big},
            "throttleRate",
        ),
        (
            "POST",
            f"/api/v1/app/{app_id}/endpoint/{ep_id}/secret/rotate",
            {"gracePeriodSeconds": big},
            "gracePeriodSeconds",
        ),
        ("POST", f"/api/v1/auth/app-portal-access/{app_id}", {"expiry": big}, "expiry"),
        (
            "POST",
            path,
            {"eventType": "a.b", "payload": {}, "payloadRetentionPeriod": big},
            "payloadRetentionPeriod",
        ),
        (
            "POST",
            f"/api/v1/app/{app_id}/endpoint/{ep_id}/send-example",
            {"eventType": "a.b", "exampleIndex": -1},
            "exampleIndex",
        ),
    ):
        invalid(await http.request(method, url, json=body), "body", field)
    r = await http.post(
        f"/api/v1/app/{app_id}/endpoint/{ep_id}/send-example",
        json={"eventType": "a.b", "exampleIndex": big},
    )
    not_5xx(r)


# --------------------------------------------------------------------------- names


async def test_names_channels_and_uids_are_checked(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    app_id = ids["app_id"]
    msg = f"/api/v1/app/{app_id}/msg"
    bad_ids = ["a b", "a/b", "a\x00b", "ünï", "a\nb", "", "x" * 257, "🚀", "a:b"]
    for name in bad_ids:
        for headers in (JSON, SLOW):
            body = orjson.dumps({"eventType": name, "payload": {}})
            invalid(await http.post(msg, content=body, headers=headers), "body", "eventType")
        invalid(
            await http.post(msg, json={"eventType": "a.b", "payload": {}, "eventId": name}),
            "body",
            "eventId",
        )
        invalid(
            await http.post("/api/v1/event-type", json={"name": name, "description": ""}),
            "body",
            "name",
        )
        invalid(await http.post("/api/v1/app", json={"name": "x", "uid": name}), "body", "uid")
        invalid(await http.patch(f"/api/v1/app/{app_id}", json={"uid": name}), "body", "uid")
        invalid(
            await http.post(
                f"/api/v1/app/{app_id}/endpoint", json={"url": PUBLIC_URL, "uid": name}
            ),
            "body",
            "uid",
        )
        invalid(
            await http.post(
                f"/api/v1/app/{app_id}/endpoint", json={"url": PUBLIC_URL, "eventTypes": [name]}
            ),
            "body",
            "eventTypes",
        )
    assert (await http.post(msg, json={"eventType": "x" * 256, "payload": {}})).status_code == 202

    bad_channels = ["a b", "a/b", "ü", "a\x00", "", "c" * 129]
    for channel in bad_channels:
        for headers in (JSON, SLOW):
            body = orjson.dumps({"eventType": "a.b", "payload": {}, "channels": [channel]})
            invalid(await http.post(msg, content=body, headers=headers), "body", "channels")
        invalid(
            await http.post(
                f"/api/v1/app/{app_id}/endpoint", json={"url": PUBLIC_URL, "channels": [channel]}
            ),
            "body",
            "channels",
        )
    too_many = [f"c{i}" for i in range(6)]
    invalid(
        await http.post(msg, json={"eventType": "a.b", "payload": {}, "channels": too_many}),
        "body",
        "channels",
    )
    invalid(
        await http.post(
            f"/api/v1/app/{app_id}/endpoint",
            json={"url": PUBLIC_URL, "channels": [f"c{i}" for i in range(11)]},
        ),
        "body",
        "channels",
    )
    ok = await http.post(
        msg, json={"eventType": "a.b", "payload": {}, "channels": ["eu:west-1", "c" * 128]}
    )
    assert ok.status_code == 202, ok.text

    # Names and descriptions: any unicode, but no NUL (PostgreSQL cannot store it).
    name = "Ünïcødé 🚀 名前 \u200f"
    created = await http.post("/api/v1/app", json={"name": name, "metadata": {"ключ": "значение"}})
    assert created.status_code == 201, created.text
    assert (await http.get(f"/api/v1/app/{created.json()['id']}")).json()["name"] == name
    invalid(await http.post("/api/v1/app", json={"name": "a\x00b"}), "body", "name")
    invalid(await http.post("/api/v1/app", json={"name": "x" * 1025}), "body", "name")
    invalid(
        await http.post("/api/v1/event-type", json={"name": "n.u", "description": "\x00"}),
        "body",
        "description",
    )
    invalid(
        await http.post(
            f"/api/v1/app/{app_id}/endpoint", json={"url": PUBLIC_URL, "description": "a\x00"}
        ),
        "body",
        "description",
    )
    et = await http.post("/api/v1/event-type", json={"name": "u.ok", "description": "Описание ✓"})
    assert et.status_code == 201, et.text

    # Path parameters: bad characters, unicode, too long, NUL.
    for bad in ("a%20b", "%FF", "%C3%BC", "a%00b", "x" * 257):
        invalid(await http.get(f"/api/v1/app/{bad}"), "path", "app_id")
        invalid(await http.get(f"/api/v1/event-type/{bad}"), "path", "event_type_name")
        invalid(await http.get(f"/api/v1/app/{app_id}/endpoint/{bad}"), "path", "endpoint_id")


async def test_metadata_sizes_are_bounded(http: httpx.AsyncClient, ids: dict[str, str]) -> None:
    app_id = ids["app_id"]
    bad = [
        {f"k{i}": "v" for i in range(101)},
        {"k" * 257: "v"},
        {"k": "v" * 4097},
        {"k": 1},
        {"k": None},
        {"k": {"nested": "x"}},
    ]
    for metadata in bad:
        invalid(
            await http.post("/api/v1/app", json={"name": "x", "metadata": metadata}),
            "body",
            "metadata",
        )
        invalid(
            await http.patch(f"/api/v1/app/{app_id}", json={"metadata": metadata}),
            "body",
            "metadata",
        )
        invalid(
            await http.post(
                f"/api/v1/app/{app_id}/endpoint", json={"url": PUBLIC_URL, "metadata": metadata}
            ),
            "body",
            "metadata",
        )
    biggest = {f"{i:0>256}": "v" * 4096 for i in range(100)}
    r = await http.post("/api/v1/app", json={"name": "x", "metadata": biggest})
    assert r.status_code == 201, r.text
    assert r.json()["metadata"] == biggest


# --------------------------------------------------------------------------- headers


async def test_custom_header_names_and_values_are_checked(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    app_id, ep_id = ids["app_id"], ids["endpoint_id"]
    base = f"/api/v1/app/{app_id}/endpoint"
    bad_names = [
        "Host", "host", "Content-Length", "Transfer-Encoding", "Connection", "CONNECTION",
        "Keep-Alive", "Upgrade", "TE", "Trailer", "Proxy-Authorization", "Content-Type",
        "webhook-id", "Webhook-Signature", "webhook-timestamp", "svix-id", "SVIX-SIGNATURE",
        "bad name", "a:b", "", "é", "x" * 257, "X-\x00", "X\r\nInjected",
    ]  # fmt: skip
    bad_values = ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b", "\x7f", "v" * 4097]
    bad_headers = [{name: "x"} for name in bad_names] + [{"X-Ok": v} for v in bad_values]
    bad_headers.append({"X-A": "1", "x-a": "2"})  # the same name twice
    bad_headers.append({f"X-H{i}": "v" for i in range(101)})
    for headers in bad_headers:
        invalid(
            await http.post(base, json={"url": PUBLIC_URL, "headers": headers}), "body", "headers"
        )
        invalid(
            await http.put(f"{base}/{ep_id}/headers", json={"headers": headers}), "body", "headers"
        )
        invalid(
            await http.patch(f"{base}/{ep_id}/headers", json={"headers": headers}),
            "body",
            "headers",
        )
    for name in bad_names[:-4]:
        invalid(
            await http.patch(
                f"{base}/{ep_id}/headers", json={"headers": {}, "deleteHeaders": [name]}
            ),
            "body",
            "deleteHeaders",
        )
    good = {"X-Tenant": "acme", "Authorization": "Bearer x", "X-Unicode": "Grüße"}
    assert (await http.put(f"{base}/{ep_id}/headers", json={"headers": good})).status_code == 204
    stored = (await http.get(f"{base}/{ep_id}/headers")).json()
    assert set(stored["headers"]) | set(stored["sensitive"]) == set(good)


# --------------------------------------------------------------------------- URLs


BAD_URLS = [
    "ftp://example.com/x",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "data:text/plain,hello",
    "gopher://example.com/",
    "http://",
    "http:///path",
    "https://:443/",
    "not a url",
    "//example.com/x",
    "example.com/x",
    "",
    "https://example.com/" + "a" * 65536,
    "http://exa mple.com/",
    "https://example.com/\r\nX-Injected: 1",
    "https://example.com/\x00",
    "https://user:pass@example.com/",
    "https://example.com:0/",
    "https://example.com:99999/",
    # Literal private addresses: refused by the SSRF guard (on, no allow list).
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
]


async def test_bad_endpoint_urls_are_422_naming_url(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    app_id, ep_id = ids["app_id"], ids["endpoint_id"]
    base = f"/api/v1/app/{app_id}/endpoint"
    for url in BAD_URLS:
        invalid(await http.post(base, json={"url": url}), "body", "url")
        invalid(await http.put(f"{base}/{ep_id}", json={"url": url}), "body", "url")
        invalid(await http.patch(f"{base}/{ep_id}", json={"url": url}), "body", "url")
    assert (await http.get(f"{base}/{ep_id}")).json()["url"] == PUBLIC_URL
    assert len((await http.get(base)).json()["data"]) == 1
    for url in (
        "http://example.com/hook",
        "https://example.com:8443/a?b=c#d",
        "https://[2606:4700:4700::1111]/",
    ):
        assert (await http.post(base, json={"url": url})).status_code == 201, url


async def test_https_only_refuses_http_urls(
    fresh_sqlite_url: str, serve_api: Callable[..., AbstractAsyncContextManager[ServedApi]]
) -> None:
    assert Settings.from_env({"HOOKPOST_HTTPS_ONLY": "1"}).https_only
    async with serve_api(fresh_sqlite_url, https_only=True) as api, api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "A"})).json()["id"]
        base = f"/api/v1/app/{app_id}/endpoint"
        detail = invalid(await http.post(base, json={"url": "http://example.com/"}), "body", "url")
        assert "https" in detail[0]["msg"]
        created = await http.post(base, json={"url": "https://example.com/"})
        assert created.status_code == 201, created.text
        ep_id = created.json()["id"]
        invalid(
            await http.patch(f"{base}/{ep_id}", json={"url": "HTTP://example.com/"}), "body", "url"
        )
        invalid(
            await http.put(f"{base}/{ep_id}", json={"url": "http://example.com/"}), "body", "url"
        )
        invalid(
            await http.put(f"{base}/ep-new", json={"url": "http://example.com/"}), "body", "url"
        )


# --------------------------------------------------------------------------- query parameters


async def test_limit_is_checked_on_every_list_operation(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    doc = (await http.get("/api/v1/openapi.json")).json()
    lists = [
        path
        for path, ops in doc["paths"].items()
        if "get" in ops and any(p["name"] == "limit" for p in ops["get"].get("parameters", []))
    ]
    assert len(lists) >= 8, lists
    for template in lists:
        path = template
        for name, value in ids.items():
            path = path.replace("{" + name + "}", value)
        for bad in ("0", "251", "-1", "abc", "1.5", "", "99999999999999999999", "%FF"):
            invalid(await http.get(f"{path}?limit={bad}"), "query", "limit")
        for bad in ("%00", "a%20b", "%FF", "x" * 300):
            invalid(await http.get(f"{path}?iterator={bad}"), "query", "iterator")
        r = await http.get(f"{path}?limit=250")
        assert r.status_code == 200, (path, r.text)


async def test_other_hostile_requests_never_5xx(api: ServedApi, ids: dict[str, str]) -> None:
    app_id, msg_id = ids["app_id"], ids["msg_id"]
    async with api.http(token=None) as anonymous:
        raw_headers = [
            [(b"authorization", b"Bearer \xff\xfe")],
            [(b"authorization", b"Bearer " + b"x" * 8000)],
            [(b"authorization", b"\xff")],
        ]
        for headers in raw_headers:
            r = await anonymous.get("/api/v1/app", headers=headers)
            assert_error(r, 401, "authentication_failed")
    async with api.http() as http:
        queries = [
            f"/api/v1/app/{app_id}/msg?channel=%FF",
            f"/api/v1/app/{app_id}/msg?event_types=%FF,%00",
            f"/api/v1/app/{app_id}/msg?before=%FF",
            f"/api/v1/app/{app_id}/msg?after=99999-99-99",
            f"/api/v1/app/{app_id}/msg?with_content=%00",
            f"/api/v1/app/{app_id}/attempt/msg/{msg_id}?endpoint_id=%00",
            f"/api/v1/app/{app_id}/attempt/msg/{msg_id}?status=99",
            f"/api/v1/app/{app_id}/attempt/msg/{msg_id}?status_code_class=-1",
            f"/api/v1/app/{app_id}/endpoint/{ids['endpoint_id']}/stats?since=0000-00-00",
        ]
        for query in queries:
            r = not_5xx(await http.get(query), query)
            assert r.status_code == 422, (query, r.text)
        # Unsupported methods: 405 with every method the path supports in Allow.
        for method, path, allow in (
            ("OPTIONS", "/api/v1/app", "GET, POST"),
            ("TRACE", f"/api/v1/app/{app_id}", "GET, PUT, PATCH, DELETE"),
            ("PUT", f"/api/v1/app/{app_id}/msg", "GET, POST"),
            ("DELETE", "/api/v1/health", "GET, HEAD"),
        ):
            r = await http.request(method, path)
            assert_error(r, 405, "method_not_allowed")
            assert r.headers["allow"] == allow, (method, path, r.headers)
        for headers in (
            {"idempotency-key": b"\xff\xfe"},
            {"idempotency-key": "k" * 10_000},
            {"content-type": "application/json; charset=ebcdic"},
            {"content-type": "text/plain"},
            {"content-type": b"application/json; charset=\xff"},
        ):
            r = await http.post(
                f"/api/v1/app/{app_id}/msg",
                content=b'{"eventType": "a.b", "payload": {}}',
                headers=headers,
            )
            not_5xx(r, headers)
