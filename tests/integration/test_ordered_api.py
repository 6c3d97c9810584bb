"""``ordered`` on endpoints through the API: validated (a 422 naming the field), stored and
shown, left alone by the svix SDK's PUT, and documented in hookpost's OpenAPI."""

from __future__ import annotations

import httpx
from svix.api import EndpointIn, EndpointPatch, EndpointUpsertIn

from tests.integration.test_api_errors import assert_invalid
from tests.integration.test_api_harness import ApiServer, svix_client

URL = "http://127.0.0.1:9/"


async def test_ordered_round_trip_and_the_svix_sdk(
    api: ApiServer, http: httpx.AsyncClient, app_id: str
) -> None:
    base = f"/api/v1/app/{app_id}/endpoint"
    plain = (await http.post(base, json={"url": URL})).json()
    assert plain["ordered"] is False  # the default
    created = await http.post(base, json={"url": URL, "ordered": True})
    assert created.status_code == 201, created.text
    ep = created.json()
    assert ep["ordered"] is True
    path = f"{base}/{ep['id']}"
    assert (await http.get(path)).json()["ordered"] is True
    assert (await api.hp.services.endpoints.get(app_id, ep["id"])).ordered

    # The svix SDK does not know the field: it works on the endpoint, and its PUT keeps it.
    async with svix_client(api) as svix:
        got = await svix.endpoint.get(app_id, ep["id"])
        assert got.url == URL
        await svix.endpoint.upsert(app_id, ep["id"], EndpointUpsertIn(url="http://127.0.0.1:8/"))
        await svix.endpoint.patch(app_id, ep["id"], EndpointPatch(description="fifo"))
        listed = await svix.endpoint.list(app_id)
        assert {e.id for e in listed.data} == {plain["id"], ep["id"]}
        made = await svix.endpoint.create(app_id, EndpointIn(url=URL))
    shown = (await http.get(path)).json()
    assert (shown["url"], shown["description"], shown["ordered"]) == (
        "http://127.0.0.1:8/",
        "fifo",
        True,
    )
    assert (await http.get(f"{base}/{made.id}")).json()["ordered"] is False

    # PATCH switches it off and on; PUT sets it when sent.
    assert (await http.patch(path, json={"ordered": False})).json()["ordered"] is False
    assert (await http.patch(path, json={"description": "x"})).json()["ordered"] is False
    put = await http.put(path, json={"url": URL, "ordered": True})
    assert put.status_code == 200, put.text
    assert put.json()["ordered"] is True


async def test_ordered_must_be_a_boolean(http: httpx.AsyncClient, app_id: str) -> None:
    base = f"/api/v1/app/{app_id}/endpoint"
    for bad in ("yes", "true", 1, 0, None, [], {}):
        assert_invalid(await http.post(base, json={"url": URL, "ordered": bad}), "body", "ordered")
    path = f"{base}/{(await http.post(base, json={'url': URL})).json()['id']}"
    for bad in ("false", 1, None):
        assert_invalid(await http.patch(path, json={"ordered": bad}), "body", "ordered")
        assert_invalid(await http.put(path, json={"url": URL, "ordered": bad}), "body", "ordered")


async def test_the_openapi_document_describes_ordered(http: httpx.AsyncClient) -> None:
    schemas = (await http.get("/api/v1/openapi.json")).json()["components"]["schemas"]
    for model in ("EndpointIn", "EndpointUpdate", "EndpointPatch", "EndpointOut"):
        prop = schemas[model]["properties"]["ordered"]
        assert "hookpost extension" in prop["description"], model
        assert "latency" in prop["description"], model
