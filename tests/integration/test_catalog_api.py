"""Issue 19's catalog, secrets and provenance over real HTTP, on both backends: strict event
types and payload schemas (422s naming the type or JSON path), subscription warnings,
secret-once (403 after creation, rotation still works with the svix SDK) and payloadSha256
against what a real receiver on 127.0.0.1 got."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from svix.api import EndpointIn, EndpointPatch, EndpointSecretRotateIn, MessageIn
from svix.exceptions import HttpError
from svix.webhooks import Webhook, WebhookVerificationError

from hookpost.store.secretbox import generate_main_key
from tests.integration.test_api_harness import running_api, svix_client
from tests.support.receiver import Receiver

MAIN_KEY = generate_main_key()
SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        "customer": {"type": "object", "required": ["id"]},
    },
    "required": ["amount"],
}


def _loc(response: httpx.Response) -> list[Any]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert len(detail) == 1
    return list(detail[0]["loc"])


async def _app(http: httpx.AsyncClient) -> str:
    created = await http.post("/api/v1/app", json={"name": "Acme"})
    assert created.status_code == 201
    return str(created.json()["id"])


# --------------------------------------------------------------------------- strict mode


async def test_strict_messages_name_the_type_and_the_json_path(any_database_url: str) -> None:
    async with (
        running_api(any_database_url, main_key=MAIN_KEY, strict_event_types=True) as api,
        api.http() as http,
    ):
        app_id = await _app(http)
        msg = f"/api/v1/app/{app_id}/msg"
        unknown = await http.post(msg, json={"eventType": "invoice.paid", "payload": {}})
        assert _loc(unknown) == ["body", "eventType"]
        assert "'invoice.paid' is not in the catalog" in unknown.json()["detail"][0]["msg"]

        et = {"name": "invoice.paid", "description": "paid", "schemas": {"1": SCHEMA}}
        assert (await http.post("/api/v1/event-type", json=et)).status_code == 201
        good = await http.post(msg, json={"eventType": "invoice.paid", "payload": {"amount": 3}})
        assert good.status_code == 202

        bad = {"eventType": "invoice.paid", "payload": {"amount": 3, "customer": {}}}
        answer = await http.post(msg, json=bad)  # the front door
        assert _loc(answer) == ["body", "payload", "customer", "id"]
        # The same through FastAPI's route (a content type the front door leaves to it).
        slow = await http.post(
            msg,
            content=httpx.Request("POST", "/", json=bad).content,
            headers={"content-type": "application/vnd.api+json"},
        )
        assert _loc(slow) == ["body", "payload", "customer", "id"]
        negative = await http.post(
            msg, json={"eventType": "invoice.paid", "payload": {"amount": -1}}
        )
        assert _loc(negative) == ["body", "payload", "amount"]
        assert "minimum" in negative.json()["detail"][0]["msg"]

        archived = await http.delete("/api/v1/event-type/invoice.paid")
        assert archived.status_code == 204
        gone = await http.post(msg, json={"eventType": "invoice.paid", "payload": {"amount": 3}})
        assert _loc(gone) == ["body", "eventType"]
        assert "archived" in gone.json()["detail"][0]["msg"]


async def test_strict_subscriptions_name_the_entry(any_database_url: str) -> None:
    async with (
        running_api(any_database_url, main_key=MAIN_KEY, strict_event_types=True) as api,
        api.http() as http,
    ):
        app_id = await _app(http)
        for name in ("invoice.paid", "user.created"):
            created = await http.post("/api/v1/event-type", json={"name": name, "description": ""})
            assert created.status_code == 201
        base = f"/api/v1/app/{app_id}/endpoint"
        url = "https://example.com/hook"
        refused = await http.post(base, json={"url": url, "eventTypes": ["user.created", "x.y"]})
        assert _loc(refused) == ["body", "eventTypes", 1]
        assert "'x.y'" in refused.json()["detail"][0]["msg"]

        ep = await http.post(base, json={"url": url, "eventTypes": ["invoice.paid"]})
        assert ep.status_code == 201 and ep.json()["warnings"] == []
        ep_id = ep.json()["id"]
        patched = await http.patch(f"{base}/{ep_id}", json={"eventTypes": ["nope"]})
        assert _loc(patched) == ["body", "eventTypes", 0]
        put = await http.put(f"{base}/{ep_id}", json={"url": url, "eventTypes": ["a", "b"]})
        assert _loc(put) == ["body", "eventTypes", 0]
        assert (await http.get(f"{base}/{ep_id}")).json()["eventTypes"] == ["invoice.paid"]


async def test_event_type_schemas_must_be_json_schemas(any_database_url: str) -> None:
    async with running_api(any_database_url, main_key=MAIN_KEY) as api, api.http() as http:
        bad = {"name": "a.b", "description": "", "schemas": {"1": {"type": "integr"}}}
        refused = await http.post("/api/v1/event-type", json=bad)
        assert _loc(refused) == ["body", "schemas", "1", "type"]
        ok = {"name": "a.b", "description": "", "schemas": {"1": SCHEMA}}
        assert (await http.post("/api/v1/event-type", json=ok)).status_code == 201
        patch = await http.patch(
            "/api/v1/event-type/a.b", json={"schemas": {"2": {"required": "id"}}}
        )
        assert _loc(patch) == ["body", "schemas", "2", "required"]
        put = await http.put("/api/v1/event-type/a.b", json={**bad, "name": None})
        assert _loc(put) == ["body", "schemas", "1", "type"]


# --------------------------------------------------------------------------- warnings


async def test_unknown_subscriptions_are_kept_with_a_warning(any_database_url: str) -> None:
    async with running_api(any_database_url, main_key=MAIN_KEY) as api, api.http() as http:
        app_id = await _app(http)
        await http.post("/api/v1/event-type", json={"name": "invoice.paid", "description": ""})
        base = f"/api/v1/app/{app_id}/endpoint"
        body = {"url": "https://example.com/h", "eventTypes": ["invoice.paid", "nope.x"]}
        created = await http.post(base, json=body)
        assert created.status_code == 201
        warnings = created.json()["warnings"]
        assert [w["field"] for w in warnings] == ["eventTypes"]
        assert "'nope.x'" in warnings[0]["message"]
        assert created.json()["eventTypes"] == ["invoice.paid", "nope.x"]
        ep_id = created.json()["id"]
        fixed = await http.patch(f"{base}/{ep_id}", json={"eventTypes": ["invoice.paid"]})
        assert fixed.status_code == 200 and fixed.json()["warnings"] == []
        assert "warnings" not in (await http.get(f"{base}/{ep_id}")).json()

        # The svix SDK parses these answers (it ignores warnings and secret).
        async with svix_client(api) as svix:
            ep = await svix.endpoint.create(
                app_id, EndpointIn(url="https://example.com/s", event_types=["nope.y"])
            )
            assert ep.event_types == ["nope.y"]
            again = await svix.endpoint.patch(app_id, ep.id, EndpointPatch(event_types=["z"]))
            assert again.event_types == ["z"]


# --------------------------------------------------------------------------- secret-once


async def test_secret_is_shown_once_and_rotation_still_works(
    any_database_url: str, receiver: Receiver
) -> None:
    async with (
        running_api(any_database_url, main_key=MAIN_KEY, reveal_secrets=False) as api,
        api.http() as http,
        svix_client(api) as svix,
    ):
        app_id = await _app(http)
        base = f"/api/v1/app/{app_id}/endpoint"
        created = await http.post(base, json={"url": receiver.url("/one")})
        assert created.status_code == 201
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        ep_id = created.json()["id"]

        hidden = await http.get(f"{base}/{ep_id}/secret")
        assert hidden.status_code == 403
        assert hidden.json()["code"] == "forbidden"
        assert f"/endpoint/{ep_id}/secret/rotate" in hidden.json()["detail"]
        with pytest.raises(HttpError) as caught:
            await svix.endpoint.get_secret(app_id, ep_id)
        assert caught.value.status_code == 403
        missing = await http.get(f"{base}/ep_nope/secret")
        assert missing.status_code == 404

        # A PUT that creates an endpoint shows its secret too.
        put = await http.put(f"{base}/made-by-put", json={"url": receiver.url("/two")})
        assert put.status_code == 201 and put.json()["secret"].startswith("whsec_")

        # The SDK's rotate gets the new key (200 EndpointSecretOut): the one time it is shown.
        rotated = await svix.endpoint.rotate_secret(
            app_id, ep_id, EndpointSecretRotateIn(grace_period_seconds=0)
        )
        assert rotated.key.startswith("whsec_") and rotated.key != secret
        assert (await http.get(f"{base}/{ep_id}/secret")).status_code == 403

        sent = await svix.message.create(app_id, MessageIn(event_type="a.b", payload={"n": 1}))
        await receiver.wait_for(1, "/one")
        got = receiver.on("/one")[0]
        assert got.webhook_id == sent.id
        Webhook(rotated.key).verify(got.body, got.headers)  # raises unless signed with it
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(got.body, got.headers)  # no grace period: the old key is out


async def test_secrets_are_revealed_by_default(fresh_sqlite_url: str) -> None:
    async with running_api(fresh_sqlite_url) as api, api.http() as http:
        app_id = await _app(http)
        base = f"/api/v1/app/{app_id}/endpoint"
        created = await http.post(base, json={"url": "https://example.com/h"})
        shown = await http.get(f"{base}/{created.json()['id']}/secret")
        assert shown.status_code == 200 and shown.json()["key"] == created.json()["secret"]


# --------------------------------------------------------------------------- provenance


async def test_payload_sha256_is_the_hash_of_what_the_receiver_got(
    any_database_url: str, receiver: Receiver
) -> None:
    async with (
        running_api(any_database_url, main_key=MAIN_KEY) as api,
        api.http() as http,
        svix_client(api) as svix,
    ):
        app_id = await _app(http)
        hook = await http.post(
            f"/api/v1/app/{app_id}/endpoint", json={"url": receiver.url("/audit")}
        )
        assert hook.status_code == 201
        payload = {"b": "é ☃ \u2028", "a": [1.5, None, {"z": True}], "n": 10**18}
        created = await http.post(
            f"/api/v1/app/{app_id}/msg", json={"eventType": "audit.me", "payload": payload}
        )
        assert created.status_code == 202
        msg = created.json()
        await receiver.wait_for(1, "/audit")
        body = receiver.on("/audit")[0].body
        assert msg["payloadSha256"] == hashlib.sha256(body).hexdigest()

        # Kept after the content is expunged, in every view of the message.
        expunged = await http.delete(f"/api/v1/app/{app_id}/msg/{msg['id']}/content")
        assert expunged.status_code == 204
        got = (await http.get(f"/api/v1/app/{app_id}/msg/{msg['id']}")).json()
        assert got["payload"] == {} and got["payloadSha256"] == msg["payloadSha256"]
        listed = (await http.get(f"/api/v1/app/{app_id}/msg")).json()["data"]
        assert [m["payloadSha256"] for m in listed] == [msg["payloadSha256"]]
        short = (await http.get(f"/api/v1/app/{app_id}/msg?with_content=false")).json()["data"]
        assert short[0]["payloadSha256"] == msg["payloadSha256"]
        ep_id = hook.json()["id"]
        by_endpoint = await http.get(f"/api/v1/app/{app_id}/endpoint/{ep_id}/msg")
        assert by_endpoint.json()["data"][0]["payloadSha256"] == msg["payloadSha256"]

        # The svix SDK parses the message (it ignores the field).
        sdk_msg = await svix.message.get(app_id, msg["id"])
        assert sdk_msg.id == msg["id"]


async def test_the_extensions_are_documented_in_the_openapi_document(
    fresh_sqlite_url: str,
) -> None:
    async with running_api(fresh_sqlite_url) as api, api.http() as http:
        doc = (await http.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "SHA-256" in schemas["MessageOut"]["properties"]["payloadSha256"]["description"]
    warnings = schemas["EndpointWrittenOut"]["properties"]["warnings"]
    assert "eventTypes" in warnings["description"]
    assert (
        "HOOKPOST_REVEAL_SECRETS"
        in schemas["EndpointCreatedOut"]["properties"]["secret"]["description"]
    )
    paths = doc["paths"]["/api/v1/app/{app_id}/endpoint"]["post"]["responses"]["201"]
    assert paths["content"]["application/json"]["schema"]["$ref"].endswith("EndpointCreatedOut")
    secret = doc["paths"]["/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret"]["get"]
    assert "403" in secret["description"]
