"""Endpoint secrets at rest: AES-256-GCM under a main key (``HOOKPOST_MAIN_KEY``)."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


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
    """``seal`` returns ``v1:<base64(nonce || ciphertext)>``; tampering makes ``open`` fail."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes) -> str:
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, _VERSION.encode())
        return f"{_VERSION}:{base64.b64encode(sealed).decode()}"

    def open(self, sealed: str) -> bytes:
        version, _, body = sealed.partition(":")
        if version != _VERSION:
            raise ValueError("sealed secret has an unknown format")
        raw = base64.b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _VERSION.encode())
        except InvalidTag:
            raise WrongMainKey() from None


class WrongMainKey(ValueError):
    def __init__(self) -> None:
        super().__init__(
            "endpoint secrets in this database were sealed with a different main key: set "
            "HOOKPOST_MAIN_KEY (or restore <database>.key) to the key it was created with"
        )
