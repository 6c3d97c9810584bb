"""Error responses in Svix's shapes.

* ``{"code": ..., "detail": ...}`` (``HttpErrorOut``) for every error except validation; a
  full quota is 409 ``limit_exceeded``, its detail naming the setting that sets it.
* ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` (``HTTPValidationError``) with
  status 422 for request validation errors and for :class:`InvalidInput` from the services.

Validation errors never echo the offending input (it may be a secret); only its location, a
message and an error type.

Every error body is JSON: the svix SDK calls ``response.json()`` on any non-2xx answer.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope, Send

from hookpost.api.asgi import no_receive
from hookpost.domain.errors import (
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SecretNotShown,
    StoreUnavailable,
)

log = logging.getLogger("hookpost.api")

RETRY_AFTER_S = "1"

_CODES = {
    400: "bad_request",
    401: "authentication_failed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "store_unavailable",
}


class ApiError(Exception):
    """An error answered as ``{code, detail}`` with ``status``."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


class ValidationFailure(Exception):
    """A 422 in the ``HTTPValidationError`` shape, raised by the API layer's own checks."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(i["msg"]) for i in items))
        self.items = items


def not_found(detail: str = "Entity not found") -> ApiError:
    return ApiError(404, "not_found", detail)


def forbidden(detail: str = "This token may not perform this operation") -> ApiError:
    return ApiError(403, "forbidden", detail)


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, "authentication_failed", detail, {"WWW-Authenticate": "Bearer"})


def conflict(detail: str) -> ApiError:
    return ApiError(409, "conflict", detail)


def payload_too_large_detail(payload_limit: int) -> str:
    """The 413's detail: the configured limit, and the setting that sets it."""
    return (
        f"the message payload is over the limit of {payload_limit} bytes "
        "(HOOKPOST_MAX_PAYLOAD_BYTES, the server's setting)"
    )


def payload_too_large(payload_limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", payload_too_large_detail(payload_limit))


def not_json(content_type: str | None) -> ApiError:
    """415 for a body that is not declared JSON (curl's ``-d`` alone sends a form type)."""
    got = f"content-type {content_type[:100]!r}" if content_type else "no content-type"
    return ApiError(
        415,
        "unsupported_media_type",
        f"the request body must be JSON, sent with content-type: application/json "
        f"(this request has {got})",
    )


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps({"code": code, "detail": detail})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def validation_response(errors: list[dict[str, Any]]) -> Response:
    return Response(
        orjson.dumps({"detail": errors}), status_code=422, media_type="application/json"
    )


def validation_item(loc: list[str | int], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


def clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI/pydantic errors reduced to ``{loc, msg, type}`` (no ``input``, no ``ctx``).

    A JSON decode error keeps the parser's reason (it names a position, never the input)."""
    out = []
    for err in errors:
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        msg = str(err.get("msg", "invalid"))
        type_ = str(err.get("type", ""))
        reason = (err.get("ctx") or {}).get("error")
        if type_ == "json_invalid" and isinstance(reason, str) and reason not in msg:
            msg = f"{msg}: {reason}"
        out.append(validation_item(loc, msg, type_))
    return out


def json_invalid_item(exc: json.JSONDecodeError) -> dict[str, Any]:
    """The 422 item for a body that is not JSON, as FastAPI's route reports it."""
    return validation_item(["body", exc.pos], f"JSON decode error: {exc.msg}", "json_invalid")


def invalid_input_response(exc: InvalidInput) -> Response:
    # A JSON path in ``field`` would name the client's own keys: only identifiers are camelCased.
    field = to_camel(exc.field) if "_" in exc.field and exc.field.isidentifier() else exc.field
    return validation_response([validation_item(["body", field, *exc.path], exc.message)])


# --------------------------------------------------------------------------- handlers


def response_for(exc: Exception) -> Response | None:
    """The error response for an exception the API knows, else None (a 500)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.detail, exc.headers)
    if isinstance(exc, StarletteHTTPException):
        code = _CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, detail, getattr(exc, "headers", None))
    if isinstance(exc, RequestValidationError):
        return validation_response(clean_validation_errors(exc.errors()))
    if isinstance(exc, ValidationFailure):
        return validation_response(exc.items)
    if isinstance(exc, NotFound):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, LimitExceeded):
        return error_response(409, exc.code, str(exc))
    if isinstance(exc, InvalidInput):
        return invalid_input_response(exc)
    if isinstance(exc, SecretNotShown):
        return error_response(403, exc.code, str(exc))
    if isinstance(exc, StoreUnavailable):
        log.warning("store unavailable: %s", exc)
        return error_response(
            503,
            "store_unavailable",
            "the database is unavailable; retry later",
            {"Retry-After": RETRY_AFTER_S},
        )
    return None


async def _known(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            return error_response(
                405, "method_not_allowed", "Method Not Allowed", {"Allow": allowed}
            )
    response = response_for(exc)
    assert response is not None
    return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route answers at this path. Starlette's own ``Allow`` names only the
    methods of the first route that matched the path, and FastAPI has one route per method."""
    scope = request.scope
    top = request.app.router.routes
    # FastAPI keeps an included router as one entry: its routes are its contexts' originals.
    every = [c.original_route for c in iter_route_contexts(top)]
    every += [r for r in top if getattr(r, "path", None) is not None]
    routes = [r for r in every if r.matches(scope)[0] != Match.NONE]
    # A literal segment wins over a parameter (``msg/bulk-expunge`` over ``msg/{msg_id}``):
    # only the routes with the fewest parameters are this path's.
    fewest = min((getattr(r, "path", "").count("{") for r in routes), default=0)
    routes = [r for r in routes if getattr(r, "path", "").count("{") == fewest]
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected_response(request.method, request.url.path, exc)


async def send_known_error(exc: Exception, scope: Scope, send: Send) -> bool:
    """For the middlewares outside FastAPI's exception handling: send the response for an
    error the API knows (a database away: 503 with Retry-After) and return True; False, having
    sent nothing, for any other (the caller re-raises it: a 500)."""
    known = response_for(exc)
    if known is None:
        return False
    await known(scope, no_receive, send)
    return True


def unexpected_response(method: str, path: str, exc: Exception) -> Response:
    """Log an error nothing else answers for, and the 500 to answer it with."""
    log.error("unhandled error in %s %s", method, path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


KNOWN_ERRORS: tuple[type[Exception], ...] = (
    ApiError,
    StarletteHTTPException,
    RequestValidationError,
    ValidationFailure,
    NotFound,
    Conflict,
    LimitExceeded,
    InvalidInput,
    SecretNotShown,
    StoreUnavailable,
)


def install_error_handlers(app: FastAPI) -> None:
    for exc_class in KNOWN_ERRORS:
        app.add_exception_handler(exc_class, _known)
    app.add_exception_handler(Exception, _unexpected)
