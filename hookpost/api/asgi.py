"""Small helpers over raw ASGI scopes, for the middlewares that run before any Request exists."""

from __future__ import annotations

from starlette.types import Scope


def scope_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the request header ``name`` (lower-case bytes, as ASGI gives them)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
