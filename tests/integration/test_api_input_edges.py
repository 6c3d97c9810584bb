"""Issue 25's bad-input findings through the REST API, on SQLite and PostgreSQL: list filters
with too many values, dates past what a datetime can hold, NUL characters in paths and
queries, application uids that look like ids. Every answer is a 4xx naming the field."""

from __future__ import annotations

import httpx
import pytest

from hookpost.api.fields import MAX_EVENT_TYPES
from tests.integration import test_hostile_input as hostile
from tests.integration.test_api_errors import assert_invalid

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

# The module's server (one per backend), its client, and an application with an endpoint and a
# message: the hostile-input tests' fixtures.
api, http, ids = hostile.api, hostile.http, hostile.ids

PUBLIC_URL = "https://example.com/hook"  # never contacted: the worker is off


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


# --------------------------------------------------------------------------- dates


EDGE_DATES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")


async def test_recover_dates_beyond_utc_are_422(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    path = f"/api/v1/app/{ids['app_id']}/endpoint/{ids['endpoint_id']}/recover"
    r = await http.post(path, json={"since": EDGE_DATES[0]})
    assert_invalid(r, "body", "since")
    r = await http.post(path, json={"since": "2020-01-01T00:00:00Z", "until": EDGE_DATES[1]})
    assert_invalid(r, "body", "until")


async def test_query_dates_at_the_edges_are_answered(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    # Query dates are clamped to what ids can encode: they bound a range, never fail it.
    stats = f"/api/v1/app/{ids['app_id']}/endpoint/{ids['endpoint_id']}/stats"
    for value in (*EDGE_DATES, "0001-01-01T00:00:00", "9999-12-31T23:59:59"):
        for path, names in [(p, ("before", "after")) for p in _list_paths(ids)] + [
            (stats, ("since", "until"))
        ]:
            for name in names:
                r = await http.get(path, params={name: value})
                assert r.status_code == 200, (path, name, value, r.text[:300])


# --------------------------------------------------------------------------- NUL characters


async def test_nul_in_any_path_or_query_parameter_is_4xx_with_an_idempotency_key(
    http: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    """Every parameter of every operation in the OpenAPI document, with a NUL character (the
    key made the API look the path up in the store before routing refused it: a 500 on
    PostgreSQL)."""
    doc = (await http.get("/api/v1/openapi.json")).json()
    values = {**ids, "attempt_id": "atmpt_none", "event_type_name": "a.b"}
    body = {
        "url": PUBLIC_URL,
        "eventType": "a.b",
        "payload": {},
        "name": "x",
        "since": "2020-01-01T00:00:00Z",
    }
    checked = 0
    for template, operations in doc["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                if param["in"] not in ("path", "query"):
                    continue
                path = template
                for name, value in values.items():
                    bad = "a%00b" if param["in"] == "path" and param["name"] == name else value
                    path = path.replace("{" + name + "}", bad)
                if param["in"] == "query":
                    path = f"{path}?{param['name']}=a%00b"
                for headers in ({"idempotency-key": f"nul-{checked}"}, {}):
                    r = await http.request(method, path, json=body, headers=headers)
                    assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
                    if param["in"] == "path":
                        assert_invalid(r, "path", param["name"])
                checked += 1
    assert checked > 40, checked


# --------------------------------------------------------------------------- uids


async def test_an_application_uid_may_not_look_like_an_id(http: httpx.AsyncClient) -> None:
    taken = (await http.post("/api/v1/app", json={"name": "Owner"})).json()["id"]
    unused = "app_" + "0" * 22  # the form of an id that no application has
    for uid in (taken, unused):
        r = await http.post("/api/v1/app", json={"name": "Squatter", "uid": uid})
        assert_invalid(r, "body", "uid")
        r = await http.post("/api/v1/app?get_if_exists=true", json={"name": "S", "uid": uid})
        assert r.status_code in (200, 422), r.text  # the owner itself, by its id
        other = (await http.post("/api/v1/app", json={"name": "Other"})).json()["id"]
        assert_invalid(await http.patch(f"/api/v1/app/{other}", json={"uid": uid}), "body", "uid")
        r = await http.put(f"/api/v1/app/{other}", json={"name": "Other", "uid": uid})
        assert_invalid(r, "body", "uid")
    # PUT and the other create-if-missing routes take the path as the new app's uid.
    assert_invalid(await http.put(f"/api/v1/app/{unused}", json={"name": "N"}), "body", "uid")
    r = await http.post(
        f"/api/v1/auth/app-portal-access/{unused}", json={"application": {"name": "N"}}
    )
    assert_invalid(r, "body", "uid")
    r = await http.post(
        f"/api/v1/app/{unused}/msg",
        json={"eventType": "a.b", "payload": {}, "application": {"name": "N"}},
    )
    assert_invalid(r, "body", "uid")
    assert (await http.get(f"/api/v1/app/{unused}")).status_code == 404
    # Uids that merely start like one stay valid, and the id still names its own app.
    for uid in ("app_", "app_x", f"{taken}0", taken[:-1], "ep_" + "0" * 22):
        r = await http.post("/api/v1/app", json={"name": "Fine", "uid": uid})
        assert r.status_code == 201, (uid, r.text)
        assert (await http.get(f"/api/v1/app/{uid}")).json()["uid"] == uid
    assert (await http.get(f"/api/v1/app/{taken}")).json()["name"] == "Owner"
