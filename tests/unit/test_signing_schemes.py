"""The signature schemes: fixed vectors (tests/data/signing-vectors-schemes.json) checked by
independent verifiers, the kinds of key each scheme takes, and ``hookpost.verify``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import textwrap
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import stripe
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook

from hookpost.api.fields import SignatureSchemeName
from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import SigningKey
from hookpost.domain.signing import (
    ED25519,
    HEX,
    SCHEME_NAMES,
    STANDARD,
    STRIPE,
    StandardWebhooksV1,
    StandardWebhooksV1a,
    canonical_scheme,
    check_signature_header,
    generate_secret,
    generate_signing_key,
    key_fits,
    key_kind,
    keys_for_scheme,
    public_key,
    scheme_for,
    shown_key,
)
from hookpost.verify import (
    BadSignature,
    MissingHeader,
    RedisSeenIds,
    SeenIds,
    StaleTimestamp,
    VerificationError,
    verify,
)

DATA = Path(__file__).parents[1] / "data"
PUBLISHED = json.loads((DATA / "signing-vectors.json").read_text())
OURS = json.loads((DATA / "signing-vectors-schemes.json").read_text())
MSG = OURS["message"]
BODY = MSG["payload"].encode()
VECTORS = OURS["vectors"]


def _sign(vector: dict[str, Any]) -> dict[str, str]:
    scheme = scheme_for(vector["scheme"], vector["signature_header"])
    return scheme.sign_headers(
        MSG["msg_id"], MSG["timestamp"], BODY, vector["keys"], MSG["event_type"], MSG["attempt"]
    )


# --------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("name", list(VECTORS))
def test_vector_headers(name: str) -> None:
    assert _sign(VECTORS[name]) == VECTORS[name]["expected_headers"]


def _independent(vector: dict[str, Any], key_index: int) -> None:
    """Raises unless the vector's headers carry a valid signature by its key ``key_index``,
    checked without hookpost's code."""
    h = {k.lower(): v for k, v in vector["expected_headers"].items()}
    key = vector["keys"][key_index]
    scheme = vector["scheme"]
    if scheme == STANDARD:
        stamp = datetime.fromtimestamp(MSG["timestamp"], tz=UTC)
        expected = Webhook(key).sign(MSG["msg_id"], stamp, MSG["payload"])
        assert expected in h["webhook-signature"].split(" ")
    elif scheme == ED25519:
        public = vector["public_keys"][key_index]
        verifier = Ed25519PublicKey.from_public_bytes(base64.b64decode(public[5:]))
        signed = f"{MSG['msg_id']}.{MSG['timestamp']}.".encode() + BODY
        sigs = [s.removeprefix("v1a,") for s in h["webhook-signature"].split(" ")]
        verifier.verify(base64.b64decode(sigs[key_index]), signed)  # raises InvalidSignature
    elif scheme == HEX:
        header = (vector["signature_header"] or "X-Webhook-Signature").lower()
        mac = hmac.new(key.encode(), BODY, hashlib.sha256).hexdigest()
        assert "sha256=" + mac in h[header].split(", ")
    else:
        header = (vector["signature_header"] or "Hookpost-Signature").lower()
        # tolerance None: the fixed timestamp is old; stripe checks the signature only.
        stripe.WebhookSignature.verify_header(MSG["payload"], h[header], key, None)


@pytest.mark.parametrize("name", list(VECTORS))
def test_vectors_verify_independently_with_every_key(name: str) -> None:
    vector = VECTORS[name]
    for i in range(len(vector["keys"])):
        _independent(vector, i)


@pytest.mark.parametrize("name", list(VECTORS))
def test_vectors_verify_with_hookpost_verify(name: str) -> None:
    vector = VECTORS[name]
    headers, header = vector["expected_headers"], vector["signature_header"]
    keys = vector.get("public_keys", vector["keys"])
    at = MSG["timestamp"]
    for key in keys:
        got = verify(vector["scheme"], key, BODY, headers, signature_header=header, now=at)
        assert got == json.loads(BODY)
    scheme, key = vector["scheme"], keys[0]
    with pytest.raises(BadSignature):
        verify(scheme, key, BODY + b" ", headers, signature_header=header, now=at)
    with pytest.raises(StaleTimestamp):
        verify(scheme, key, BODY, headers, signature_header=header, now=at + 301)
    with pytest.raises(StaleTimestamp):
        verify(scheme, key, BODY, headers, 10, signature_header=header, now=at - 11)
    for name_ in headers:
        needed = scheme in (STANDARD, ED25519) or any(
            part in name_.lower() for part in ("signature", "timestamp")
        )
        if not needed:  # the event headers: information, not needed to verify
            continue
        partial = {k: v for k, v in headers.items() if k != name_}
        with pytest.raises(MissingHeader) as err:
            verify(scheme, key, BODY, partial, signature_header=header, now=at)
        assert isinstance(err.value, VerificationError) and name_.lower() in str(err.value).lower()


