"""Which custom endpoint headers hold secrets: sealed at rest, and never shown by the API
(their names are listed as ``sensitive`` instead, as Svix does)."""

from __future__ import annotations

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "x-auth-token",
        "api-key",
        "www-authenticate",
    }
)
# A header whose name holds one of these suggests a secret too (``X-Service-Token``, ...).
_SECRET_WORDS = ("auth", "token", "secret", "password", "passwd", "cookie", "session", "apikey")
_SECRET_SUFFIXES = ("-key", "_key")


def is_sensitive_header(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in SENSITIVE_HEADERS
        or lowered.endswith(_SECRET_SUFFIXES)
        or any(word in lowered for word in _SECRET_WORDS)
    )
