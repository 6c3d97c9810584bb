"""Messages and their attempts."""

from typing import Annotated, Any

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
)

from hookpost.api.fields import (
    MAX_PAYLOAD_RETENTION_DAYS,
    MAX_PAYLOAD_RETENTION_HOURS,
    MIN_PAYLOAD_RETENTION_DAYS,
    IdStr,
    MessageChannels,
    UtcDatetime,
)
from hookpost.api.schemas.apps import ApplicationIn
from hookpost.api.schemas.base import (
    MessageAttemptTriggerType,
    MessageStatus,
    MessageStatusText,
    _Model,
)

# --------------------------------------------------------------------------- messages


class MessageIn(_Model):
    event_type: IdStr
    payload: dict[str, Any]  # must be a JSON object
    event_id: IdStr | None = None  # idempotency key
    channels: MessageChannels | None = None
    application: ApplicationIn | None = None  # create the app on the fly if it does not exist
    # How long the payload is kept: days, or hours (one of them; neither, or null: the
    # deployment's HOOKPOST_PAYLOAD_RETENTION_DAYS). See domain.retention.
    payload_retention_period: Annotated[
        int | None,
        Field(
            ge=MIN_PAYLOAD_RETENTION_DAYS,
            le=MAX_PAYLOAD_RETENTION_DAYS,
            description=(
                "Days to keep the payload (and the attempts' response bodies) before they are "
                "erased; null or absent: the server's default (HOOKPOST_PAYLOAD_RETENTION_DAYS,"
                " 90). Mutually exclusive with `payloadRetentionHours`."
            ),
        ),
    ] = None
    payload_retention_hours: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_PAYLOAD_RETENTION_HOURS,
            description=(
                "Hours to keep the payload. Mutually exclusive with `payloadRetentionPeriod`."
            ),
        ),
    ] = None

    @field_validator("payload_retention_hours")
    @classmethod
    def _one_period(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("payload_retention_period") is not None:
            raise ValueError("give payloadRetentionPeriod or payloadRetentionHours, not both")
        return value


class MessageOut(_Model):
    id: str
    event_type: str
    event_id: str | None = None
    payload: dict[str, Any]
    channels: list[str] | None = None
    timestamp: UtcDatetime
    payload_sha256: str | None = Field(
        default=None,
        description=(
            "hookpost extension: the hex SHA-256 of the exact payload bytes stored, signed and "
            "sent (what a receiver gets as the request body), recorded when the message was "
            "created and kept after its content is expunged. null for messages stored before "
            "hookpost recorded it."
        ),
    )
    expunged: bool = Field(
        default=False,
        description=(
            "hookpost extension: true once the payload was erased, by an expunge or when its "
            "retention period ended (`payloadRetentionPeriod`/`payloadRetentionHours`); "
            '`payload` then reads `{}` and the attempts\' `response` `""`.'
        ),
    )


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


class MessageAttemptHeadersOut(_Model):
    """The headers an attempt sent and, when it failed with an answer, the answer's headers
    (Svix's shape, plus ``recorded``)."""

    sent_headers: dict[str, str] = Field(
        description="The request's headers as hookpost set them (the HTTP client adds `host`, "
        "`content-length`, `accept` and `accept-encoding`). A sensitive endpoint header "
        "(`Authorization`, `*-Token` ...) is never stored: its name is in `sensitive` instead."
    )
    response_headers: list[Annotated[list[str], Field(min_length=2, max_length=2)]] | None = Field(
        description="A non-2xx answer's headers as `[name, value]` pairs, in order, kept up to "
        "2 KiB and 32 headers, sensitive ones (`set-cookie` ...) left out; null for a 2xx "
        "answer, no answer, or an attempt recorded before hookpost kept headers."
    )
    sensitive: list[str] = Field(
        description="Names of the sensitive endpoint headers that were sent, values redacted."
    )
    recorded: bool = Field(
        description="hookpost extension. False for an attempt recorded before hookpost stored "
        "headers (migration 0023): `sentHeaders` then holds only `content-type` and "
        "`user-agent`, which every hookpost version sent; the signature and endpoint headers "
        "of such an attempt are not known."
    )
