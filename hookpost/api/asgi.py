"""Small helpers over raw ASGI scopes, for the middlewares that run before any Request exists."""

from __future__ import annotations

from starlette.types import Message, Scope


def scope_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the request header ``name`` (lower-case bytes, as ASGI gives them)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def no_receive() -> Message:
    """The ``receive`` for sending a response of our own: responses never read the request."""
    return {"type": "http.disconnect"}
