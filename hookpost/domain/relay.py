"""Relay endpoints (``hookpost listen``): what a relay URL is, and a relay's retry policy.

A relay endpoint is an ordinary endpoint whose URL is this deployment's own relay route,
``<relay base>/api/v1/relay/<token>``: the worker delivers to it like to any endpoint, and the
API process holding the listener's connection answers for the listener. The token is random
(a capability: knowing it is what lets a POST reach the relay). Why: docs/decisions/0042.
"""

from __future__ import annotations

import re
import secrets

from hookpost.domain.retry import RetryPolicy

RELAY_PATH = "/api/v1/relay/"
TOKEN_PATTERN = r"[A-Za-z0-9_-]{32,64}"
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_URL_RE = re.compile(r"(https?://[^/?#@\s]+)" + re.escape(RELAY_PATH) + f"({TOKEN_PATTERN})")

# While no listener is connected the relay answers 503 and the delivery waits for its next
# attempt: 1, 2, 4 ... then every 30 s, for 50 attempts (about 23 minutes of waiting).
RELAY_RETRY_POLICY = RetryPolicy(
    strategy="exponential", initial_delay_s=1, multiplier=2.0, max_delay_s=30, max_attempts=50
)
DEFAULT_RELAY_UID = "hookpost-listen"


def new_relay_token() -> str:
    return secrets.token_urlsafe(32)  # 43 characters, 256 bits


def relay_base(host: str, port: int) -> str:
    """The base URL of the API listening on ``host``:``port``, as a worker on the same machine
    reaches it (a wildcard address means the loopback one)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def relay_prefix(base: str) -> str:
    return base.rstrip("/") + RELAY_PATH


def relay_url(base: str, token: str) -> str:
    return relay_prefix(base) + token


def relay_token(url: str, base: str | None = None) -> str | None:
    """The token of a relay URL: exactly ``<base>/api/v1/relay/<token>`` (any base when
    ``base`` is None), with no query, fragment or further path; None for any other URL."""
    if base is not None:
        prefix = relay_prefix(base)
        if not url.startswith(prefix):
            return None
        token = url[len(prefix) :]
        return token if _TOKEN_RE.fullmatch(token) else None
    match = _URL_RE.fullmatch(url)
    return match.group(2) if match else None
