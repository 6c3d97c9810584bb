"""What every dashboard and portal page shares: templates, security headers, forms, errors.

Pages are rendered on the server (Jinja2, autoescaped) and enhanced with htmx; every script
and stylesheet is a file under ``static/``, so the Content-Security-Policy allows no inline
code at all (docs/decisions/0039-portal-and-dashboard.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hookpost.domain.errors import (
    Conflict,
    HookpostError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SecretNotShown,
)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/ui/static"
MAX_FORM_BYTES = 256 * 1024

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every {{ value }} is HTML-escaped
    undefined=jinja2.StrictUndefined,
    enable_async=False,
)


def when(ms: int | None) -> str:
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.filters["when"] = when
templates.globals["static"] = lambda name: f"{STATIC_URL}/{name}"


def csp(frame_ancestors: str) -> str:
    """A strict policy: scripts, styles and requests from this origin only, no inline code;
    ``frame_ancestors`` says who may embed the page."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {frame_ancestors}"
    )


def secure(response: Response, frame_ancestors: str = "'none'") -> Response:
    h = response.headers
    h["Content-Security-Policy"] = csp(frame_ancestors)
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["Cache-Control"] = "no-store"
    if frame_ancestors == "'none'":
        h["X-Frame-Options"] = "DENY"  # for browsers without frame-ancestors
    return response


def render(
    name: str, context: dict[str, Any], status: int = 200, frame_ancestors: str = "'none'"
) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    return secure(HTMLResponse(html, status), frame_ancestors)  # type: ignore[return-value]


def redirect(url: str, request: Request) -> Response:
    """After a form post: htmx follows HX-Redirect, a plain browser the 303."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the last value of each); multi-valued fields via
    ``form_lists``. Parsed here: no multipart dependency for a handful of text fields."""
    return {k: v for k, v in await form_pairs(request)}


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput("form", f"over {MAX_FORM_BYTES} bytes")
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def error_status(exc: HookpostError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, SecretNotShown):
        return 403
    if isinstance(exc, Conflict | LimitExceeded):
        return 409
    return 400


def error_text(exc: HookpostError) -> str:
    return str(exc) or type(exc).__name__


def parse_time(value: str, field: str) -> int | None:
    """A ``datetime-local`` value (read as UTC) in ms; blank: None."""
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(field, "expected a date and time, like 2026-01-31T12:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)
