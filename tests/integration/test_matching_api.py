"""Event type patterns and payload filters through the API: the official svix SDK for the
Svix fields (``filterTypes``/``eventTypes`` with patterns), plain HTTP for the extension field
``payloadFilter``, and real messages to a receiver on 127.0.0.1 that gets a message only when
the endpoint's filters match it."""

from __future__ import annotations

from typing import Any

import pytest
from svix.api import (
    ApplicationIn,
    EndpointIn,
    EndpointPatch,
    EndpointUpsertIn,
    MessageIn,
    SvixAsync,
)
from svix.exceptions import HTTPValidationError
from svix.webhooks import Webhook

from tests.integration.test_api_harness import ApiServer
from tests.support.receiver import Receiver

EXAMPLE = {
    "amount": {"$gte": 1000},
    "currency": {"$in": ["EUR", "USD"]},
    "$or": [{"customer.tier": "gold"}, {"flagged": True}],
}


async def test_event_type_patterns_through_the_sdk(svix: SvixAsync, receiver: Receiver) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    ep = await svix.endpoint.create(
        app.id, EndpointIn(url=receiver.url("/inv"), event_types=["invoice.*", "user.created"])
    )
    assert ep.event_types == ["invoice.*", "user.created"]
    patched = await svix.endpoint.patch(app.id, ep.id, EndpointPatch(event_types=["*"]))
    assert patched.event_types == ["*"]
    put = await svix.endpoint.upsert(
        app.id, ep.id, EndpointUpsertIn(url=receiver.url("/inv"), event_types=["invoice.*"])
    )
    assert (await svix.endpoint.get(app.id, put.id)).event_types == ["invoice.*"]
    for bad in (["invoice.*.paid"], ["*.paid"], ["inv*"], [".*"], ["**"]):
        with pytest.raises(HTTPValidationError) as err:
            await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/x"), event_types=bad))
        assert err.value.detail[0].loc == ["body", "eventTypes", 0], bad


async def test_payload_filter_field_over_http(api: ApiServer, svix: SvixAsync) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    base = f"/api/v1/app/{app.id}/endpoint"
    async with api.http() as http:
        r = await http.post(base, json={"url": "https://example.com/a", "payloadFilter": EXAMPLE})
        assert r.status_code == 201, r.text
        ep = r.json()
        assert ep["payloadFilter"] == EXAMPLE
        assert (await http.get(f"{base}/{ep['id']}")).json()["payloadFilter"] == EXAMPLE
        listed = (await http.get(base)).json()["data"]
        assert [e["payloadFilter"] for e in listed] == [EXAMPLE]

        # PATCH: absent leaves it, a new one replaces it, {} and null clear it
        r = await http.patch(f"{base}/{ep['id']}", json={"description": "d"})
        assert r.json()["payloadFilter"] == EXAMPLE
        r = await http.patch(f"{base}/{ep['id']}", json={"payloadFilter": {"flagged": True}})
        assert r.json()["payloadFilter"] == {"flagged": True}
        r = await http.patch(f"{base}/{ep['id']}", json={"payloadFilter": {}})
        assert r.json()["payloadFilter"] is None
        r = await http.patch(f"{base}/{ep['id']}", json={"payloadFilter": {"a": 1}})
        r = await http.patch(f"{base}/{ep['id']}", json={"payloadFilter": None})
        assert r.json()["payloadFilter"] is None
        # PUT sets it; one that leaves it out leaves it as it is (the svix SDK's PUT does not
        # know the field and must not drop it); null removes it
        r = await http.put(
            f"{base}/{ep['id']}", json={"url": "https://example.com/a", "payloadFilter": {"a": 1}}
        )
        assert (r.status_code, r.json()["payloadFilter"]) == (200, {"a": 1})
        r = await http.put(f"{base}/{ep['id']}", json={"url": "https://example.com/b"})
        assert (r.json()["url"], r.json()["payloadFilter"]) == ("https://example.com/b", {"a": 1})
        await svix.endpoint.upsert(
            app.id, ep["id"], EndpointUpsertIn(url="https://example.com/a", description="sdk")
        )
        await svix.endpoint.patch(app.id, ep["id"], EndpointPatch(description="sdk patch"))
        sdk_ep = await svix.endpoint.get(app.id, ep["id"])  # parses despite the extension field
        assert (sdk_ep.url, sdk_ep.description) == ("https://example.com/a", "sdk patch")
        assert (await http.get(f"{base}/{ep['id']}")).json()["payloadFilter"] == {"a": 1}
        r = await http.put(
            f"{base}/{ep['id']}", json={"url": "https://example.com/a", "payloadFilter": None}
        )
        assert r.json()["payloadFilter"] is None
        # a PUT that creates the endpoint: as a create
        r = await http.put(
            f"{base}/by-put", json={"url": "https://example.com/c", "payloadFilter": {"b": 2}}
        )
        assert (r.status_code, r.json()["payloadFilter"]) == (201, {"b": 2})
        r = await http.put(f"{base}/by-put-2", json={"url": "https://example.com/c"})
        assert (r.status_code, r.json()["payloadFilter"]) == (201, None)

        invalid: list[tuple[Any, list[str | int]]] = [
            ({"$or": [{"a": 1}, {"amount": {"$gt": [1]}}]}, ["$or", 1, "amount", "$gt"]),
            ({"amount": {"$between": [1, 2]}}, ["amount", "$between"]),
            ({"currency": {"$in": "EUR"}}, ["currency", "$in"]),
            ({"$and": {"a": 1}}, ["$and"]),
            ({"customer_id": {"$exists": "yes"}}, ["customer_id", "$exists"]),
            ({"customer.tier": {"$gt": {}}}, ["customer.tier", "$gt"]),
            ({"a": {"$in": list(range(600))}}, []),
        ]
        for flt, path in invalid:
            for method, url, extra in (
                ("POST", base, {"url": "https://example.com/b"}),
                ("PUT", f"{base}/{ep['id']}", {"url": "https://example.com/a"}),
                ("PATCH", f"{base}/{ep['id']}", {}),
            ):
                r = await http.request(method, url, json={**extra, "payloadFilter": flt})
                assert r.status_code == 422, (method, flt, r.text)
                detail = r.json()["detail"]
                assert detail[0]["loc"] == ["body", "payloadFilter", *path], detail
        r = await http.post(base, json={"url": "https://example.com/b", "payloadFilter": [1]})
        assert r.status_code == 422  # not an object: pydantic's own 422
        assert r.json()["detail"][0]["loc"][:2] == ["body", "payloadFilter"]
        assert (await http.get(f"{base}/{ep['id']}")).json()["payloadFilter"] is None
        assert len((await http.get(base)).json()["data"]) == 3  # no invalid one was created


