"""Verify hookpost's webhooks in a Python receiver, and drop redeliveries.

    from hookpost.verify import verify, SeenIds, VerificationError

    payload = verify("standard-webhooks", secret, body, headers)  # raises VerificationError

Light on purpose: the standard library only (``cryptography`` for the Ed25519 scheme, imported
when used), so a receiver needs none of the server's dependencies (``pip install
hookpost[verify]``). The signed formats are the ones the server signs with, from
``hookpost.domain.signing``. Examples per framework: docs/receivers.md.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

from hookpost.domain.signing import (
    ED25519,
    HEX,
    HEX_SIGNATURE_HEADER,
    LEGACY_NAMES,
    PUBLIC_KEY_PREFIX,
    STANDARD,
    STRIPE,
    STRIPE_SIGNATURE_HEADER,
    StandardWebhooksV1,
    hex_hmac,
    signed_content,
    stripe_signed_content,
)

__all__ = [
    "BadSignature",
    "MissingHeader",
    "RedisSeenIds",
    "SeenIds",
    "StaleTimestamp",
    "VerificationError",
    "verify",
]

DEFAULT_TOLERANCE_S = 300


class VerificationError(Exception):
    """The request is not a genuine, fresh webhook: answer 400 (or 401), do not process it."""


class MissingHeader(VerificationError):
    def __init__(self, name: str) -> None:
        super().__init__(f"missing header {name}")
        self.header = name


class StaleTimestamp(VerificationError):
    def __init__(self, timestamp: int, now: int, tolerance: int) -> None:
        super().__init__(
            f"timestamp {timestamp} is more than {tolerance} s away from now ({now}): a replay?"
        )
        self.timestamp = timestamp


class BadSignature(VerificationError):
    def __init__(self, detail: str = "no signature matches the body and the key") -> None:
        super().__init__(detail)


def verify(
    scheme: str,
    secret_or_public_key: str,
    body: bytes | str,
    headers: Mapping[str, str],
    tolerance: int = DEFAULT_TOLERANCE_S,
    *,
    signature_header: str | None = None,
    now: int | None = None,
) -> Any:
    """The JSON payload of a request signed by ``scheme`` (an endpoint's ``signatureScheme``),
    or a ``VerificationError``: ``MissingHeader``, ``StaleTimestamp`` (more than
    ``tolerance`` seconds from ``now``) or ``BadSignature``.

    ``body`` is the raw request body, as received: not re-serialised JSON. The key is the
    endpoint's secret (``GET .../secret``): for ``standard-webhooks-ed25519``, its public key
    ``whpk_...``. ``signature_header`` is the endpoint's ``signatureHeader``, if it set one.
    During a rotation a request carries one signature per active key: any one may match.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lowered = {name.lower(): value for name, value in headers.items()}
    current = int(time.time()) if now is None else now
    scheme = LEGACY_NAMES.get(scheme, scheme)
    if scheme == STANDARD:
        _standard(secret_or_public_key, raw, lowered, tolerance, current)
    elif scheme == ED25519:
        _ed25519(secret_or_public_key, raw, lowered, tolerance, current)
    elif scheme == HEX:
        _hex(secret_or_public_key, raw, lowered, tolerance, current, signature_header)
    elif scheme == STRIPE:
        _stripe(secret_or_public_key, raw, lowered, tolerance, current, signature_header)
    else:
        raise ValueError(f"unknown signature scheme {scheme!r}")
    try:
        return json.loads(raw)
    except ValueError:
        raise BadSignature("the signed body is not JSON") from None


# --------------------------------------------------------------------------- schemes


def _header(headers: dict[str, str], *names: str) -> str:
    for name in names:
        value = headers.get(name.lower())
        if value is not None:
            return value
    raise MissingHeader(names[0])


def _fresh(value: str, now: int, tolerance: int) -> int:
    try:
        timestamp = int(value)
    except ValueError:
        raise BadSignature(f"the timestamp {value[:32]!r} is not a number") from None
    if abs(now - timestamp) > tolerance:
        raise StaleTimestamp(timestamp, now, tolerance)
    return timestamp


def _standard_headers(headers: dict[str, str]) -> tuple[str, str, str]:
    """webhook-* headers, or svix-* ones from a server configured for those names."""
    prefix = "svix" if "webhook-id" not in headers and "svix-id" in headers else "webhook"
    return (
        _header(headers, f"{prefix}-id"),
        _header(headers, f"{prefix}-timestamp"),
        _header(headers, f"{prefix}-signature"),
    )


def _standard(secret: str, body: bytes, headers: dict[str, str], tol: int, now: int) -> None:
    msg_id, stamp, signatures = _standard_headers(headers)
    timestamp = _fresh(stamp, now, tol)
    try:
        expected = StandardWebhooksV1().signature(secret, msg_id, timestamp, body)
    except (binascii.Error, ValueError):
        raise ValueError("the secret must be whsec_ + base64") from None
    if not any(hmac.compare_digest(expected, s) for s in signatures.split(" ")):
        raise BadSignature()


def _ed25519(public: str, body: bytes, headers: dict[str, str], tol: int, now: int) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not public.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError("the Ed25519 scheme verifies with the endpoint's public key, whpk_...")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public[len(PUBLIC_KEY_PREFIX) :]))
    msg_id, stamp, signatures = _standard_headers(headers)
    signed = signed_content(msg_id, _fresh(stamp, now, tol), body)
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(value), signed)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        return
    raise BadSignature()


