"""Request and response bodies of the Svix-compatible REST API.

Every model is named after its component in ``reference/svix-openapi.json`` and carries the same
JSON fields. Python attributes are snake_case; the JSON names are their camelCase aliases, and
both spellings are accepted on input. This module imports only pydantic and the standard
library: the API layer maps between these models and the domain.

Conventions
-----------
* **Serialise responses with** ``model_dump(mode="json", by_alias=True)`` (FastAPI's
  ``response_model`` does ``by_alias`` by default) **and never with** ``exclude_none``. Optional
  fields are then sent as ``null``. The official ``svix`` Python SDK (2.9.1) declares every
  nullable field as ``Optional[...] = None``, so it parses both ``null`` and absence, with one
  exception: its ``ListResponse*`` models declare ``iterator: Optional[str]`` *without* a
  default, so the key must be present (``"iterator": null`` on the last page).
  ``exclude_none`` would drop it and break every ``list`` call of the SDK.
* **Datetimes** must be timezone-aware (``AwareDatetime``). They are converted to UTC and
  serialised as ISO 8601 with a ``Z`` suffix (``2024-05-01T12:00:00Z``), which the SDK parses.
  A naive datetime is rejected on input with a 422, as Svix does.
* **Unknown request fields are ignored**, as Svix does, so that newer SDKs that send fields this
  reference does not know (``tags``, ``deliverAt``, ``exampleIndex``, ...) still work.
* **Response models carry no value constraints** (patterns, lengths): they only describe the
  shape, so stored data that predates a rule cannot turn a read into a 500.
* **Lists documented as ``uniqueItems``** (channels, event types, feature flags) are
  de-duplicated, keeping the first occurrence, rather than rejected, because Svix reads them into
  sets.
* **Patch models**: a field that is absent and a field that is ``null`` mean different things.
  Absent means "leave unchanged"; ``null`` means "clear" and is only accepted where the reference
  marks the field nullable. Use ``patch.model_fields_set`` (or
  ``patch.model_dump(exclude_unset=True)``) to tell them apart; never test the attribute for
  ``None``.

hookpost rules beyond the reference (security and robustness)
--------------------------------------------------------------
* Endpoint URLs: absolute ``http``/``https`` with a host, no user info, no whitespace or control
  characters, a valid port, at most 65536 characters.
* Channels: ``^[a-zA-Z0-9\\-_.:]+$`` (the reference omits ``:``), at most 128 characters; at most
  10 per endpoint and 5 per message (the reference's ``maxItems``).
* At most 1000 event types per endpoint filter.
* Metadata: at most 100 entries, keys at most 256 and values at most 4096 characters.
* Custom endpoint headers: names are RFC 7230 tokens of at most 256 characters, values at most
  4096 characters with no control characters except TAB (so no CR, LF or NUL), at most 100
  headers, no name given twice (names are case-insensitive), and none of the names the service
  sets itself (see ``FORBIDDEN_HEADER_NAMES`` / ``FORBIDDEN_HEADER_PREFIXES``).
* Secrets must also decode as base64 (after the optional ``whsec_`` prefix).
* Message payloads must be JSON objects.
* Application names are at most 1024 characters and descriptions at most 8192 characters (the
  reference gives no limit); neither may contain NUL (PostgreSQL text cannot store it).
* Event type schemas are nested at most 64 levels deep.

Extensions for the ``svix`` SDK 2.9.1
-------------------------------------
* ``EndpointIn.headers``: the SDK can set custom headers when it creates an endpoint.
* ``EndpointHeadersPatchIn.delete_headers``: the SDK deletes headers by listing their names,
  where the reference uses ``null`` values. Both forms are accepted.
* ``EventExampleIn.example_index``: which of the event type schema's examples to send.
* ``AppPortalAccessIn.expiry``: the app-portal token's lifetime in seconds (1 hour to 7 days).
"""

