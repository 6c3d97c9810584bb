"""``domain.signing``: cached signing keys sign exactly as a fresh HMAC does."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hookpost.domain.signing import StandardWebhooksV1, generate_secret, secret_bytes


def reference_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class TestCachedSigningKeys:
    def test_every_key_signs_the_same_as_a_fresh_hmac(self) -> None:
        keys = [generate_secret(n) for n in (24, 32, 64)]
        body = b'{"id":1,"data":"' + b"x" * 1000 + b'"}'
        for _ in range(3):  # the second and third rounds come from the cache
            headers = StandardWebhooksV1().sign_headers("msg_1", 1_700_000_000, body, keys)
            assert headers["webhook-signature"].split(" ") == [
                reference_signature(k, "msg_1", 1_700_000_000, body) for k in keys
            ]

    def test_a_cached_key_is_not_changed_by_signing(self) -> None:
        key = generate_secret()
        scheme = StandardWebhooksV1()
        first = scheme.signature(key, "msg_1", 1, b"a")
        scheme.signature(key, "msg_2", 2, b"b" * 5000)
        assert scheme.signature(key, "msg_1", 1, b"a") == first
