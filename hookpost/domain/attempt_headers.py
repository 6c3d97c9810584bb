"""The headers of an attempt as stored with it (``attempts.headers``): what the request sent,
sensitive endpoint headers redacted, and a failed answer's response headers, capped.

Stored as one compact JSON object (docs/decisions/0046-attempt-headers.md), only what cannot
be derived from the attempt's row:

* ``"name": "value"``: a header as sent;
* ``"name": 0``: the header held the message's id (the signature schemes' id header);
* ``"name": null``: an endpoint header whose name marks it sensitive (``domain.headers``),
  sent but never stored: its name is listed under ``sensitive``;
* ``IMPLICIT`` headers with their usual value are left out and read back as sent;
* ``":response"``: ``[[name, value], ...]``, a non-2xx answer's headers, capped, sensitive
  ones (``Set-Cookie`` ...) left out (no header name holds a ``:``, so it cannot clash).

Changing ``IMPLICIT`` would change how stored rows read: add a new key instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import orjson

from hookpost.domain.headers import is_sensitive_header

CONTENT_TYPE = "application/json"
USER_AGENT = "hookpost/0.1"
# Sent with every attempt by delivery.sending; left out of the stored value.
IMPLICIT: tuple[tuple[str, str], ...] = (("content-type", CONTENT_TYPE), ("user-agent", USER_AGENT))
_IMPLICIT = dict(IMPLICIT)
DEFAULT_HEADERS: Mapping[str, str] = _IMPLICIT  # never mutated: spread into each request's
RESPONSE_KEY = ":response"
# A failed answer's headers are kept up to this many bytes (names and values) and this many
# headers, the rest dropped: a receiver's answer must not grow the attempt log without bound.
RESPONSE_HEADERS_MAX_BYTES = 2048
RESPONSE_HEADERS_MAX_COUNT = 32


@dataclass(frozen=True, slots=True)
class AttemptHeaders:
    sent: dict[str, str]
    sensitive: list[str] = field(default_factory=list)
    response: list[tuple[str, str]] | None = None
    # False for an attempt recorded before hookpost stored headers (migration 0023): ``sent``
    # then holds only what every hookpost version sent (IMPLICIT).
    recorded: bool = True


@lru_cache(maxsize=4096)
def _sensitive(name: str) -> bool:
    return is_sensitive_header(name)


def with_custom(custom: Mapping[str, str]) -> dict[str, str]:
    """A request's headers before its signature, for an endpoint with custom headers: those,
    over hookpost's own. A custom ``User-Agent`` (any case) replaces hookpost's, so that one
    goes out, not two (``content-type`` cannot be set on an endpoint)."""
    base = dict(_IMPLICIT)
    if any(name.lower() == "user-agent" for name in custom):
        del base["user-agent"]
    base.update(custom)
    return base


def encode_headers(
    sent: Mapping[str, str],
    message_id: str,
    endpoint_headers: Iterable[str] = (),
    response: list[tuple[str, str]] | None = None,
) -> str:
    """The stored form of an attempt's headers. ``endpoint_headers``: the names of the
    endpoint's custom headers among ``sent`` (only those are ever redacted)."""
    out: dict[str, str | int | list[tuple[str, str]] | None] = {}
    for name, value in sent.items():
        if value == message_id:
            out[name] = 0
        elif _IMPLICIT.get(name) != value:
            out[name] = value
    for name in endpoint_headers:  # usually none
        if name in out and _sensitive(name):
            out[name] = None
    if response:
        out[RESPONSE_KEY] = response
    return orjson.dumps(out).decode()


def decode_headers(stored: str | None, message_id: str) -> AttemptHeaders:
    """What ``encode_headers`` stored, as the API answers it; a row stored before is ``recorded``
    False, with the headers every hookpost version has sent."""
    if stored is None:
        return AttemptHeaders(sent=dict(IMPLICIT), recorded=False)
    raw = orjson.loads(stored)
    response = raw.pop(RESPONSE_KEY, None)
    sent: dict[str, str] = {}
    sensitive: list[str] = []
    for name, value in raw.items():
        if value is None:
            sensitive.append(name)
        elif value == 0:
            sent[name] = message_id
        else:
            sent[name] = value
    present = {name.lower() for name in sent} | {name.lower() for name in sensitive}
    for name, value in IMPLICIT:
        if name not in present:  # a custom User-Agent replaced hookpost's
            sent[name] = value
    pairs = None if response is None else [(str(n), str(v)) for n, v in response]
    return AttemptHeaders(sent=sent, sensitive=sensitive, response=pairs)


def capped_response(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A failed answer's headers as kept: in order, until either cap is reached; those whose
    name marks them sensitive (``Set-Cookie`` ...) are left out."""
    kept: list[tuple[str, str]] = []
    size = 0
    for name, value in headers:
        if _sensitive(name):
            continue
        size += len(name) + len(value)
        if size > RESPONSE_HEADERS_MAX_BYTES or len(kept) >= RESPONSE_HEADERS_MAX_COUNT:
            break
        kept.append((name, value.replace("\x00", "\ufffd")))
    return kept