import base64
import binascii
import re
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "AppPortalAccessIn",
    "AppPortalAccessOut",
    "ApplicationIn",
    "ApplicationOut",
    "ApplicationPatch",
    "BackgroundTaskStatus",
    "BackgroundTaskType",
    "EmptyResponse",
    "EndpointHeadersIn",
    "EndpointHeadersOut",
    "EndpointHeadersPatchIn",
    "EndpointIn",
    "EndpointMessageOut",
    "EndpointOut",
    "EndpointPatch",
    "EndpointSecretOut",
    "EndpointSecretRotateIn",
    "EndpointStats",
    "EndpointUpdate",
    "EventExampleIn",
    "EventTypeIn",
    "EventTypeOut",
    "EventTypePatch",
    "EventTypeUpdate",
    "HTTPValidationError",
    "HttpErrorOut",
    "ListResponse",
    "ListResponseApplicationOut",
    "ListResponseEndpointMessageOut",
    "ListResponseEndpointOut",
    "ListResponseEventTypeOut",
    "ListResponseMessageAttemptOut",
    "ListResponseMessageEndpointOut",
    "ListResponseMessageOut",
    "MessageAttemptOut",
    "MessageAttemptTriggerType",
    "MessageEndpointOut",
    "MessageIn",
    "MessageOut",
    "MessageStatus",
    "MessageStatusText",
    "RecoverIn",
    "RecoverOut",
    "ValidationErrorItem",
    "status_text",
]

# --------------------------------------------------------------------------- limits

ID_PATTERN = r"^[a-zA-Z0-9\-_.]+$"  # uid, eventId, eventType, event type name, feature flags
CHANNEL_PATTERN = r"^[a-zA-Z0-9\-_.:]+$"
SECRET_PATTERN = r"^(whsec_)?[a-zA-Z0-9+/=]{32,100}$"
SECRET_PREFIX = "whsec_"

MAX_ID_LENGTH = 256
MAX_CHANNEL_LENGTH = 128
MAX_ENDPOINT_CHANNELS = 10
MAX_MESSAGE_CHANNELS = 5
MAX_EVENT_TYPES = 1000
MAX_FEATURE_FLAGS = 100
MAX_URL_LENGTH = 65536
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
MIN_PAYLOAD_RETENTION_DAYS = 5
MAX_PAYLOAD_RETENTION_DAYS = 90
DEFAULT_GRACE_PERIOD_SECONDS = 86400  # 24 hours
MAX_GRACE_PERIOD_SECONDS = 604800  # 7 days
MIN_PORTAL_TOKEN_EXPIRY_SECONDS = 3600  # 1 hour
MAX_PORTAL_TOKEN_EXPIRY_SECONDS = 604800  # 7 days

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


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _not_null(value: Any) -> Any:
    # Runs only on values the client sent (defaults are not validated), so absence stays legal.
    if value is None:
        raise ValueError("may be omitted but must not be null")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


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


def _check_secret(secret: str) -> str:
    try:
        base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError("secret must be base64, optionally prefixed with 'whsec_'") from None
    return secret


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
    list[Channel], Field(min_length=1, max_length=MAX_ENDPOINT_CHANNELS), AfterValidator(_dedupe)
]
EndpointChannelsPatch = Annotated[
    list[Channel], Field(max_length=MAX_ENDPOINT_CHANNELS), AfterValidator(_dedupe)
]
MessageChannels = Annotated[
    list[Channel], Field(min_length=1, max_length=MAX_MESSAGE_CHANNELS), AfterValidator(_dedupe)
]
EventTypeFilter = Annotated[
    list[IdStr], Field(min_length=1, max_length=MAX_EVENT_TYPES), AfterValidator(_dedupe)
]
EventTypeFilterPatch = Annotated[
    list[IdStr], Field(max_length=MAX_EVENT_TYPES), AfterValidator(_dedupe)
]
FeatureFlags = Annotated[list[IdStr], Field(max_length=MAX_FEATURE_FLAGS), AfterValidator(_dedupe)]
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
EndpointSecret = Annotated[
    str, StringConstraints(pattern=SECRET_PATTERN), AfterValidator(_check_secret)
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
_HEADER_NAME_SCHEMA = {"maxLength": MAX_HEADER_NAME_LENGTH, "pattern": HEADER_NAME_PATTERN}
Headers = Annotated[
    dict[HeaderName, HeaderValue],
    Field(max_length=MAX_HEADERS, json_schema_extra={"propertyNames": _HEADER_NAME_SCHEMA}),
    AfterValidator(_unique_header_names),
]
HeadersPatch = Annotated[
    dict[HeaderName, HeaderValue | None],
    Field(max_length=MAX_HEADERS, json_schema_extra={"propertyNames": _HEADER_NAME_SCHEMA}),
    AfterValidator(_unique_header_names),
]
AppName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_APP_NAME_LENGTH), AfterValidator(_no_nul)
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