def test_published_v1a_vector() -> None:
    v = PUBLISHED["standard_webhooks_v1a_ed25519"]
    assert public_key(v["secret_key"]) == v["public_key"]
    signature = StandardWebhooksV1a().signature(
        v["secret_key"], v["msg_id"], v["timestamp"], v["payload"].encode()
    )
    assert signature == v["expected_signature"]
    headers = {
        "webhook-id": v["msg_id"],
        "webhook-timestamp": str(v["timestamp"]),
        "webhook-signature": signature,
    }
    payload = verify(ED25519, v["public_key"], v["payload"], headers, now=v["timestamp"])
    assert payload == json.loads(v["payload"])


def test_published_hex_and_stripe_vectors() -> None:
    g = PUBLISHED["github_hmac_sha256_hex"]
    got = scheme_for(HEX).sign_headers("m", 1, g["payload"].encode(), [g["secret"]])
    assert got["X-Webhook-Signature"] == g["expected_signature"]
    s = PUBLISHED["stripe_style_t_v1"]
    got = scheme_for(STRIPE).sign_headers("m", s["timestamp"], s["payload"].encode(), [s["secret"]])
    assert got["Hookpost-Signature"] == s["expected_header"]


def test_verify_accepts_svix_header_names_and_str_bodies() -> None:
    secret = generate_secret()
    headers = scheme_for(STANDARD, None, "svix").sign_headers("msg_1", 100, b'{"a":1}', [secret])
    assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}
    assert verify(STANDARD, secret, '{"a":1}', headers, now=100) == {"a": 1}
    # Names stored before 0008 are the default scheme's.
    assert verify("standard-v1", secret, '{"a":1}', headers, now=100) == {"a": 1}
    with pytest.raises(ValueError, match="unknown signature scheme"):
        verify("md5", secret, b"{}", headers)
    with pytest.raises(ValueError, match="whpk_"):
        verify(ED25519, generate_signing_key(), b"{}", headers, now=100)


# --------------------------------------------------------------------------- keys


def test_each_scheme_takes_its_kind_of_key() -> None:
    whsec, whsk = generate_secret(), generate_signing_key()
    whpk = public_key(whsk)
    assert whsk.startswith("whsk_") and whpk.startswith("whpk_")
    assert len(base64.b64decode(whsk[5:])) == 64 and len(base64.b64decode(whpk[5:])) == 32
    accepted = {
        STANDARD: [whsec, whsec.removeprefix("whsec_")],
        ED25519: [whsk],
        HEX: [whsec, "It's a Secret to Everybody", "ünïcode-secret"],
        STRIPE: [whsec, "whsec_dealix-made-this-one"],
    }
    refused = {
        STANDARD: [whsk, whpk, "not base64!", "whsec_c2hvcnQ="],
        ED25519: [whsec, whpk, "whsk_" + base64.b64encode(b"k" * 64).decode(), "whsk_short"],
        HEX: [whsk, whpk, "short", "x" * 257, "tab\there"],
        STRIPE: [whsk, whpk, "short"],
    }
    for scheme, keys in accepted.items():
        for key in keys:
            assert key_kind(scheme).normalize(key, "secret").removeprefix("whsec_") == (
                key.removeprefix("whsec_")
            )
            assert key_fits(scheme, key)
    for scheme, keys in refused.items():
        for key in keys:
            with pytest.raises(InvalidInput) as err:
                key_kind(scheme).normalize(key, "key")
            assert err.value.field == "key"
            assert not key_fits(scheme, key)
    for scheme in SCHEME_NAMES:
        assert key_fits(scheme, key_kind(scheme).generate())
    assert shown_key(ED25519, whsk) == whpk and shown_key(HEX, whsec) == whsec


def test_keys_on_a_change_of_scheme() -> None:
    current, old = SigningKey(generate_secret()), SigningKey("a string secret", 10)
    assert keys_for_scheme(HEX, [current, old]) == [current, old]
    assert keys_for_scheme(STANDARD, [current, old]) == [current]  # the string cannot sign v1
    replaced = keys_for_scheme(ED25519, [current, old])
    assert len(replaced) == 1 and replaced[0].secret.startswith("whsk_")
    fresh = keys_for_scheme(STANDARD, [SigningKey("a string secret")])
    assert len(fresh) == 1 and fresh[0].secret.startswith("whsec_")


