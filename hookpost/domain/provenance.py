"""What proves, later, which bytes a message carried."""

from __future__ import annotations

import hashlib


def payload_sha256(payload: bytes) -> str:
    """The hex SHA-256 of a message's exact stored (signed, sent) payload bytes: recorded once
    at creation and kept after the payload is expunged, so an audit can match what a receiver
    got (``hashlib.sha256(body).hexdigest()``)."""
    return hashlib.sha256(payload).hexdigest()
