"""Webhook signatures as per-endpoint strategies.

A scheme turns (message id, timestamp, body, keys) into request headers. The body bytes
signed are exactly the bytes sent. Standard Webhooks v1 is the default; other schemes
(Ed25519, hex HMAC, Stripe-style) register themselves in ``SCHEMES`` by name.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hookpost.domain.errors import InvalidInput

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def generate_secret(nbytes: int = MIN_SECRET_BYTES) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def normalize_secret(value: str, field: str = "secret") -> str:
    """Accept ``whsec_<base64>`` or bare base64 of 24-64 bytes; return the prefixed form."""
    raw = value.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(field, "must be base64, optionally prefixed with whsec_") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidInput(
            field, f"must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes, got {len(key)}"
        )
    return SECRET_PREFIX + raw


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


@functools.lru_cache(maxsize=4096)
def _keyed_hmac(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 already keyed with ``secret``, to ``copy()`` per signature (see
    docs/decisions/0003-worker-hot-path-caches.md). Bounded, so rotated-out and deleted keys
    fall out."""
    return hmac.new(secret_bytes(secret), digestmod=hashlib.sha256)


class SignatureScheme(Protocol):
    @property
    def name(self) -> str: ...

    def sign_headers(
        self, msg_id: str, timestamp: int, body: bytes, secrets_: Sequence[str]
    ) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class StandardWebhooksV1:
    """HMAC-SHA256 over ``{id}.{timestamp}.{body}``; one ``v1,<b64>`` per active key."""

    header_prefix: str = "webhook"  # or "svix"
    name: str = "standard-v1"

    def signature(self, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
        return _sign(secret, b"%s.%d.%s" % (msg_id.encode(), timestamp, body))

    def sign_headers(
        self, msg_id: str, timestamp: int, body: bytes, secrets_: Sequence[str]
    ) -> dict[str, str]:
        p = self.header_prefix
        signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)  # built once for every key
        return {
            f"{p}-id": msg_id,
            f"{p}-timestamp": str(timestamp),
            f"{p}-signature": " ".join([_sign(s, signed) for s in secrets_]),
        }


def _sign(secret: str, signed: bytes) -> str:
    mac = _keyed_hmac(secret).copy()
    mac.update(signed)
    return "v1," + binascii.b2a_base64(mac.digest(), newline=False).decode()


DEFAULT_SCHEME = "standard-v1"
SCHEMES: dict[str, SignatureScheme] = {
    "standard-v1": StandardWebhooksV1(),
    "svix-v1": StandardWebhooksV1(header_prefix="svix", name="svix-v1"),
}


def scheme_for(name: str | None) -> SignatureScheme:
    return SCHEMES[name or DEFAULT_SCHEME]
