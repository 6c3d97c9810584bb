"""Field types, limits and validators of the API's request bodies (docs/api-conventions.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StringConstraints,
)

from hookpost.domain.errors import InvalidInput
from hookpost.domain.limits import MAX_URL_LENGTH  # the domain owns it: the library path too
from hookpost.domain.signing import MAX_STRING_SECRET, MIN_STRING_SECRET, key_kind

# --------------------------------------------------------------------------- limits

ID_PATTERN = r"^[a-zA-Z0-9\-_.]+$"  # uid, eventId, eventType, event type name, feature flags
CHANNEL_PATTERN = r"^[a-zA-Z0-9\-_.:]+$"
# An endpoint's eventTypes entry: a name, `*` or `prefix.*` (domain.matching says what they match).
EVENT_TYPE_FILTER_PATTERN = r"^(?:[a-zA-Z0-9\-_.]+|(?:[a-zA-Z0-9\-_.]+\.)?\*)$"

MAX_ID_LENGTH = 256
MAX_CHANNEL_LENGTH = 128
MAX_ENDPOINT_CHANNELS = 10
MAX_MESSAGE_CHANNELS = 5
MAX_EVENT_TYPES = 1000
MAX_FEATURE_FLAGS = 100
MAX_APP_NAME_LENGTH = 1024
MAX_DESCRIPTION_LENGTH = 8192
MAX_METADATA_ENTRIES = 100
MAX_METADATA_KEY_LENGTH = 256
MAX_METADATA_VALUE_LENGTH = 4096
MAX_HEADERS = 100
MAX_HEADER_NAME_LENGTH = 256
MAX_HEADER_VALUE_LENGTH = 4096
MAX_SCHEMA_DEPTH = 64  # levels of JSON nesting in an event type's schemas
UINT16_MAX = 65535
MIN_PAYLOAD_RETENTION_DAYS = 1  # Svix's bounds on payloadRetentionPeriod
MAX_PAYLOAD_RETENTION_DAYS = 90
MAX_PAYLOAD_RETENTION_HOURS = 2160  # ... and on payloadRetentionHours (90 days)
DEFAULT_GRACE_PERIOD_SECONDS = 86400  # 24 hours
MAX_GRACE_PERIOD_SECONDS = 604800  # 7 days
MIN_PORTAL_TOKEN_EXPIRY_SECONDS = 3600  # 1 hour
MAX_PORTAL_TOKEN_EXPIRY_SECONDS = 604800  # 7 days
MAX_TOKEN_EXPIRY_SECONDS = 10 * 365 * 86400  # POST /auth/token: ten years at most
MAX_TOKEN_NAME_LENGTH = 256

# Headers that hookpost or the HTTP client controls. Compared case-insensitively.
FORBIDDEN_HEADER_NAMES = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "content-type",
    }
)
FORBIDDEN_HEADER_PREFIXES = ("webhook-", "svix-")

_HEADER_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 token = 1*tchar
_HEADER_VALUE_BAD_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than TAB
# The same rules, for the OpenAPI document (so generated clients and fuzzers know them).
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
HEADER_VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
URL_SCHEMA_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#@]+"
_URL_BAD_RE = re.compile(r"[\s\x00-\x1f\x7f]")

# --------------------------------------------------------------------------- validators


def dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _not_null(value: Any) -> Any:
    # Runs only on values the client sent (defaults are not validated), so absence stays legal.
    if value is None:
        raise ValueError("may be omitted but must not be null")
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is in year 0 in UTC; pydantic would 500
        raise ValueError("must be between 0001-01-01 and 9999-12-31 in UTC") from None


def _check_endpoint_url(url: str) -> str:
    if _URL_BAD_RE.search(url):
        raise ValueError("URL must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("URL must be absolute and use the http or https scheme")
    if "@" in parts.netloc:
        raise ValueError("URL must not contain user info")
    if not parts.hostname:
        raise ValueError("URL must have a host")
    if port == 0:
        raise ValueError("URL port must be between 1 and 65535")
    return url


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL (the insert would fail with a 500).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _json_depth_at_most(limit: int) -> Any:
    def check(value: Any) -> Any:
        stack = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > limit:
                raise ValueError(f"must not be nested more than {limit} levels deep")
            if isinstance(item, dict):
                stack.extend((v, depth + 1) for v in item.values())
            elif isinstance(item, list):
                stack.extend((v, depth + 1) for v in item)
        return value

    return check


def check_secret_kind(secret: str, scheme: str | None) -> None:
    """A secret given with its scheme (creation) is checked as the body is validated; a
    rotated key is checked by the service, which knows the endpoint's scheme."""
    try:
        key_kind(scheme or "").normalize(secret, "secret")
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _check_header_name(name: str) -> str:
    if not _HEADER_TOKEN_RE.fullmatch(name):
        raise ValueError("header name must be an HTTP token (RFC 7230 tchar characters)")
    lowered = name.lower()
    if lowered in FORBIDDEN_HEADER_NAMES or lowered.startswith(FORBIDDEN_HEADER_PREFIXES):
        raise ValueError(f"header {name!r} is reserved and cannot be set on an endpoint")
    return name