# --------------------------------------------------------------------------- enums


class MessageStatus(IntEnum):
    SUCCESS = 0
    PENDING = 1
    FAIL = 2
    SENDING = 3


class MessageStatusText(StrEnum):
    SUCCESS = "success"
    PENDING = "pending"
    FAIL = "fail"
    SENDING = "sending"


def status_text(status: MessageStatus) -> MessageStatusText:
    """The ``statusText`` that goes with a ``status``."""
    return MessageStatusText[MessageStatus(status).name]


class MessageAttemptTriggerType(IntEnum):
    SCHEDULED = 0
    MANUAL = 1


class BackgroundTaskStatus(StrEnum):
    # The reference lists only "running"; the SDK also knows "finished" and "failed".
    RUNNING = "running"


class BackgroundTaskType(StrEnum):
    ENDPOINT_RECOVER = "endpoint.recover"


# --------------------------------------------------------------------------- bases


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class _PatchModel(_Model):
    # PATCH body. Absent and null differ: check `model_fields_set`, never `is None`.
    # `model_dump(exclude_unset=True)` gives exactly the fields the client sent. Fields the
    # reference marks non-nullable reject null (`NotNull`, hidden from the JSON schema with
    # `SkipJsonSchema`); nullable ones accept it, and null then clears the value.
    pass


T = TypeVar("T")


class ListResponse(_Model, Generic[T]):
    """A page of a list. ``iterator`` is always serialised, ``null`` on the last page."""

    data: list[T]
    iterator: str | None
    prev_iterator: str | None = None
    done: bool


class EmptyResponse(_Model):
    """``{}``: the body of 202 answers such as resend."""


class HttpErrorOut(_Model):
    code: str
    detail: str


class ValidationErrorItem(_Model):
    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationError(_Model):
    detail: list[ValidationErrorItem]


# --------------------------------------------------------------------------- applications


class ApplicationIn(_Model):
    name: AppName
    uid: IdStr | None = None
    throttle_rate: ThrottleRateIn | None = None
    metadata: Metadata = Field(default_factory=dict)


class ApplicationPatch(_PatchModel):
    name: Annotated[AppName | SkipJsonSchema[None], NotNull] = None
    uid: IdStr | None = None  # null clears the uid
    throttle_rate: ThrottleRatePatch | None = None  # null clears the limit
    metadata: Annotated[Metadata | SkipJsonSchema[None], NotNull] = None


class ApplicationOut(_Model):
    id: str
    name: str
    uid: str | None = None
    throttle_rate: int | None = None
    metadata: dict[str, str]
    created_at: UtcDatetime
    updated_at: UtcDatetime


class AppPortalAccessIn(_Model):
    application: ApplicationIn | None = None
    feature_flags: FeatureFlags = Field(default_factory=list)
    # Extension used by the svix SDK: the token's lifetime in seconds (default 7 days).
    expiry: Annotated[
        int, Field(ge=MIN_PORTAL_TOKEN_EXPIRY_SECONDS, le=MAX_PORTAL_TOKEN_EXPIRY_SECONDS)
    ] = MAX_PORTAL_TOKEN_EXPIRY_SECONDS


