"""Operational webhook endpoints."""

from typing import Annotated

from pydantic import (
    Field,
    field_validator,
)

from hookpost.api.fields import (
    Description,
    EndpointSecret,
    EndpointUrl,
    EventTypeFilter,
    Headers,
    IdStr,
    Metadata,
    ThrottleRateIn,
    UtcDatetime,
    check_secret_kind,
)
from hookpost.api.schemas.base import _Model
from hookpost.api.schemas.endpoints import _SECRET_DESCRIPTION

# --------------------------------------------------------------------------- operational webhooks

_OPERATIONAL_TYPES = (
    "Which operational events the endpoint receives (`endpoint.created`, `endpoint.updated`, "
    "`endpoint.deleted`, `endpoint.disabled`, `endpoint.enabled`, `message.attempt.exhausted`, "
    "`message.attempt.failing`, `message.attempt.recovered`, `background_task.finished`); "
    "null or absent: every one. Another name is a 422."
)


class OperationalWebhookEndpointUpsertIn(_Model):
    """PUT body; ``OperationalWebhookEndpointIn`` adds the secret and the headers."""

    url: EndpointUrl
    description: Description = ""
    uid: IdStr | None = None
    disabled: bool = False
    throttle_rate: ThrottleRateIn | None = None
    event_types: Annotated[EventTypeFilter | None, Field(description=_OPERATIONAL_TYPES)] = None
    metadata: Metadata = Field(default_factory=dict)


class OperationalWebhookEndpointIn(OperationalWebhookEndpointUpsertIn):
    secret: Annotated[EndpointSecret | None, Field(description=_SECRET_DESCRIPTION)] = None
    headers: Headers | None = None

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, secret: str | None) -> str | None:
        if secret is not None:
            check_secret_kind(secret, None)  # signed with the default scheme
        return secret


class OperationalWebhookEndpointOut(_Model):
    id: str
    url: str
    description: str
    uid: str | None = None
    disabled: bool = False
    throttle_rate: int | None = None
    event_types: list[str] | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    metadata: dict[str, str]
