"""Browser sessions for the portal and the dashboard, and their CSRF tokens.

A session is an API token minted for it (app-scoped for the portal, admin for the dashboard)
with the session's lifetime: the cookie holds it, HttpOnly, and every request looks it up, so
an expired or revoked session ends at once on every process; logout revokes it. The CSRF
token is an HMAC of the session token, sent back in each form (or htmx header) and compared
in constant time. See docs/decisions/0039-portal-and-dashboard.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from hookpost.domain.errors import HookpostError
from hookpost.domain.models import ApiToken
from hookpost.services import Services

PORTAL_COOKIE = "hookpost_portal"
ADMIN_COOKIE = "hookpost_dashboard"
LOGIN_CSRF_COOKIE = "hookpost_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
PORTAL_SESSION_NAME = "app-portal session"
ADMIN_SESSION_NAME = "dashboard session"


class CsrfRejected(HookpostError):
    """A state-changing request without this session's CSRF token."""


@dataclass(frozen=True)
class Session:
    token: str  # the session's own API token (the cookie's value)
    record: ApiToken

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)

    @property
    def app_id(self) -> str | None:
        return self.record.app_id


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"hookpost-ui-csrf", hashlib.sha256).hexdigest()[:40]


async def current(services: Services, request: Request, cookie: str) -> Session | None:
    token = request.cookies.get(cookie)
    if not token:
        return None
    record = await services.tokens.authenticate(token)
    return None if record is None else Session(token, record)


def check_csrf(expected: str, fields: dict[str, str], request: Request) -> None:
    given = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected("the form's CSRF token is missing or wrong: reload the page")


async def open_session(
    services: Services, app_id: str | None, ttl_s: int, name: str
) -> tuple[str, ApiToken]:
    return await services.tokens.create(app_id=app_id, name=name, ttl_s=max(1, ttl_s))


async def close_session(services: Services, session: Session) -> None:
    await services.tokens.revoke(session.token)


def set_cookie(
    response: Response, name: str, value: str, path: str, max_age: int, same_site: str, https: bool
) -> None:
    """HttpOnly always; ``SameSite=None`` (for a portal embedded by another site) needs
    Secure, and is Partitioned so that browsers that block third-party cookies keep it."""
    same_site = same_site.lower()
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        secure=https or same_site == "none",
        samesite=same_site,  # type: ignore[arg-type]
    )
    if same_site == "none":  # by hand: the standard library knows the attribute from 3.14 on
        name_, value_ = response.raw_headers[-1]
        response.raw_headers[-1] = (name_, value_ + b"; Partitioned")


def clear_cookie(response: Response, name: str, path: str) -> None:
    response.delete_cookie(name, path=path, httponly=True)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