class AppPortalAccessOut(_Model):
    url: str
    token: str


# --------------------------------------------------------------------------- event types


class EventTypeUpdate(_Model):
    description: Description
    archived: bool = False
    deprecated: bool = False
    schemas: JsonSchemas | None = None
    feature_flag: IdStr | None = None


class EventTypeIn(EventTypeUpdate):
    name: IdStr


class EventTypePatch(_PatchModel):
    description: Annotated[Description | SkipJsonSchema[None], NotNull] = None
    archived: Annotated[bool | SkipJsonSchema[None], NotNull] = None
    deprecated: Annotated[bool | SkipJsonSchema[None], NotNull] = None
    schemas: JsonSchemas | None = None  # null removes the schemas
    feature_flag: IdStr | None = None  # null removes the feature flag


class EventTypeOut(_Model):
    name: str
    description: str
    archived: bool = False
    deprecated: bool
    schemas: JsonSchemas | None = None
    feature_flag: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


# --------------------------------------------------------------------------- endpoints


class EndpointUpdate(_Model):
    """PUT body. Also the base of ``EndpointIn``, which adds ``secret`` and ``headers``."""

    url: EndpointUrl
    description: Description = ""
    uid: IdStr | None = None
    disabled: bool = False
    throttle_rate: ThrottleRateIn | None = None
    event_types: EventTypeFilter | None = None  # null or absent: every event type
    channels: EndpointChannels | None = None  # null or absent: every channel
    metadata: Metadata = Field(default_factory=dict)


class EndpointIn(EndpointUpdate):
    """POST body: ``EndpointUpdate`` plus the initial secret and custom headers."""

    secret: EndpointSecret | None = None  # null or absent: the server generates one
    headers: Headers | None = None  # extension used by the svix SDK


class EndpointPatch(_PatchModel):
    url: Annotated[EndpointUrl | SkipJsonSchema[None], NotNull] = None
    description: Annotated[Description | SkipJsonSchema[None], NotNull] = None
    uid: IdStr | None = None
    disabled: Annotated[bool | SkipJsonSchema[None], NotNull] = None
    throttle_rate: ThrottleRatePatch | None = None
    event_types: EventTypeFilterPatch | None = None  # null: every event type
    channels: EndpointChannelsPatch | None = None  # null: every channel
    metadata: Annotated[Metadata | SkipJsonSchema[None], NotNull] = None


class _EndpointOutBase(_Model):
    id: str
    url: str
    description: str
    uid: str | None = None
    disabled: bool = False
    throttle_rate: int | None = None
    event_types: list[str] | None = None
    channels: list[str] | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class EndpointOut(_EndpointOutBase):
    metadata: dict[str, str]


class MessageEndpointOut(_EndpointOutBase):
    """An endpoint a message was (or is to be) sent to, with that delivery's status."""

    status: MessageStatus
    status_text: MessageStatusText
    next_attempt: UtcDatetime | None = None


class EndpointSecretOut(_Model):
    key: str


class EndpointSecretRotateIn(_Model):
    key: EndpointSecret | None = None  # null or absent: the server generates one
    grace_period_seconds: Annotated[int, Field(ge=0, le=MAX_GRACE_PERIOD_SECONDS)] = (
        DEFAULT_GRACE_PERIOD_SECONDS
    )

    @field_validator("grace_period_seconds", mode="before")
    @classmethod
    def _null_means_default(cls, value: Any) -> Any:
        # The reference makes the field nullable; null means the default grace period.
        return DEFAULT_GRACE_PERIOD_SECONDS if value is None else value


class EndpointHeadersIn(_Model):
    headers: Headers


