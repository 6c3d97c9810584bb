"""Every signature scheme on real deliveries: API -> store -> worker -> a receiver on loopback,
each request checked by an independent verifier (and by ``hookpost.verify``), before and
during a secret rotation, on both backends."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError
from svix.api import EndpointUpsertIn, SvixAsync

from hookpost.domain.errors import InvalidInput
from hookpost.domain.inputs import NewEndpoint
from hookpost.verify import BadSignature, verify
from hookpost.wiring import Hookpost
from tests.integration.test_api_errors import assert_invalid
from tests.integration.test_api_harness import ApiServer, close_svix
from tests.support.receiver import Received, Receiver, fail_then_ok

# --------------------------------------------------------------------------- verifiers
# Each raises on a request that the key did not sign. None of them is hookpost code.


def verify_standard(key: str, got: Received, _: str | None) -> None:
    Webhook(key).verify(got.body, got.headers)


def verify_ed25519(key: str, got: Received, _: str | None) -> None:
    """Ed25519 over the spec's signed content ``{id}.{timestamp}.{body}``: any v1a matches."""
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key.removeprefix("whpk_")))
    h = {k.lower(): v for k, v in got.headers.items()}
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + got.body
    for item in h["webhook-signature"].split(" "):
        version, _, sig = item.partition(",")
        if version == "v1a":
            try:
                public.verify(base64.b64decode(sig), signed)
                return
            except InvalidSignature:
                continue
    raise InvalidSignature("no v1a signature verifies")


def verify_hex(key: str, got: Received, header: str | None) -> None:
    h = {k.lower(): v for k, v in got.headers.items()}
    expected = "sha256=" + hmac.new(key.encode(), got.body, hashlib.sha256).hexdigest()
    values = h[(header or "X-Webhook-Signature").lower()].split(", ")
    if not any(hmac.compare_digest(expected, v) for v in values):
        raise ValueError("no sha256= signature matches")


def verify_stripe(key: str, got: Received, header: str | None) -> None:
    h = {k.lower(): v for k, v in got.headers.items()}
    value = h[(header or "Hookpost-Signature").lower()]
    stripe.WebhookSignature.verify_header(got.body.decode(), value, key, tolerance=300)


Verifier = Callable[[str, Received, str | None], None]
CASES: list[tuple[str, str | None, Verifier]] = [
    ("standard-webhooks", None, verify_standard),
    ("standard-webhooks-ed25519", None, verify_ed25519),
    ("hmac-sha256-hex", None, verify_hex),
    ("hmac-sha256-hex", "X-Webhook-Signature-256", verify_hex),  # AegisX's header
    ("stripe", None, verify_stripe),
    ("stripe", "Dealix-Signature", verify_stripe),  # Dealix's headers
]


def _event_headers(scheme: str, header: str | None) -> tuple[str, str, str] | None:
    """(message id, event type, attempt) header names, for the schemes that send them."""
    if scheme == "hmac-sha256-hex":
        return ("X-Webhook-Id", "X-Webhook-Event", "X-Webhook-Attempt")
    if scheme == "stripe":
        prefix = (header or "Hookpost-Signature").removesuffix("-Signature")
        return (f"{prefix}-Event-Id", f"{prefix}-Event-Type", f"{prefix}-Delivery-Attempt")
    return None