async def test_receiver_gets_only_matching_messages(
    api: ApiServer, svix: SvixAsync, receiver: Receiver
) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    base = f"/api/v1/app/{app.id}/endpoint"
    async with api.http() as http:
        endpoints = {}
        for path, extra in (
            ("/all", {}),
            ("/big", {"payloadFilter": EXAMPLE}),
            ("/inv", {"eventTypes": ["invoice.*"], "payloadFilter": {"flagged": {"$neq": True}}}),
            ("/eu", {"channels": ["eu"], "payloadFilter": {"customer": {"tier": "gold"}}}),
        ):
            r = await http.post(base, json={"url": receiver.url(path), **extra})
            assert r.status_code == 201, r.text
            endpoints[path] = r.json()["id"]
    secrets = {p: (await svix.endpoint.get_secret(app.id, i)).key for p, i in endpoints.items()}

    sends: list[tuple[str, dict[str, Any], list[str] | None, set[str]]] = [
        (
            "invoice.paid",
            {"amount": 1000, "currency": "EUR", "customer": {"tier": "gold"}},
            ["eu"],
            {"/all", "/big", "/inv", "/eu"},
        ),
        ("invoice.paid", {"amount": 999, "currency": "EUR", "flagged": True}, None, {"/all"}),
        (
            "user.created",
            {"amount": 5000, "currency": "USD", "flagged": True},
            ["eu"],
            {"/all", "/big"},
        ),
        (
            "invoice.void",
            {"amount": "5000", "currency": "USD", "customer": {"tier": "gold"}},
            ["us"],
            {"/all", "/inv"},
        ),
        ("order.placed", {"customer": {"tier": "gold"}}, ["eu"], {"/all", "/eu"}),
    ]
    expected: dict[str, set[str]] = {p: set() for p in endpoints}
    for event_type, payload, channels, paths in sends:
        msg = await svix.message.create(
            app.id, MessageIn(event_type=event_type, payload=payload, channels=channels)
        )
        for p in paths:
            expected[p].add(msg.id)
        # the deliveries are made with the message: these are all there will ever be
        dests = await svix.message_attempt.list_attempted_destinations(app.id, msg.id)
        assert {d.id for d in dests.data} == {endpoints[p] for p in paths}, (event_type, payload)

    for path, ids in expected.items():
        await receiver.wait_for(len(ids), path)
    for path, ids in expected.items():
        got = receiver.on(path)
        assert {r.webhook_id for r in got} == ids, path
        for r in got:
            Webhook(secrets[path]).verify(r.body, r.headers)  # raises if the signature is wrong


async def test_openapi_documents_patterns_and_payload_filters(api: ApiServer) -> None:
    async with api.http(token=None) as http:
        doc = (await http.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    for model in ("EndpointIn", "EndpointUpdate", "EndpointPatch", "EndpointOut"):
        field = schemas[model]["properties"]["payloadFilter"]
        assert "hookpost extension" in field["description"], model
        assert "docs/payload-filters.md" in field["description"], model
    for model in ("EndpointIn", "EndpointUpdate", "EndpointPatch"):
        types = schemas[model]["properties"]["eventTypes"]
        assert "`invoice.*`" in types["description"], model
        items = next(t["items"] for t in types["anyOf"] if t.get("type") == "array")
        assert "\\*" in items["pattern"], model
