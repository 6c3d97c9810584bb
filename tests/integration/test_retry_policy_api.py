"""retryPolicy and timeoutSeconds on endpoints, and Svix's event-type retry-schedule routes,
through the API: plain HTTP for hookpost's fields, the svix SDK for what it knows."""

from __future__ import annotations

import httpx
from svix.api import EndpointUpsertIn, EventTypeIn, EventTypeUpsertIn

from tests.integration.test_api_errors import assert_invalid
from tests.integration.test_api_harness import ApiServer, svix_client

URL = "http://127.0.0.1:9/"
EXPONENTIAL = {
    "strategy": "exponential",
    "initialDelaySeconds": 10,
    "multiplier": 3.0,
    "maxDelaySeconds": 3600,
    "maxAttempts": 6,
}


async def test_policy_and_timeout_are_stored_shown_and_survive_an_sdk_put(
    api: ApiServer, http: httpx.AsyncClient, app_id: str
) -> None:
    base = f"/api/v1/app/{app_id}/endpoint"
    created = await http.post(
        base, json={"url": URL, "retryPolicy": EXPONENTIAL, "timeoutSeconds": 7}
    )
    assert created.status_code == 201, created.text
    ep = created.json()
    assert (ep["retryPolicy"], ep["timeoutSeconds"]) == (EXPONENTIAL, 7)
    path = f"{base}/{ep['id']}"
    stored = await api.hp.services.endpoints.get(app_id, ep["id"])
    assert stored.retry_schedule == [10, 30, 90, 270, 810]  # what the claim reads

    # The svix SDK knows neither field: its PUT leaves both alone.
    async with svix_client(api) as svix:
        await svix.endpoint.upsert(app_id, ep["id"], EndpointUpsertIn(url="http://127.0.0.1:8/"))
        got = await svix.endpoint.get(app_id, ep["id"])
        assert got.url == "http://127.0.0.1:8/"
    shown = (await http.get(path)).json()
    assert (shown["retryPolicy"], shown["timeoutSeconds"]) == (EXPONENTIAL, 7)

    # PATCH replaces one, keeps the other; null clears.
    patched = (await http.patch(path, json={"retryPolicy": {"schedule": [1, 2]}})).json()
    assert (patched["retryPolicy"], patched["timeoutSeconds"]) == ({"schedule": [1, 2]}, 7)
    assert (await api.hp.services.endpoints.get(app_id, ep["id"])).retry_schedule == [1, 2]
    cleared = (await http.patch(path, json={"retryPolicy": None, "timeoutSeconds": None})).json()
    assert (cleared["retryPolicy"], cleared["timeoutSeconds"]) == (None, None)
    assert (await api.hp.services.endpoints.get(app_id, ep["id"])).retry_schedule is None

    # A PUT that sends them sets them; linear shows no multiplier.
    linear = {"strategy": "linear", "initialDelaySeconds": 60, "maxAttempts": 4}
    put = await http.put(path, json={"url": URL, "retryPolicy": linear, "timeoutSeconds": 60})
    assert put.status_code == 200, put.text
    assert put.json()["retryPolicy"] == {**linear, "maxDelaySeconds": 86400}
    assert put.json()["timeoutSeconds"] == 60