async def _send(http: httpx.AsyncClient, app_id: str, event_type: str, n: int) -> str:
    response = await http.post(
        f"/api/v1/app/{app_id}/msg", json={"eventType": event_type, "payload": {"n": n}}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize(
    ("scheme", "header", "independent"), CASES, ids=[f"{s}-{h}" for s, h, _ in CASES]
)
async def test_every_scheme_verifies_independently_and_during_a_rotation(
    http: httpx.AsyncClient,
    app_id: str,
    receiver: Receiver,
    scheme: str,
    header: str | None,
    independent: Verifier,
) -> None:
    receiver.respond("/hook", fail_then_ok(1))  # two attempts of the first message
    body: dict[str, Any] = {"url": receiver.url("/hook"), "signatureScheme": scheme}
    if header:
        body["signatureHeader"] = header
    created = await http.post(f"/api/v1/app/{app_id}/endpoint", json=body)
    assert created.status_code == 201, created.text
    ep = created.json()
    assert (ep["signatureScheme"], ep["signatureHeader"]) == (scheme, header)
    secret_path = f"/api/v1/app/{app_id}/endpoint/{ep['id']}/secret"
    old_key = (await http.get(secret_path)).json()["key"]
    assert old_key.startswith("whpk_" if scheme == "standard-webhooks-ed25519" else "whsec_")

    msg_id = await _send(http, app_id, "invoice.paid", 1)
    await receiver.wait_for(2, "/hook")
    for attempt, got in enumerate(receiver.on("/hook"), start=1):
        independent(old_key, got, header)
        assert verify(scheme, old_key, got.body, got.headers, signature_header=header) == {"n": 1}
        names = _event_headers(scheme, header)
        if names is not None:
            h = {k.lower(): v for k, v in got.headers.items()}
            assert [h[n.lower()] for n in names] == [msg_id, "invoice.paid", str(attempt)]
        if header is not None:
            assert header in got.headers  # the name as given

    rotated = await http.post(f"{secret_path}/rotate", json={})
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["key"]
    assert new_key != old_key and (await http.get(secret_path)).json()["key"] == new_key

    await _send(http, app_id, "invoice.paid", 2)
    await receiver.wait_for(3, "/hook")
    got = receiver.on("/hook")[2]
    for key in (old_key, new_key):  # both keys sign during the grace period
        independent(key, got, header)
        assert verify(scheme, key, got.body, got.headers, signature_header=header) == {"n": 2}
    stranger = (
        "whpk_" + base64.b64encode(b"\x01" * 32).decode()
        if scheme == "standard-webhooks-ed25519"
        else "whsec_" + base64.b64encode(b"\x02" * 24).decode()
    )
    with pytest.raises(
        (InvalidSignature, ValueError, WebhookVerificationError, stripe.SignatureVerificationError)
    ):
        independent(stranger, got, header)
    with pytest.raises(BadSignature):
        verify(scheme, stranger, got.body, got.headers, signature_header=header)


async def test_a_migrated_secret_string_signs_as_it_is_written(
    http: httpx.AsyncClient, app_id: str, receiver: Receiver
) -> None:
    """A team moving from GreenLang or Dealix keeps its receivers' secrets."""
    for scheme, secret, check in (
        ("hmac-sha256-hex", "It's a Secret to Everybody", verify_hex),
        ("stripe", "whsec_dealix-made-this-one", verify_stripe),
    ):
        path = f"/{scheme}"
        created = await http.post(
            f"/api/v1/app/{app_id}/endpoint",
            json={"url": receiver.url(path), "signatureScheme": scheme, "secret": secret},
        )
        assert created.status_code == 201, created.text
        await _send(http, app_id, "a.b", 3)
        await receiver.wait_for(1, path)
        check(secret, receiver.on(path)[0], None)


async def test_the_ed25519_signing_key_never_leaves_the_server(
    api: ApiServer, http: httpx.AsyncClient, app_id: str, receiver: Receiver
) -> None:
    base = f"/api/v1/app/{app_id}/endpoint"
    created = await http.post(
        base, json={"url": receiver.url("/e"), "signatureScheme": "standard-webhooks-ed25519"}
    )
    ep_id = created.json()["id"]
    answers = [
        created.text,
        (await http.get(f"{base}/{ep_id}")).text,
        (await http.get(base)).text,
        (await http.get(f"{base}/{ep_id}/secret")).text,
        (await http.post(f"{base}/{ep_id}/secret/rotate", json={})).text,
    ]
    assert all("whsk_" not in text for text in answers)
    # It is stored sealed, as every key is.
    stored = await api.hp.services.endpoints.get(app_id, ep_id)
    assert stored.keys[0].secret.startswith("whsk_")


async def test_bad_scheme_options_are_422s_naming_the_field(
    http: httpx.AsyncClient, app_id: str
) -> None:
    base = f"/api/v1/app/{app_id}/endpoint"
    url = "http://127.0.0.1:9/"
    whsec = "whsec_" + base64.b64encode(b"k" * 24).decode()
    whsk = "whsk_" + base64.b64encode(b"k" * 64).decode()  # its public half does not match
    for body, field in (
        ({"signatureScheme": "md5"}, "signatureScheme"),
        ({"signatureScheme": None}, "signatureScheme"),
        ({"signatureScheme": "standard-webhooks-ed25519", "secret": whsec}, "secret"),
        ({"signatureScheme": "standard-webhooks-ed25519", "secret": whsk}, "secret"),
        ({"signatureScheme": "hmac-sha256-hex", "secret": whsk}, "secret"),
        ({"signatureScheme": "stripe", "secret": "short"}, "secret"),
        ({"secret": whsk}, "secret"),
        ({"signatureHeader": "X-Sig"}, "signatureHeader"),  # standard-webhooks: not renamable
        ({"signatureScheme": "stripe", "signatureHeader": "bad header"}, "signatureHeader"),
        ({"signatureScheme": "stripe", "signatureHeader": "webhook-signature"}, "signatureHeader"),
        (
            {"signatureScheme": "hmac-sha256-hex", "signatureHeader": "X-Webhook-Id"},
            "signatureHeader",
        ),
    ):
        assert_invalid(await http.post(base, json={"url": url, **body}), "body", field)

    ep = (
        await http.post(base, json={"url": url, "signatureScheme": "standard-webhooks-ed25519"})
    ).json()
    rotate = f"{base}/{ep['id']}/secret/rotate"
    assert_invalid(await http.post(rotate, json={"key": whsec}), "body", "key")
    assert_invalid(
        await http.patch(f"{base}/{ep['id']}", json={"signatureHeader": "X-Sig"}),
        "body",
        "signatureHeader",
    )


async def test_changing_scheme_keeps_keys_that_fit_and_replaces_others(
    api: ApiServer, http: httpx.AsyncClient, app_id: str
) -> None:
    base = f"/api/v1/app/{app_id}/endpoint"
    ep = (await http.post(base, json={"url": "http://127.0.0.1:9/"})).json()
    path, secret = f"{base}/{ep['id']}", f"{base}/{ep['id']}/secret"
    whsec = (await http.get(secret)).json()["key"]

    # A whsec_ secret is a secret string too: hex and stripe keep it.
    patched = await http.patch(
        path, json={"signatureScheme": "stripe", "signatureHeader": "Acme-Signature"}
    )
    assert patched.json()["signatureScheme"] == "stripe"
    assert (await http.get(secret)).json()["key"] == whsec
    # The svix SDK's update (a PUT without hookpost's fields) leaves the scheme alone.
    svix: SvixAsync = api.svix()
    try:
        await svix.endpoint.upsert(app_id, ep["id"], EndpointUpsertIn(url="http://127.0.0.1:8/"))
        got = await svix.endpoint.get(app_id, ep["id"])
        assert got.url == "http://127.0.0.1:8/"
    finally:
        await close_svix(svix)
    now = (await http.get(path)).json()
    assert (now["signatureScheme"], now["signatureHeader"]) == ("stripe", "Acme-Signature")

    # Back to a standard scheme: the renamed header must go too.
    assert_invalid(
        await http.patch(path, json={"signatureScheme": "standard-webhooks"}),
        "body",
        "signatureHeader",
    )
    # An HMAC secret cannot sign Ed25519: a new key pair replaces it.
    ed = await http.patch(
        path, json={"signatureScheme": "standard-webhooks-ed25519", "signatureHeader": None}
    )
    assert ed.status_code == 200, ed.text
    public = (await http.get(secret)).json()["key"]
    assert public.startswith("whpk_")
    stored = await api.hp.services.endpoints.get(app_id, ep["id"])
    assert [k.secret[:5] for k in stored.keys] == ["whsk_"]


async def test_the_openapi_document_describes_the_new_fields(http: httpx.AsyncClient) -> None:
    schemas = (await http.get("/api/v1/openapi.json")).json()["components"]["schemas"]
    for model in ("EndpointIn", "EndpointUpdate", "EndpointPatch", "EndpointOut"):
        props = schemas[model]["properties"]
        for field in ("signatureScheme", "signatureHeader"):
            assert "hookpost extension" in props[field]["description"], (model, field)
    enum = schemas["EndpointIn"]["properties"]["signatureScheme"]["enum"]
    assert enum == ["standard-webhooks", "standard-webhooks-ed25519", "hmac-sha256-hex", "stripe"]
    assert "whpk_" in schemas["EndpointSecretOut"]["properties"]["key"]["description"]
    assert (
        "signatureScheme" in schemas["EndpointSecretRotateIn"]["properties"]["key"]["description"]
    )


async def test_the_library_path_checks_the_same_rules(fresh_sqlite_url: str) -> None:
    """Services called directly (hookpost as a library) refuse what the API refuses."""
    async with Hookpost.open(fresh_sqlite_url, allow_subnets="127.0.0.0/8") as hp:
        app = await hp.apps.create("Acme")
        url = "http://127.0.0.1:9/"
        for new, field in (
            (NewEndpoint(url=url, signature_scheme="md5"), "signatureScheme"),
            (NewEndpoint(url=url, signature_scheme="stripe", secret="short"), "secret"),
            (NewEndpoint(url=url, signature_header="X-Sig"), "signatureHeader"),
        ):
            with pytest.raises(InvalidInput) as err:
                await hp.endpoints.create(app.id, new)
            assert err.value.field == field
        ep = await hp.endpoints.create(
            app.id, NewEndpoint(url=url, signature_scheme="standard-webhooks-ed25519")
        )
        assert ep.secret.startswith("whsk_")
        assert (await hp.endpoints.get_secret(app.id, ep.id)).startswith("whpk_")
        with pytest.raises(InvalidInput) as err:
            await hp.endpoints.rotate_secret(app.id, ep.id, key="It's a Secret to Everybody")
        assert err.value.field == "key"