def _check_header_value(value: str) -> str:
    if _HEADER_VALUE_BAD_RE.search(value):
        raise ValueError("header value must not contain control characters (CR, LF, NUL, ...)")
    return value


_V = TypeVar("_V")


def _unique_header_names(headers: dict[str, _V]) -> dict[str, _V]:
    seen: set[str] = set()
    for name in headers:
        lowered = name.lower()
        if lowered in seen:
            raise ValueError(
                f"header {name!r} is given more than once (names are case-insensitive)"
            )
        seen.add(lowered)
    return headers


# --------------------------------------------------------------------------- field types

IdStr = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
]
Channel = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_CHANNEL_LENGTH, pattern=CHANNEL_PATTERN)
]
EndpointChannels = Annotated[
    list[Channel], Field(min_length=1, max_length=MAX_ENDPOINT_CHANNELS), AfterValidator(dedupe)
]
EndpointChannelsPatch = Annotated[
    list[Channel], Field(max_length=MAX_ENDPOINT_CHANNELS), AfterValidator(dedupe)
]
MessageChannels = Annotated[
    list[Channel], Field(min_length=1, max_length=MAX_MESSAGE_CHANNELS), AfterValidator(dedupe)
]
EventTypeOrPattern = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=EVENT_TYPE_FILTER_PATTERN),
]
EventTypeFilter = Annotated[
    list[EventTypeOrPattern],
    Field(min_length=1, max_length=MAX_EVENT_TYPES),
    AfterValidator(dedupe),
]
EventTypeFilterPatch = Annotated[
    list[EventTypeOrPattern], Field(max_length=MAX_EVENT_TYPES), AfterValidator(dedupe)
]
FeatureFlags = Annotated[list[IdStr], Field(max_length=MAX_FEATURE_FLAGS), AfterValidator(dedupe)]
Metadata = Annotated[
    dict[
        Annotated[str, StringConstraints(max_length=MAX_METADATA_KEY_LENGTH)],
        Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_LENGTH)],
    ],
    Field(max_length=MAX_METADATA_ENTRIES),
]
EndpointUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_URL_LENGTH),
    AfterValidator(_check_endpoint_url),
    # Documented (not enforced: _check_endpoint_url says what is wrong more clearly).
    Field(json_schema_extra={"format": "uri", "pattern": URL_SCHEMA_PATTERN}),
]
# Any key kind's length; what a key must be depends on the endpoint's signature scheme, which
# the domain checks (domain.signing.key_kind).
EndpointSecret = Annotated[
    str, StringConstraints(min_length=MIN_STRING_SECRET, max_length=MAX_STRING_SECRET)
]
# The names of domain.signing.SCHEME_NAMES (a unit test holds them equal), for the OpenAPI enum.
SignatureSchemeName = Literal[
    "standard-webhooks", "standard-webhooks-ed25519", "hmac-sha256-hex", "stripe"
]
HeaderName = Annotated[
    str,
    StringConstraints(max_length=MAX_HEADER_NAME_LENGTH),
    AfterValidator(_check_header_name),
]
HeaderValue = Annotated[
    str,
    StringConstraints(max_length=MAX_HEADER_VALUE_LENGTH),
    AfterValidator(_check_header_value),
    Field(json_schema_extra={"pattern": HEADER_VALUE_PATTERN}),  # documented; checked above
]
# Header names are documented as `propertyNames` (a key pattern would become
# `patternProperties`, which leaves other names unconstrained).
HEADER_NAME_SCHEMA = {"maxLength": MAX_HEADER_NAME_LENGTH, "pattern": HEADER_NAME_PATTERN}
Headers = Annotated[
    dict[HeaderName, HeaderValue],
    Field(max_length=MAX_HEADERS, json_schema_extra={"propertyNames": HEADER_NAME_SCHEMA}),
    AfterValidator(_unique_header_names),
]
HeadersPatch = Annotated[
    dict[HeaderName, HeaderValue | None],
    Field(max_length=MAX_HEADERS, json_schema_extra={"propertyNames": HEADER_NAME_SCHEMA}),
    AfterValidator(_unique_header_names),
]
AppName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_APP_NAME_LENGTH), AfterValidator(_no_nul)
]
TokenName = Annotated[
    str, StringConstraints(max_length=MAX_TOKEN_NAME_LENGTH), AfterValidator(_no_nul)
]
Description = Annotated[
    str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH), AfterValidator(_no_nul)
]
ThrottleRateIn = Annotated[int, Field(ge=1, le=UINT16_MAX)]  # In/Update: minimum 1
ThrottleRatePatch = Annotated[int, Field(ge=0, le=UINT16_MAX)]  # Patch: the reference says 0
JsonSchemas = Annotated[  # version -> JSON schema
    dict[str, dict[str, Any]], AfterValidator(_json_depth_at_most(MAX_SCHEMA_DEPTH))
]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
NotNull = AfterValidator(_not_null)