def _hex(
    secret: str, body: bytes, headers: dict[str, str], tol: int, now: int, name: str | None
) -> None:
    signatures = _header(headers, name or HEX_SIGNATURE_HEADER)
    # The hex scheme does not sign its timestamp: this only drops plain late replays.
    _fresh(_header(headers, "X-Webhook-Timestamp"), now, tol)
    expected = "sha256=" + hex_hmac(secret, body)
    if not any(hmac.compare_digest(expected, s.strip()) for s in signatures.split(",")):
        raise BadSignature()


def _stripe(
    secret: str, body: bytes, headers: dict[str, str], tol: int, now: int, name: str | None
) -> None:
    value = _header(headers, name or STRIPE_SIGNATURE_HEADER)
    items = [item.strip().partition("=") for item in value.split(",")]
    stamps = [v for k, _, v in items if k == "t"]
    if len(stamps) != 1:
        raise BadSignature("the signature header has no single t= timestamp")
    expected = hex_hmac(secret, stripe_signed_content(_fresh(stamps[0], now, tol), body))
    if not any(k == "v1" and hmac.compare_digest(expected, v) for k, _, v in items):
        raise BadSignature()


# --------------------------------------------------------------------------- dedupe


class SeenIds:
    """The webhook ids a receiver has handled, to drop at-least-once redeliveries: the last
    ``max_ids`` ids, in memory (one process; ``RedisSeenIds`` shares them between processes).

    ``add(id)`` is True the first time: process the webhook then. Should processing fail,
    ``discard(id)`` so that the redelivery is processed.
    """

    def __init__(self, max_ids: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._max = max_ids
        self._lock = threading.Lock()

    def add(self, webhook_id: str) -> bool:
        with self._lock:
            if webhook_id in self._ids:
                self._ids.move_to_end(webhook_id)
                return False
            self._ids[webhook_id] = None
            if len(self._ids) > self._max:
                self._ids.popitem(last=False)
            return True

    def discard(self, webhook_id: str) -> None:
        with self._lock:
            self._ids.pop(webhook_id, None)

    def __contains__(self, webhook_id: object) -> bool:
        with self._lock:
            return webhook_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class _Redis(Protocol):
    def set(self, name: str, value: str, *, ex: int, nx: bool) -> Any: ...
    def delete(self, *names: str) -> Any: ...
    def exists(self, *names: str) -> Any: ...


class RedisSeenIds:
    """``SeenIds`` shared by every process of a receiver, in Redis: one key per id that
    expires after ``ttl_s`` (longer than the sender's retry schedule, about 28 hours by
    default). ``client`` is a ``redis.Redis`` (``pip install hookpost[redis]``)."""

    def __init__(
        self, client: _Redis, prefix: str = "hookpost:seen:", ttl_s: int = 7 * 24 * 3600
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_s

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisSeenIds:
        import redis

        return cls(redis.Redis.from_url(url), **kwargs)

    def add(self, webhook_id: str) -> bool:
        # SET NX: atomic, so two processes given the same redelivery process it once.
        return bool(self._client.set(self._prefix + webhook_id, "1", ex=self._ttl, nx=True))

    def discard(self, webhook_id: str) -> None:
        self._client.delete(self._prefix + webhook_id)

    def __contains__(self, webhook_id: object) -> bool:
        return bool(self._client.exists(f"{self._prefix}{webhook_id}"))
