"""Recovery, replays and the other background tasks, and the small bodies beside them."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
)

from hookpost.api.fields import (
    IdStr,
    UtcDatetime,
)
from hookpost.api.schemas.base import (
    BackgroundTaskStatus,
    BackgroundTaskType,
    MessageStatus,
    _Model,
)


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


class ReplayIn(RecoverIn):
    pass


class ReplayOut(RecoverOut):
    pass


class BulkReplayIn(RecoverIn):
    event_types: list[IdStr] | None = None  # exact names; null: every type
    channel: Annotated[str, Field(max_length=128)] | None = None
    tag: Annotated[str, Field(max_length=128)] | None = None
    status: MessageStatus | None = None
    status_code_class: int | None = None
    dry_run: Annotated[
        bool,
        Field(
            description=(
                "hookpost extension: only count the deliveries the replay would send; the "
                'finished task\'s data is `{"dryRun": true, "messagesMatched": n}`.'
            )
        ),
    ] = False


class BackgroundTaskOut(RecoverOut):
    data: dict[str, Any]


class AppUsageStatsIn(_Model):
    since: UtcDatetime
    until: UtcDatetime
    app_ids: Annotated[list[IdStr], Field(max_length=100)] | None = None  # each is looked up

    @field_validator("until")
    @classmethod
    def _after_since(cls, value: datetime, info: ValidationInfo) -> datetime:
        since = info.data.get("since")
        if since is not None and value <= since:
            raise ValueError("must be later than 'since'")
        return value


class AppUsageStatsOut(RecoverOut):
    unresolved_app_ids: list[str]


class AggregateEventTypesOut(RecoverOut):
    pass


class ExpungeAllContentsOut(RecoverOut):
    pass


class BulkExpungeContentsIn(_Model):
    # at most 100 per request: each is its own write (a 422 naming `ids` beyond)
    ids: Annotated[list[IdStr], Field(max_length=100)] = Field(default_factory=list)


class BulkExpungeStatus(StrEnum):
    EXPUNGED = "expunged"
    NOT_FOUND = "not-found"


class BulkExpungeContentsOut(_Model):
    results: dict[str, BulkExpungeStatus]


class MessageRawPayloadOut(_Model):
    payload: str


class CountOut(_Model):
    count: int
    approximated: bool


class ApplicationTokenExpireIn(_Model):
    expiry: Annotated[int, Field(ge=0, le=259200)] | None = None
    session_ids: Annotated[list[str], Field(max_length=1000)] | None = None


class EventExampleIn(_Model):
    event_type: IdStr
    # Extension used by the svix SDK: which of the schema's examples to send (default: first).
    example_index: Annotated[int, Field(ge=0)] = 0
