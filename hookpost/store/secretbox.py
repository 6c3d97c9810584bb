"""Secrets at rest: AES-256-GCM under a main key (``HOOKPOST_MAIN_KEY``).

``v2`` values are bound to their row: the associated data holds the format version and a
``context`` naming the row (``endpoint_keys_context``), so a sealed value copied into another
row does not open there. ``v1`` values (a constant associated data) are still read, and a row
is sealed again as ``v2`` when it is next written.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"  # no context: idempotency answers, and rows sealed before v2
_BOUND = "v2"


def endpoint_keys_context(endpoint_id: str) -> bytes:
    """What an endpoint's sealed signing keys are bound to: its row."""
    return b"endpoint-keys:" + endpoint_id.encode()


def generate_main_key() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def parse_main_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("HOOKPOST_MAIN_KEY must be base64 of 32 random bytes") from None
    if len(key) != 32:
        raise ValueError(f"HOOKPOST_MAIN_KEY must decode to 32 bytes, got {len(key)}")
    return key


class AeadBox:
    """``seal`` returns ``v2:<base64(nonce || ciphertext)>`` bound to ``context`` (``v1:``
    without one); tampering, or opening with another context, makes ``open`` fail."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: bytes = b"") -> str:
        version = _BOUND if context else _VERSION
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, _associated(version, context))
        return f"{version}:{base64.b64encode(sealed).decode()}"

    def open(self, sealed: str, context: bytes = b"") -> bytes:
        version, _, body = sealed.partition(":")
        if version not in (_VERSION, _BOUND):
            raise ValueError("sealed secret has an unknown format")
        raw = base64.b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _associated(version, context))
        except InvalidTag:
            raise WrongMainKey() from None


def _associated(version: str, context: bytes) -> bytes:
    if version == _VERSION:
        return _VERSION.encode()  # as sealed before v2, whatever the row
    return _BOUND.encode() + b"|" + context


class WrongMainKey(ValueError):
    def __init__(self) -> None:
        super().__init__(
            "endpoint secrets in this database were sealed with a different main key: set "
            "HOOKPOST_MAIN_KEY (or restore <database>.key) to the key it was created with"
        )
