"""Quotas and bounds: how much one request, one application or the catalog may hold.

Counts (endpoints per application, event types) are settings, refused with ``LimitExceeded``
(the API answers 409 ``limit_exceeded``); bounds on one input (a URL's length, how far back
``recover`` looks) are constants, refused with ``InvalidInput`` naming the field (422).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hookpost.domain.errors import InvalidInput, LimitExceeded

# Every endpoint receives a delivery row in each message's transaction, so this bounds the
# fan-out work of one message, and the rows an application's deletion touches at once.
DEFAULT_MAX_ENDPOINTS_PER_APP = 100
DEFAULT_MAX_EVENT_TYPES = 10_000  # the catalog is global: every app shares it
# A page of messages stops before the one that would take its payloads over this.
DEFAULT_MAX_PAGE_CONTENT_BYTES = 16 * 1024 * 1024

# Copied into every attempt row; a few KiB holds any real URL with its query string.
MAX_URL_LENGTH = 4096
# A payload filter is evaluated against every message of its app: these bound its cost
# (docs/payload-filters.md). Real filters are a handful of fields.
MAX_PAYLOAD_FILTER_BYTES = 8192  # as compact JSON
MAX_PAYLOAD_FILTER_DEPTH = 16  # levels of JSON nesting
MAX_PAYLOAD_FILTER_NODES = 512  # keys and values, all levels
RECOVER_MAX_AGE_DAYS = 14  # as Svix: recover looks back at most this far
RECOVER_MAX_AGE_MS = RECOVER_MAX_AGE_DAYS * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured quotas (``HOOKPOST_MAX_*``); None: no limit."""

    max_endpoints_per_app: int | None = DEFAULT_MAX_ENDPOINTS_PER_APP
    max_event_types: int | None = DEFAULT_MAX_EVENT_TYPES
    max_page_content_bytes: int | None = DEFAULT_MAX_PAGE_CONTENT_BYTES


def too_many_endpoints(limit: int) -> LimitExceeded:
    what = f"the application has {limit} endpoints already"
    return LimitExceeded(what, "HOOKPOST_MAX_ENDPOINTS_PER_APP", limit)


def too_many_event_types(limit: int) -> LimitExceeded:
    what = f"the catalog holds {limit} event types already (archived ones count)"
    return LimitExceeded(what, "HOOKPOST_MAX_EVENT_TYPES", limit)


def check_url_length(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput("url", f"must be at most {MAX_URL_LENGTH} characters")


def check_recover_range(since_ms: int, until_ms: int | None, now_ms: int) -> None:
    """``recover`` looks back at most ``RECOVER_MAX_AGE_DAYS``; ``until`` is after ``since``."""
    if since_ms < now_ms - RECOVER_MAX_AGE_MS:
        raise InvalidInput("since", f"must be at most {RECOVER_MAX_AGE_DAYS} days ago")
    if until_ms is not None and until_ms <= since_ms:
        raise InvalidInput("until", "must be later than 'since'")


def items_within(sizes: Iterable[int], limit: int, budget: int) -> int:
    """How many of a page's leading items to return: at most ``limit``, and none that would
    take the sum of their sizes over ``budget``, except the first (a page always moves on)."""
    count = total = 0
    for size in sizes:
        total += size
        if count == limit or (count and total > budget):
            break
        count += 1
    return count


MIN_TIMEOUT_S = 1
MAX_TIMEOUT_S = 60


def check_timeout(seconds: int | None) -> int | None:
    """An endpoint's ``timeoutSeconds``: a whole number of seconds from 1 to 60 (or None)."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidInput("timeoutSeconds", "must be a whole number of seconds")
    if not MIN_TIMEOUT_S <= seconds <= MAX_TIMEOUT_S:
        raise InvalidInput(
            "timeoutSeconds", f"must be from {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} seconds"
        )
    return seconds
