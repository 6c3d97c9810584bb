"""Webhook signatures as per-endpoint strategies, and the kinds of key each one signs with.

A scheme turns (message id, timestamp, body, keys, event type, attempt) into request headers.
The body bytes signed are exactly the bytes sent. Standard Webhooks v1 is the default; the
others are chosen per endpoint (``signatureScheme``). Why these key formats and headers:
docs/decisions/0025-signature-schemes.md.

This module is imported by ``hookpost.verify`` on receivers: standard library only, and
``cryptography`` (for Ed25519) imported lazily.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import SigningKey

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SECRET_PREFIX = "whsec_"
SIGNING_KEY_PREFIX = "whsk_"  # an Ed25519 secret key: base64 of seed (32 bytes) + public key
PUBLIC_KEY_PREFIX = "whpk_"  # an Ed25519 public key: base64 of its 32 bytes
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
MIN_STRING_SECRET = 8  # characters of a hex/stripe secret string (one migrated as it is)
MAX_STRING_SECRET = 256

# The schemes, by their API name (``signatureScheme``).
STANDARD = "standard-webhooks"
ED25519 = "standard-webhooks-ed25519"
HEX = "hmac-sha256-hex"
STRIPE = "stripe"
SCHEME_NAMES = (STANDARD, ED25519, HEX, STRIPE)
DEFAULT_SCHEME = STANDARD
# Names stored before the schemes had API names (the column's server default still says it).
LEGACY_NAMES = {"standard-v1": STANDARD}
RENAMABLE = frozenset({HEX, STRIPE})  # schemes whose signature header may be renamed

HEX_SIGNATURE_HEADER = "X-Webhook-Signature"
STRIPE_SIGNATURE_HEADER = "Hookpost-Signature"
_SIGNATURE_SUFFIX = "-signature"


def canonical_scheme(name: str | None) -> str:
    """The API name of a stored scheme name (None: the default)."""
    if not name:
        return DEFAULT_SCHEME
    return LEGACY_NAMES.get(name, name)


def check_scheme(name: str, field: str = "signatureScheme") -> str:
    if name not in SCHEME_NAMES:
        raise InvalidInput(field, f"must be one of {', '.join(SCHEME_NAMES)}")
    return name


# --------------------------------------------------------------------------- keys


def generate_secret(nbytes: int = MIN_SECRET_BYTES) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def _wrong_kind(value: str) -> str | None:
    if value.startswith(SIGNING_KEY_PREFIX):
        return f"a {SIGNING_KEY_PREFIX} key is for signatureScheme {ED25519}"
    if value.startswith(PUBLIC_KEY_PREFIX):
        return "a public key cannot sign"
    return None


def normalize_secret(value: str, field: str = "secret") -> str:
    """Accept ``whsec_<base64>`` or bare base64 of 24-64 bytes; return the prefixed form."""
    if wrong := _wrong_kind(value):
        raise InvalidInput(field, f"{wrong}; {STANDARD} needs a whsec_ secret")
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


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def normalize_string_secret(value: str, field: str = "secret") -> str:
    """A hex/stripe secret is used as it is written (its UTF-8 bytes key the HMAC), so that a
    receiver migrated with its old secret keeps verifying."""
    if wrong := _wrong_kind(value):
        raise InvalidInput(field, f"{wrong}; {HEX} and {STRIPE} need a secret string")
    if not MIN_STRING_SECRET <= len(value) <= MAX_STRING_SECRET:
        raise InvalidInput(
            field, f"must be {MIN_STRING_SECRET}-{MAX_STRING_SECRET} characters long"
        )
    if _CONTROL_RE.search(value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def _ed25519_parts(value: str) -> tuple[bytes, bytes] | None:
    """(seed, public key) of a well-formed ``whsk_`` key, else None."""
    try:
        raw = base64.b64decode(value.removeprefix(SIGNING_KEY_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not value.startswith(SIGNING_KEY_PREFIX) or len(raw) != 64:
        return None
    return raw[:32], raw[32:]


def generate_signing_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = secrets.token_bytes(32)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return SIGNING_KEY_PREFIX + base64.b64encode(seed + public).decode()


def normalize_signing_key(value: str, field: str = "secret") -> str:
    """An Ed25519 ``whsk_`` key whose public half belongs to its seed."""
    if value.startswith(PUBLIC_KEY_PREFIX):
        raise InvalidInput(field, f"a public key cannot sign; {ED25519} needs a whsk_ key")
    parts = _ed25519_parts(value)
    if parts is None:
        raise InvalidInput(
            field, f"{ED25519} needs a whsk_ key: base64 of a 32-byte seed and its public key"
        )
    if _ed25519_key(value).public_key().public_bytes_raw() != parts[1]:
        raise InvalidInput(field, "the public half of the whsk_ key does not belong to its seed")
    return value


def public_key(signing_key: str) -> str:
    """The ``whpk_`` key that verifies what ``signing_key`` signs."""
    raw = base64.b64decode(signing_key.removeprefix(SIGNING_KEY_PREFIX))
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw[32:]).decode()


@dataclass(frozen=True, slots=True)
class KeyKind:
    generate: Callable[[], str]
    normalize: Callable[[str, str], str]
    shown: Callable[[str], str]  # what GET .../secret answers for a key of this kind


_HMAC_KEYS = KeyKind(generate_secret, normalize_secret, lambda key: key)
_STRING_KEYS = KeyKind(generate_secret, normalize_string_secret, lambda key: key)
_ED25519_KEYS = KeyKind(generate_signing_key, normalize_signing_key, public_key)
KEY_KINDS = {STANDARD: _HMAC_KEYS, ED25519: _ED25519_KEYS, HEX: _STRING_KEYS, STRIPE: _STRING_KEYS}


def key_kind(scheme: str) -> KeyKind:
    return KEY_KINDS[canonical_scheme(scheme)]


def key_fits(scheme: str, key: str) -> bool:
    """Whether ``key`` can sign for ``scheme`` (kept when an endpoint changes scheme)."""
    try:
        key_kind(scheme).normalize(key, "key")
    except InvalidInput:
        return False
    return True


def shown_key(scheme: str, key: str) -> str:
    """What the API shows of an endpoint's key: an Ed25519 signing key never leaves the server,
    its public key is shown instead."""
    return key_kind(scheme).shown(key)


def keys_for_scheme(scheme: str, keys: list[SigningKey]) -> list[SigningKey]:
    """An endpoint's keys once it signs with ``scheme``: those that can sign for it, or a new
    key when the current one cannot (an HMAC secret cannot sign Ed25519, nor the reverse)."""
    if keys and key_fits(scheme, keys[0].secret):
        return [k for k in keys if key_fits(scheme, k.secret)]
    return [SigningKey(key_kind(scheme).generate())]


def check_signature_header(scheme: str, header: str | None) -> None:
    """``signatureHeader`` renames the hex and stripe schemes' signature header only."""
    if header is None:
        return
    if canonical_scheme(scheme) not in RENAMABLE:
        raise InvalidInput(
            "signatureHeader", f"only the {HEX} and {STRIPE} schemes' header can be renamed"
        )
    names = {n.lower() for n in scheme_for(scheme, header).sign_headers("", 0, b"", [])}
    if len(names) < len(scheme_for(scheme).sign_headers("", 0, b"", [])):
        raise InvalidInput("signatureHeader", f"{header!r} is another header of this scheme")


