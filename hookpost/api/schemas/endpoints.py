"""Endpoints: their options (hookpost's extensions beside Svix's fields), secrets, headers,
health and throttle status."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from hookpost.api.fields import (
    DEFAULT_GRACE_PERIOD_SECONDS,
    HEADER_NAME_SCHEMA,
    MAX_GRACE_PERIOD_SECONDS,
    MAX_HEADERS,
    Description,
    EndpointChannels,
    EndpointChannelsPatch,
    EndpointSecret,
    EndpointUrl,
    EventTypeFilter,
    EventTypeFilterPatch,
    HeaderName,
    Headers,
    HeadersPatch,
    IdStr,
    Metadata,
    NotNull,
    SignatureSchemeName,
    ThrottleRateIn,
    ThrottleRatePatch,
    UtcDatetime,
    check_secret_kind,
    dedupe,
)
from hookpost.api.schemas.base import (
    MessageStatus,
    MessageStatusText,
    _Model,
    _PatchModel,
)
from hookpost.api.tracing_fields import SendTraceparent
from hookpost.domain import retry
from hookpost.domain.limits import MAX_TIMEOUT_S, MIN_TIMEOUT_S

# --------------------------------------------------------------------------- endpoints

_EVENT_TYPES_DESCRIPTION = (
    "The event types this endpoint receives: names, `*` (every type) or prefix patterns such "
    "as `invoice.*` (every type that starts with `invoice.`). Null or absent: every type."
)
_PAYLOAD_FILTER_DESCRIPTION = (
    "hookpost extension. A filter on the message payload: the endpoint receives a message only "
    "when it matches (and its type and channels do). Keys are payload fields (nested objects "
    "or dotted keys such as `customer.tier`); a plain value is equality; operators `$eq` "
    "`$neq` `$gt` `$gte` `$lt` `$lte` `$in` `$nin` `$contains` `$exists`, and `$and` `$or` "
    "(lists of filters) and `$not` (one filter). Equality is type-strict, a missing field "
    "matches only `$neq` and `$exists: false`. An invalid filter is a 422 naming its JSON path. "
    "Null or `{}`: every payload; absent: none on create, unchanged on PUT and PATCH (the svix "
    "SDKs do not send it). See docs/payload-filters.md."
)


_SCHEME_DESCRIPTION = (
    "hookpost extension: how requests to this endpoint are signed. `standard-webhooks` "
    "(default): Standard Webhooks HMAC `v1` in `webhook-signature`. "
    "`standard-webhooks-ed25519`: Standard Webhooks `v1a` (Ed25519); the `whsk_` signing key "
    "stays on the server and `GET .../secret` returns its public key `whpk_`. "
    "`hmac-sha256-hex`: `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the body>` keyed "
    "with the secret string, plus `X-Webhook-Id`, `-Event`, `-Timestamp` and `-Attempt`. "
    '`stripe`: `Hookpost-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">` keyed '
    "with the secret string, plus `<prefix>-Event-Id`, `-Event-Type` and `-Delivery-Attempt`. "
    "Changing it to or from the Ed25519 scheme replaces the endpoint's key with a new one. "
    "Absent on a PUT: unchanged. See docs/receivers.md."
)
_HEADER_DESCRIPTION = (
    "hookpost extension: renames the signature header of the `hmac-sha256-hex` and `stripe` "
    "schemes (e.g. `Dealix-Signature`); for `stripe`, the event headers take its prefix "
    "(`Dealix-Event-Id`). null: the scheme's own name. Absent on a PUT: unchanged."
)
_SECRET_DESCRIPTION = (
    "The signing key; null or absent: the server generates one. `standard-webhooks`: "
    "`whsec_` + base64 of 24-64 bytes. `standard-webhooks-ed25519`: `whsk_` + base64 of a "
    "32-byte seed and its 32-byte public key. `hmac-sha256-hex` and `stripe`: any string of "
    "8-256 characters, used as it is written (a generated one looks like `whsec_...`)."
)


_POLICY_DESCRIPTION = (
    "hookpost extension: this endpoint's retry policy, ahead of its event type's retry "
    "schedule (`PUT /api/v1/event-type/{name}/retry-schedule`) and of "
    '`HOOKPOST_RETRY_SCHEDULE`. Either `{"schedule": [5, 300, 1800]}`: the delays (seconds) '
    "after the 1st, 2nd, ... failed attempt, then it gives up; or a `strategy`: "
    "`exponential` waits `initialDelaySeconds` * `multiplier`^(n-1) after the n-th failed "
    "attempt, `linear` waits `initialDelaySeconds` * n, both capped at `maxDelaySeconds`, "
    f"for `maxAttempts` attempts in all (the first included). At most {retry.MAX_ATTEMPTS} "
    f"attempts, each delay at most {retry.MAX_DELAY_S} seconds (7 days). Jitter (±20%) and "
    "a receiver's `Retry-After` apply as to the global schedule. A 410 Gone still ends the "
    "delivery. null: not set. Absent on a PUT: unchanged. See docs/receivers.md."
)
_THROTTLE_DESCRIPTION = (
    "Maximum messages per second to send to this endpoint, enforced across all workers at an "
    "even pace: excess deliveries wait, none is dropped "
    "(`GET .../rate-limit-status` shows whether it holds deliveries back)."
)
_TIMEOUT_DESCRIPTION = (
    f"hookpost extension: the total timeout of each request to this endpoint, "
    f"{MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} seconds; null: `HOOKPOST_REQUEST_TIMEOUT_S`. A worker "
    "caps it so that a request never outlives its lease (`HOOKPOST_LEASE_S` / 1.5: 40 s with "
    "the default lease), and applies a change within a few seconds. Absent on a PUT: "
    "unchanged."
)

_ORDERED_DESCRIPTION = (
    "hookpost extension: FIFO delivery. Messages are sent to this endpoint one at a time, in "
    "the order they were created; a failing one holds back those behind it until it succeeds "
    "or its retries are exhausted. The endpoint's throughput is then bounded by its latency "
    "(one request per round trip). Default false; absent on a PUT: unchanged. See "
    "docs/ordered-delivery.md."
)


class RetryPolicyIn(_Model):
    """hookpost extension: ``{"schedule": [...]}`` or a ``strategy`` with its parameters."""

    model_config = ConfigDict(extra="forbid")

    schedule: list[int] | None = Field(
        default=None, description="Delays (seconds) after each failed attempt."
    )
    strategy: Literal["exponential", "linear"] | None = None
    initial_delay_seconds: int | None = Field(
        default=None, description=f"Default {retry.DEFAULT_INITIAL_DELAY_S}."
    )
    multiplier: float | None = Field(
        default=None,
        description=f"exponential only; 1 to {retry.MAX_MULTIPLIER:g}, default "
        f"{retry.DEFAULT_MULTIPLIER:g}.",
    )
    max_delay_seconds: int | None = Field(
        default=None,
        description=f"Default {retry.DEFAULT_MAX_DELAY_S} (a day); at least `initialDelaySeconds`.",
    )
    max_attempts: int | None = Field(
        default=None,
        description=f"1 to {retry.MAX_ATTEMPTS}, default {retry.DEFAULT_MAX_ATTEMPTS}.",
    )


class RetryPolicyOut(_Model):
    schedule: list[int] | None = None
    strategy: str | None = None
    initial_delay_seconds: int | None = None
    multiplier: float | None = None
    max_delay_seconds: int | None = None
    max_attempts: int | None = None


class EndpointUpdate(_Model):
    """PUT body. Also the base of ``EndpointIn``, which adds ``secret`` and ``headers``."""

    url: EndpointUrl
    description: Description = ""
    uid: IdStr | None = None
    disabled: bool = False
    throttle_rate: Annotated[ThrottleRateIn | None, Field(description=_THROTTLE_DESCRIPTION)] = None
    event_types: Annotated[EventTypeFilter | None, Field(description=_EVENT_TYPES_DESCRIPTION)] = (
        None  # null or absent: every event type
    )
    channels: EndpointChannels | None = None  # null or absent: every channel
    metadata: Metadata = Field(default_factory=dict)
    payload_filter: Annotated[
        dict[str, Any] | None, Field(description=_PAYLOAD_FILTER_DESCRIPTION)
    ] = None
    signature_scheme: Annotated[
        SignatureSchemeName | SkipJsonSchema[None],
        NotNull,
        Field(description=_SCHEME_DESCRIPTION),
    ] = None
    signature_header: Annotated[HeaderName | None, Field(description=_HEADER_DESCRIPTION)] = None
    retry_policy: Annotated[RetryPolicyIn | None, Field(description=_POLICY_DESCRIPTION)] = None
    timeout_seconds: Annotated[int | None, Field(description=_TIMEOUT_DESCRIPTION)] = None
    ordered: Annotated[StrictBool, Field(description=_ORDERED_DESCRIPTION)] = False
    send_traceparent: SendTraceparent = None


class EndpointIn(EndpointUpdate):
    """POST body: ``EndpointUpdate`` plus the initial secret and custom headers."""

    secret: Annotated[EndpointSecret | None, Field(description=_SECRET_DESCRIPTION)] = None
    headers: Headers | None = None  # extension used by the svix SDK

    @field_validator("secret")
    @classmethod
    def _secret_fits_the_scheme(cls, secret: str | None, info: ValidationInfo) -> str | None:
        # The scheme is validated first (declared first): the kind of key depends on it.
        if secret is not None:
            check_secret_kind(secret, info.data.get("signature_scheme"))
        return secret


class EndpointPatch(_PatchModel):
    url: Annotated[EndpointUrl | SkipJsonSchema[None], NotNull] = None
    description: Annotated[Description | SkipJsonSchema[None], NotNull] = None
    uid: IdStr | None = None
    disabled: Annotated[bool | SkipJsonSchema[None], NotNull] = None
    throttle_rate: Annotated[ThrottleRatePatch | None, Field(description=_THROTTLE_DESCRIPTION)] = (
        None
    )
    event_types: Annotated[
        EventTypeFilterPatch | None, Field(description=_EVENT_TYPES_DESCRIPTION)
    ] = None  # null: every event type
    channels: EndpointChannelsPatch | None = None  # null: every channel
    metadata: Annotated[Metadata | SkipJsonSchema[None], NotNull] = None
    payload_filter: Annotated[
        dict[str, Any] | None, Field(description=_PAYLOAD_FILTER_DESCRIPTION)
    ] = None  # null: every payload
    signature_scheme: Annotated[
        SignatureSchemeName | SkipJsonSchema[None],
        NotNull,
        Field(description=_SCHEME_DESCRIPTION),
    ] = None
    signature_header: Annotated[HeaderName | None, Field(description=_HEADER_DESCRIPTION)] = None
    retry_policy: Annotated[RetryPolicyIn | None, Field(description=_POLICY_DESCRIPTION)] = None
    timeout_seconds: Annotated[int | None, Field(description=_TIMEOUT_DESCRIPTION)] = None
    ordered: Annotated[
        StrictBool | SkipJsonSchema[None], NotNull, Field(description=_ORDERED_DESCRIPTION)
    ] = None
    send_traceparent: SendTraceparent = None


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


class EndpointHealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    DISABLED = "disabled"


class EndpointDisabledReason(StrEnum):
    GONE_410 = "gone_410"
    FAILING_TOO_LONG = "failing_too_long"
    CONSECUTIVE_FAILURES = "consecutive_failures"
    MANUAL = "manual"


class EndpointHealthOut(_Model):
    """hookpost extension: how the endpoint's deliveries have been going."""

    state: EndpointHealthState = Field(
        description=(
            "`disabled`; `healthy`: the last attempt succeeded, or none was made since the "
            "endpoint was created or re-enabled; `degraded`: the last attempt failed, but one "
            "succeeded less than an hour ago; `failing`: the last attempt failed and none "
            "succeeded in the last hour."
        )
    )
    consecutive_failures: int = Field(
        description=(
            "Failed attempts since the last success (or since the endpoint was re-enabled, "
            "which resets it). `HOOKPOST_DISABLE_AFTER_FAILURES` disables the endpoint when it "
            "reaches that many."
        )
    )
    last_success_at: UtcDatetime | None = Field(
        description="When the last successful attempt was made (to within a second)."
    )
    last_failure_at: UtcDatetime | None = Field(
        description="When the last failed attempt was made."
    )
    last_status_code: int | None = Field(
        description=(
            "The HTTP status code of the last attempt; null if none was made, or if it got no "
            "HTTP response (a connection error or a timeout)."
        )
    )
    disabled_reason: EndpointDisabledReason | None = Field(
        description=(
            "Null unless disabled. `gone_410`: the endpoint answered 410 Gone; "
            "`failing_too_long`: its attempts failed for `HOOKPOST_DISABLE_AFTER_S` without a "
            "success; `consecutive_failures`: `HOOKPOST_DISABLE_AFTER_FAILURES` attempts "
            "failed in a row; `manual`: disabled through the API. Re-enabling it "
            "(`disabled: false`) resets `consecutiveFailures`."
        )
    )