def test_signature_header_rules() -> None:
    check_signature_header(HEX, "X-Hub-Signature-256")
    check_signature_header(STRIPE, "Dealix-Signature")
    check_signature_header(STANDARD, None)
    for scheme, header in (
        (STANDARD, "X-Sig"),
        (ED25519, "X-Sig"),
        (HEX, "X-Webhook-Timestamp"),
        (HEX, "x-webhook-id"),
        (STRIPE, "Hookpost-Event-Type"),
    ):
        with pytest.raises(InvalidInput) as err:
            check_signature_header(scheme, header)
        assert err.value.field == "signatureHeader"
    headers = scheme_for(STRIPE, "Dealix-Signature").sign_headers("m", 1, b"{}", ["k" * 8], "a", 2)
    assert set(headers) == {
        "Dealix-Signature",
        "Dealix-Event-Id",
        "Dealix-Event-Type",
        "Dealix-Delivery-Attempt",
    }


def test_scheme_names() -> None:
    assert typing.get_args(SignatureSchemeName) == SCHEME_NAMES
    assert canonical_scheme("standard-v1") == canonical_scheme(None) == STANDARD
    assert scheme_for("standard-v1") == StandardWebhooksV1()


# --------------------------------------------------------------------------- dedupe


def test_seen_ids_is_a_bounded_lru() -> None:
    seen = SeenIds(max_ids=2)
    assert seen.add("a") and seen.add("b")
    assert not seen.add("a")  # a redelivery; "a" is now the most recent
    assert seen.add("c")  # evicts "b", the least recently seen
    assert "a" in seen and "c" in seen and "b" not in seen and len(seen) == 2
    seen.discard("a")  # processing failed: let the redelivery through
    assert seen.add("a")


def test_redis_seen_ids_shared_between_instances() -> None:
    url = os.environ.get("HOOKPOST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"hookpost-test:{secrets.token_hex(6)}:"
    client = redis.Redis.from_url(url)
    try:
        one = RedisSeenIds(client, prefix=prefix, ttl_s=60)
        other = RedisSeenIds.from_url(url, prefix=prefix, ttl_s=60)
        assert one.add("msg_1")
        assert not other.add("msg_1") and "msg_1" in other
        assert 0 < client.ttl(prefix + "msg_1") <= 60
        other.discard("msg_1")
        assert "msg_1" not in one and one.add("msg_1")
    finally:
        keys = list(client.scan_iter(prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


# --------------------------------------------------------------------------- lightness

_BLOCKED = (
    "fastapi aiohttp asyncpg pydantic sqlalchemy starlette uvicorn alembic orjson "
    "prometheus_client redis"
)


def _run_blocked(code: str, also_blocked: str = "") -> subprocess.CompletedProcess[str]:
    blocker = textwrap.dedent(
        f"""
        import sys
        BLOCKED = set({(_BLOCKED + " " + also_blocked).split()!r})
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked for this test: " + name)
                return None
        sys.meta_path.insert(0, Refuse())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_imports_none_of_the_server_dependencies() -> None:
    """A receiver without fastapi, aiohttp, pydantic... (and without cryptography, unless it
    verifies Ed25519) can import and use hookpost.verify."""
    secret = generate_secret()
    headers = scheme_for(STANDARD).sign_headers("msg_1", 100, b'{"a":1}', [secret])
    hex_headers = scheme_for(HEX).sign_headers("msg_1", 100, b'{"a":1}', [secret], "a.b", 1)
    code = f"""
        from hookpost.verify import verify, SeenIds
        assert verify("standard-webhooks", {secret!r}, b'{{"a":1}}', {headers!r}, now=100)
        assert verify("hmac-sha256-hex", {secret!r}, b'{{"a":1}}', {hex_headers!r}, now=100)
        assert SeenIds().add("msg_1")
        print(sorted(m for m in sys.modules if m.split(".")[0] == "cryptography"))
        """
    result = _run_blocked(code, "cryptography")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

    whsk = generate_signing_key()
    ed_headers = scheme_for(ED25519).sign_headers("msg_1", 100, b"{}", [whsk])
    code = f"""
        from hookpost.verify import verify
        assert verify("standard-webhooks-ed25519", {public_key(whsk)!r}, b"{{}}", {ed_headers!r},
                      now=100) == {{}}
        """
    result = _run_blocked(code)
    assert result.returncode == 0, result.stderr
    # The blocker works: the server's modules cannot be imported under it.
    assert _run_blocked("import hookpost.api.app").returncode != 0
