"""Checks on a request's head that run before anything else of the API's."""

from __future__ import annotations

from starlette.types import Scope

IDEMPOTENCY_KEY = b"idempotency-key"


def without_idempotency_key(scope: Scope) -> Scope:
    """``scope`` without its ``idempotency-key``, for a path holding a NUL character: the
    idempotency bookkeeping looks keys up by path, before routing, and PostgreSQL text cannot
    hold a NUL (a 500). No route accepts such a path (every path parameter refuses NUL), so
    routing answers it as it would without a key: 401, 404, 405 or 422 naming the parameter."""
    headers = [(name, value) for name, value in scope["headers"] if name != IDEMPOTENCY_KEY]
    return {**scope, "headers": headers}
