"""Prefixed, time-sortable identifiers (``msg_2k9...``).

48 bits of milliseconds followed by 80 random bits, written in fixed-width base62 whose
alphabet is in ASCII order, so ids sort by creation time as plain strings. List paging uses
the id itself as the cursor, which stays stable while new rows arrive.
"""

from __future__ import annotations

import secrets
import time

from hookpost.domain.errors import InvalidInput

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALPHABET_SET = frozenset(ALPHABET)
_WIDTH = 22  # ceil(128 / log2(62))
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)  # every 2-digit string, by value
_PAIR = 62**2
_QUAD = 62**4


def _encode(value: int) -> str:
    """``value`` as _WIDTH base62 digits (higher ones dropped). Every delivery attempt gets an
    id, so this divides by 62**4 (five big-int steps, not 22) and looks digits up in pairs."""
    groups = []  # four digits each, least significant first
    for _ in range((_WIDTH - 2) // 4):
        value, group = divmod(value, _QUAD)
        groups.append(_PAIRS[group // _PAIR] + _PAIRS[group % _PAIR])
    groups.append(_PAIRS[value % _PAIR])  # the top two digits
    return "".join(reversed(groups))


def new_id(prefix: str, now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{_encode((ms << 80) | secrets.randbits(80))}"


def id_floor(prefix: str, ms: int) -> str:
    """The smallest id that can have been created at or after ``ms`` (for time-bounded lists)."""
    return f"{prefix}_{_encode(ms << 80)}"


def has_id_form(prefix: str, value: str) -> bool:
    """Whether ``value`` is written as ids with ``prefix`` are (whether or not one exists)."""
    body = value[len(prefix) + 1 :]
    return len(body) == _WIDTH and value.startswith(f"{prefix}_") and _ALPHABET_SET.issuperset(body)


def check_uid(prefix: str, uid: str | None) -> None:
    """A uid names its resource wherever an id may, so it may not look like an id: another
    resource's id would then name two of them (InvalidInput naming ``uid``)."""
    if uid is not None and has_id_form(prefix, uid):
        raise InvalidInput(
            "uid", f"must not have the form of an id ({prefix}_ and {_WIDTH} letters or digits)"
        )


def id_time_ms(value: str) -> int:
    body = value.rsplit("_", 1)[-1]
    n = 0
    for ch in body:
        n = n * 62 + ALPHABET.index(ch)
    return n >> 80


APP = "app"
ENDPOINT = "ep"
MESSAGE = "msg"
ATTEMPT = "atmpt"
TOKEN = "tok"
TASK = "qtask"