class EndpointOut(_EndpointOutBase):
    metadata: dict[str, str]
    payload_filter: Annotated[
        dict[str, Any] | None, Field(description=_PAYLOAD_FILTER_DESCRIPTION)
    ] = None
    signature_scheme: Annotated[str, Field(description=_SCHEME_DESCRIPTION)] = "standard-webhooks"
    signature_header: Annotated[str | None, Field(description=_HEADER_DESCRIPTION)] = None
    retry_policy: Annotated[RetryPolicyOut | None, Field(description=_POLICY_DESCRIPTION)] = None
    timeout_seconds: Annotated[int | None, Field(description=_TIMEOUT_DESCRIPTION)] = None
    ordered: Annotated[bool, Field(description=_ORDERED_DESCRIPTION)] = False
    send_traceparent: SendTraceparent = None
    health: EndpointHealthOut


class FieldWarningOut(_Model):
    """hookpost extension: something the request did that was accepted but is probably a
    mistake."""

    field: str = Field(description="The request's field (camelCase) the warning is about.")
    message: str


class EndpointWrittenOut(EndpointOut):
    """The answer to an endpoint's creation or change: ``EndpointOut`` plus hookpost's
    ``warnings`` (the svix SDK ignores the field)."""

    warnings: list[FieldWarningOut] = Field(
        default_factory=list,
        description=(
            "hookpost extension. Without `HOOKPOST_STRICT_EVENT_TYPES`, one warning on "
            "`eventTypes` for each entry that names an event type the catalog lacks or "
            "archived, or a pattern that matches no live event type: the endpoint is saved, "
            "but receives nothing for that entry. Empty otherwise (strict mode refuses such "
            "entries with a 422 instead)."
        ),
    )