class EndpointHeadersPatchIn(_Model):
    """Changes to the custom headers. Headers not named are left as they are.

    ``headers`` maps a name to its new value, or to ``null`` to delete it (the reference's
    form). ``delete_headers`` lists names to delete (the svix SDK's form).
    """

    headers: HeadersPatch
    delete_headers: Annotated[
        list[HeaderName],
        Field(
            max_length=MAX_HEADERS,
            json_schema_extra={"items": {"type": "string", **_HEADER_NAME_SCHEMA}},
        ),
    ] = Field(default_factory=list)

    @field_validator("delete_headers")
    @classmethod
    def _not_both_set_and_deleted(cls, value: list[str], info: ValidationInfo) -> list[str]:
        headers = info.data.get("headers") or {}
        kept = {name.lower() for name, v in headers.items() if v is not None}
        for name in value:
            if name.lower() in kept:
                raise ValueError(f"header {name!r} is both set and deleted")
        return value

    def headers_to_set(self) -> dict[str, str]:
        return {name: value for name, value in self.headers.items() if value is not None}

    def headers_to_delete(self) -> list[str]:
        names = [name for name, value in self.headers.items() if value is None]
        return _dedupe([*names, *self.delete_headers])


class EndpointHeadersOut(_Model):
    """``headers`` holds the values; names of redacted sensitive headers go in ``sensitive``."""

    headers: dict[str, str]
    sensitive: list[str]


class EndpointStats(_Model):
    success: int
    pending: int
    sending: int
    fail: int
    canceled: int


class RecoverIn(_Model):
    since: UtcDatetime
    until: UtcDatetime | None = None  # null or absent: now

    @field_validator("until")
    @classmethod
    def _after_since(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if value is not None and since is not None and value <= since:
            raise ValueError("must be later than 'since'")
        return value


class RecoverOut(_Model):
    id: str
    status: BackgroundTaskStatus
    task: BackgroundTaskType
    updated_at: UtcDatetime


class EventExampleIn(_Model):
    event_type: IdStr
    # Extension used by the svix SDK: which of the schema's examples to send (default: first).
    example_index: Annotated[int, Field(ge=0)] = 0


# --------------------------------------------------------------------------- messages


class MessageIn(_Model):
    event_type: IdStr
    payload: dict[str, Any]  # must be a JSON object
    event_id: IdStr | None = None  # idempotency key
    channels: MessageChannels | None = None
    application: ApplicationIn | None = None  # create the app on the fly if it does not exist
    payload_retention_period: Annotated[
        int, Field(ge=MIN_PAYLOAD_RETENTION_DAYS, le=MAX_PAYLOAD_RETENTION_DAYS)
    ] = MAX_PAYLOAD_RETENTION_DAYS  # days


class MessageOut(_Model):
    id: str
    event_type: str
    event_id: str | None = None
    payload: dict[str, Any]
    channels: list[str] | None = None
    timestamp: UtcDatetime


class EndpointMessageOut(MessageOut):
    """A message as seen by one endpoint: the message plus that delivery's status."""

    status: MessageStatus
    status_text: MessageStatusText
    next_attempt: UtcDatetime | None = None


class MessageAttemptOut(_Model):
    id: str
    msg_id: str
    endpoint_id: str
    url: str
    response: str
    response_status_code: int
    response_duration_ms: int
    status: MessageStatus
    status_text: MessageStatusText
    trigger_type: MessageAttemptTriggerType
    timestamp: UtcDatetime


# --------------------------------------------------------------------------- list envelopes

ListResponseApplicationOut = ListResponse[ApplicationOut]
ListResponseEventTypeOut = ListResponse[EventTypeOut]
ListResponseEndpointOut = ListResponse[EndpointOut]
ListResponseMessageOut = ListResponse[MessageOut]
ListResponseEndpointMessageOut = ListResponse[EndpointMessageOut]
ListResponseMessageEndpointOut = ListResponse[MessageEndpointOut]
ListResponseMessageAttemptOut = ListResponse[MessageAttemptOut]