async def test_bad_policies_and_timeouts_are_422s_naming_the_field(
    http: httpx.AsyncClient, app_id: str
) -> None:
    base = f"/api/v1/app/{app_id}/endpoint"
    for extra, loc in (
        (
            {"retryPolicy": {"strategy": "linear", "maxAttempts": 51}},
            ("retryPolicy", "maxAttempts"),
        ),
        ({"retryPolicy": {"schedule": [5, 604801]}}, ("retryPolicy", "schedule", 1)),
        ({"retryPolicy": {"schedule": [1] * 50}}, ("retryPolicy", "schedule")),
        (
            {"retryPolicy": {"strategy": "exponential", "multiplier": 0}},
            ("retryPolicy", "multiplier"),
        ),
        ({"retryPolicy": {"strategy": "linear", "multiplier": 2}}, ("retryPolicy", "multiplier")),
        ({"retryPolicy": {"strategy": "sometimes"}}, ("retryPolicy", "strategy")),
        ({"retryPolicy": {"maxAttempts": 3}}, ("retryPolicy", "strategy")),
        ({"retryPolicy": {"schedule": [1], "nope": 1}}, ("retryPolicy", "nope")),
        ({"timeoutSeconds": 0}, ("timeoutSeconds",)),
        ({"timeoutSeconds": 61}, ("timeoutSeconds",)),
    ):
        assert_invalid(await http.post(base, json={"url": URL, **extra}), "body", *loc)
    ep = (await http.post(base, json={"url": URL})).json()
    path = f"{base}/{ep['id']}"
    assert_invalid(
        await http.patch(path, json={"retryPolicy": {"strategy": "linear", "maxAttempts": 0}}),
        "body",
        "retryPolicy",
        "maxAttempts",
    )
    assert_invalid(await http.patch(path, json={"timeoutSeconds": 120}), "body", "timeoutSeconds")
    assert_invalid(
        await http.put(path, json={"url": URL, "timeoutSeconds": -1}), "body", "timeoutSeconds"
    )


async def test_event_type_retry_schedule_routes(api: ApiServer, http: httpx.AsyncClient) -> None:
    # The installed svix SDK has no retry-schedule call: plain HTTP, the reference's shapes.
    async with svix_client(api) as svix:
        await svix.event_type.create(EventTypeIn(name="invoice.paid", description="paid"))
    path = "/api/v1/event-type/invoice.paid/retry-schedule"
    assert (await http.get(path)).json() == {"retrySchedule": None}
    put = await http.put(
        path, json={"retrySchedule": [{"secs": 5, "nanos": 0}, 60, {"secs": 1, "nanos": 1}]}
    )
    assert put.status_code == 200, put.text
    durations = [{"secs": 5, "nanos": 0}, {"secs": 60, "nanos": 0}, {"secs": 2, "nanos": 0}]
    assert put.json() == {"retrySchedule": durations}
    assert (await http.get(path)).json() == {"retrySchedule": durations}
    assert (await api.hp.store.delivery_options()).type_schedules == {"invoice.paid": (5, 60, 2)}

    # Updating the event type through the SDK keeps its schedule.
    async with svix_client(api) as svix:
        await svix.event_type.upsert("invoice.paid", EventTypeUpsertIn(description="paid, v2"))
    assert (await http.get(path)).json() == {"retrySchedule": durations}

    assert_invalid(await http.put(path, json={"retrySchedule": [1] * 50}), "body", "retrySchedule")
    assert_invalid(
        await http.put(path, json={"retrySchedule": [1, 604801]}), "body", "retrySchedule", 1
    )
    missing = await http.get("/api/v1/event-type/no.such/retry-schedule")
    assert missing.status_code == 404, missing.text
    assert (await http.put(path, json={"retrySchedule": None})).json() == {"retrySchedule": None}
    assert (await api.hp.store.delivery_options()).type_schedules == {}


async def test_the_openapi_document_describes_the_new_fields(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    for model in ("EndpointIn", "EndpointUpdate", "EndpointPatch", "EndpointOut"):
        props = schemas[model]["properties"]
        for field in ("retryPolicy", "timeoutSeconds"):
            assert "hookpost extension" in props[field]["description"], (model, field)
    ops = doc["paths"]["/api/v1/event-type/{event_type_name}/retry-schedule"]
    assert ops["get"]["operationId"] == "v1.event-type.get-retry-schedule"
    assert ops["put"]["operationId"] == "v1.event-type.set-retry-schedule"
    assert "retryPolicy" in ops["put"]["description"]