class EndpointCreatedOut(EndpointWrittenOut):
    """The answer to an endpoint's creation: also its signing secret."""

    secret: str = Field(
        description=(
            "hookpost extension: the endpoint's signing secret (`whsec_...`). With "
            "`HOOKPOST_REVEAL_SECRETS=0` this answer and the answer to a rotation are the only "
            "ones that show it: `GET .../secret` answers 403."
        )
    )


class MessageEndpointOut(_EndpointOutBase):
    """An endpoint a message was (or is to be) sent to, with that delivery's status."""

    status: MessageStatus
    status_text: MessageStatusText
    next_attempt: UtcDatetime | None = None


class EndpointSecretOut(_Model):
    key: Annotated[
        str,
        Field(
            description=(
                "The endpoint's current signing key; for `standard-webhooks-ed25519`, its "
                "public key `whpk_...` (the `whsk_` signing key never leaves the server)."
            )
        ),
    ]


class EndpointSecretRotateIn(_Model):
    key: Annotated[
        EndpointSecret | None,
        Field(
            description=(
                "The new key, of the kind the endpoint's `signatureScheme` signs with (see "
                "`secret` on creation); null or absent: the server generates one."
            )
        ),
    ] = None
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
            json_schema_extra={"items": {"type": "string", **HEADER_NAME_SCHEMA}},
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
        return dedupe([*names, *self.delete_headers])


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


class EndpointThrottleRateStatusOut(_Model):
    """Svix's rate-limit status: ``RateLimited`` while the endpoint's throttleRate holds due
    deliveries back; ``throttledSince``: the due time of the oldest one waiting."""

    status: Literal["Ok", "RateLimited"]
    throttled_since: datetime | None = None
