"""Applications, app-portal access, API tokens and event types."""

from typing import Annotated

from pydantic import (
    Field,
)
from pydantic.json_schema import SkipJsonSchema

from hookpost.api.fields import (
    MAX_PORTAL_TOKEN_EXPIRY_SECONDS,
    MAX_TOKEN_EXPIRY_SECONDS,
    MIN_PORTAL_TOKEN_EXPIRY_SECONDS,
    AppName,
    Description,
    FeatureFlags,
    IdStr,
    JsonSchemas,
    Metadata,
    NotNull,
    ThrottleRateIn,
    ThrottleRatePatch,
    TokenName,
    UtcDatetime,
)
from hookpost.api.schemas.base import _Model, _PatchModel
from hookpost.domain import retry

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


class ApiTokenIn(_Model):
    """A hookpost extension: ``POST /api/v1/auth/token``."""

    name: TokenName = ""
    # The application (id or uid) the token is scoped to; null: an admin token.
    app_id: IdStr | None = None
    # Lifetime in seconds; null: until revoked.
    expiry: Annotated[int, Field(ge=1, le=MAX_TOKEN_EXPIRY_SECONDS)] | None = None


class ApiTokenOut(_Model):
    """A token's record: never the token itself (only its hash is stored)."""

    id: str
    name: str
    app_id: str | None = None  # null: an admin token
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = None
    # The token's last characters ("...wxyz"), to tell tokens apart; null for tokens made
    # before hookpost stored them, and for tokens too short to spare them.
    hint: str | None = None


class ApiTokenCreatedOut(ApiTokenOut):
    token: str  # shown this once


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


class DurationIn(_Model):
    secs: int = Field(ge=0)
    nanos: int = Field(default=0, ge=0, le=999_999_999)


class RetryScheduleInOut(_Model):
    """Svix's per-event-type retry schedule: the delays after the 1st, 2nd, ... failed
    attempt. hookpost takes each delay as a Duration (``{"secs", "nanos"}``, nanos rounded
    up to a whole second) or as whole seconds, and answers with Durations."""

    retry_schedule: list[DurationIn | int] | None = Field(
        default=None,
        description=(
            "The delays; null or absent: none set (the endpoint's `retryPolicy`, else "
            f"`HOOKPOST_RETRY_SCHEDULE`, applies). At most {retry.MAX_ATTEMPTS - 1} delays, "
            f"each at most {retry.MAX_DELAY_S} seconds. An endpoint's `retryPolicy` takes "
            "precedence; workers apply a change within a few seconds."
        ),
    )


class EventTypeOut(_Model):
    name: str
    description: str
    archived: bool = False
    deprecated: bool
    schemas: JsonSchemas | None = None
    feature_flag: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