# --------------------------------------------------------------------------- signing


@functools.lru_cache(maxsize=4096)
def _keyed_hmac(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 already keyed with ``secret``, to ``copy()`` per signature (see
    docs/decisions/0003-worker-hot-path-caches.md). Bounded, so rotated-out and deleted keys
    fall out."""
    return hmac.new(secret_bytes(secret), digestmod=hashlib.sha256)


@functools.lru_cache(maxsize=4096)
def _keyed_string_hmac(secret: str) -> hmac.HMAC:
    """As ``_keyed_hmac``, keyed with the secret string's UTF-8 bytes (hex and stripe)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


@functools.lru_cache(maxsize=4096)
def _ed25519_key(signing_key: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = base64.b64decode(signing_key.removeprefix(SIGNING_KEY_PREFIX))[:32]
    return Ed25519PrivateKey.from_private_bytes(seed)


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """What Standard Webhooks signs (v1 and v1a): ``{id}.{timestamp}.{body}``."""
    return b"%s.%d.%s" % (msg_id.encode(), timestamp, body)


def stripe_signed_content(timestamp: int, body: bytes) -> bytes:
    """What the stripe scheme signs: ``{t}.{body}``."""
    return b"%d.%s" % (timestamp, body)


def hex_hmac(secret: str, content: bytes) -> str:
    mac = _keyed_string_hmac(secret).copy()
    mac.update(content)
    return mac.hexdigest()


class SignatureScheme(Protocol):
    @property
    def name(self) -> str: ...

    def sign_headers(
        self,
        msg_id: str,
        timestamp: int,
        body: bytes,
        secrets_: Sequence[str],
        event_type: str = "",
        attempt: int = 1,
    ) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class StandardWebhooksV1:
    """HMAC-SHA256 over ``{id}.{timestamp}.{body}``; one ``v1,<b64>`` per active key."""

    header_prefix: str = "webhook"  # or "svix"
    name: str = STANDARD

    def signature(self, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
        return _sign(secret, signed_content(msg_id, timestamp, body))

    def sign_headers(
        self,
        msg_id: str,
        timestamp: int,
        body: bytes,
        secrets_: Sequence[str],
        event_type: str = "",
        attempt: int = 1,
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


@dataclass(frozen=True, slots=True)
class StandardWebhooksV1a:
    """Ed25519 over ``{id}.{timestamp}.{body}``; one ``v1a,<b64>`` per active ``whsk_`` key."""

    header_prefix: str = "webhook"
    name: str = ED25519

    def signature(self, signing_key: str, msg_id: str, timestamp: int, body: bytes) -> str:
        return _sign_ed25519(signing_key, signed_content(msg_id, timestamp, body))

    def sign_headers(
        self,
        msg_id: str,
        timestamp: int,
        body: bytes,
        secrets_: Sequence[str],
        event_type: str = "",
        attempt: int = 1,
    ) -> dict[str, str]:
        p = self.header_prefix
        signed = signed_content(msg_id, timestamp, body)
        return {
            f"{p}-id": msg_id,
            f"{p}-timestamp": str(timestamp),
            f"{p}-signature": " ".join([_sign_ed25519(s, signed) for s in secrets_]),
        }


def _sign_ed25519(signing_key: str, signed: bytes) -> str:
    signature = _ed25519_key(signing_key).sign(signed)
    return "v1a," + binascii.b2a_base64(signature, newline=False).decode()


@dataclass(frozen=True, slots=True)
class HexHmac:
    """``sha256=<hex HMAC of the raw body>`` (GitHub style), one per active key joined by
    ``", "``, and the event's id, type, time and attempt in ``X-Webhook-*`` headers."""

    signature_header: str = HEX_SIGNATURE_HEADER
    name: str = HEX

    def sign_headers(
        self,
        msg_id: str,
        timestamp: int,
        body: bytes,
        secrets_: Sequence[str],
        event_type: str = "",
        attempt: int = 1,
    ) -> dict[str, str]:
        return {
            "X-Webhook-Id": msg_id,
            "X-Webhook-Event": event_type,
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Attempt": str(attempt),
            self.signature_header: ", ".join(["sha256=" + hex_hmac(s, body) for s in secrets_]),
        }


def event_header_prefix(signature_header: str) -> str:
    """``Dealix-Signature`` -> ``Dealix``: the stripe scheme's other headers share the prefix
    of its signature header (``Hookpost`` when it has none)."""
    if signature_header.lower().endswith(_SIGNATURE_SUFFIX) and len(signature_header) > 10:
        return signature_header[: -len(_SIGNATURE_SUFFIX)]
    return "Hookpost"


@dataclass(frozen=True, slots=True)
class StripeStyle:
    """``t=<unix>,v1=<hex HMAC of "{t}.{body}">`` with one ``v1=`` per active key, plus
    ``<prefix>-Event-Id``, ``-Event-Type`` and ``-Delivery-Attempt``."""

    signature_header: str = STRIPE_SIGNATURE_HEADER
    name: str = STRIPE

    def sign_headers(
        self,
        msg_id: str,
        timestamp: int,
        body: bytes,
        secrets_: Sequence[str],
        event_type: str = "",
        attempt: int = 1,
    ) -> dict[str, str]:
        p = event_header_prefix(self.signature_header)
        signed = stripe_signed_content(timestamp, body)
        v1 = "".join([",v1=" + hex_hmac(s, signed) for s in secrets_])
        return {
            f"{p}-Event-Id": msg_id,
            f"{p}-Event-Type": event_type,
            f"{p}-Delivery-Attempt": str(attempt),
            self.signature_header: f"t={timestamp}{v1}",
        }


@functools.lru_cache(maxsize=1024)
def scheme_for(
    name: str | None, signature_header: str | None = None, header_prefix: str = "webhook"
) -> SignatureScheme:
    """The signer of a (stored) scheme name; ``header_prefix`` names the Standard Webhooks
    headers (``webhook`` or ``svix``), ``signature_header`` renames the hex/stripe one."""
    scheme = canonical_scheme(name)
    if scheme == STANDARD:
        return StandardWebhooksV1(header_prefix)
    if scheme == ED25519:
        return StandardWebhooksV1a(header_prefix)
    if scheme == HEX:
        return HexHmac(signature_header or HEX_SIGNATURE_HEADER)
    if scheme == STRIPE:
        return StripeStyle(signature_header or STRIPE_SIGNATURE_HEADER)
    raise KeyError(name)
