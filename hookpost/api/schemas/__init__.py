"""Request and response bodies of the Svix-compatible REST API.

Every model is named after its component in ``reference/svix-openapi.json`` and carries the same
JSON fields. Python attributes are snake_case; the JSON names are their camelCase aliases, and
both spellings are accepted on input. The package imports only pydantic, the standard library
and its field types (``api.fields``): the API layer maps between these models and the domain.
Conventions, limits and svix SDK extensions: see docs/api-conventions.md.
"""

from hookpost.api.fields import CHANNEL_PATTERN as CHANNEL_PATTERN
from hookpost.api.schemas.apps import (
    ApiTokenCreatedOut,
    ApiTokenIn,
    ApiTokenOut,
    ApplicationIn,
    ApplicationOut,
    ApplicationPatch,
    AppPortalAccessIn,
    AppPortalAccessOut,
    EventTypeIn,
    EventTypeOut,
    EventTypePatch,
    EventTypeUpdate,
    RetryScheduleInOut,
)
from hookpost.api.schemas.base import (
    BackgroundTaskStatus,
    BackgroundTaskType,
    EmptyResponse,
    HttpErrorOut,
    HTTPValidationError,
    ListResponse,
    MessageAttemptTriggerType,
    MessageStatus,
    MessageStatusText,
    ValidationErrorItem,
    status_text,
)
from hookpost.api.schemas.endpoints import (
    EndpointCreatedOut,
    EndpointHeadersIn,
    EndpointHeadersOut,
    EndpointHeadersPatchIn,
    EndpointHealthOut,
    EndpointHealthState,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointSecretOut,
    EndpointSecretRotateIn,
    EndpointStats,
    EndpointThrottleRateStatusOut,
    EndpointUpdate,
    EndpointWrittenOut,
    FieldWarningOut,
    MessageEndpointOut,
    RetryPolicyIn,
)
from hookpost.api.schemas.messages import (
    EndpointMessageOut,
    MessageAttemptHeadersOut,
    MessageAttemptOut,
    MessageIn,
    MessageOut,
)
from hookpost.api.schemas.operational import (
    OperationalWebhookEndpointIn,
    OperationalWebhookEndpointOut,
    OperationalWebhookEndpointUpsertIn,
)
from hookpost.api.schemas.tasks import (
    AggregateEventTypesOut,
    ApplicationTokenExpireIn,
    AppUsageStatsIn,
    AppUsageStatsOut,
    BackgroundTaskOut,
    BulkExpungeContentsIn,
    BulkExpungeContentsOut,
    BulkExpungeStatus,
    BulkReplayIn,
    CountOut,
    EventExampleIn,
    ExpungeAllContentsOut,
    MessageRawPayloadOut,
    RecoverIn,
    RecoverOut,
    ReplayIn,
    ReplayOut,
)

__all__ = [
    "AggregateEventTypesOut",
    "ApiTokenCreatedOut",
    "ApiTokenIn",
    "ApiTokenOut",
    "AppPortalAccessIn",
    "AppPortalAccessOut",
    "AppUsageStatsIn",
    "AppUsageStatsOut",
    "ApplicationIn",
    "ApplicationOut",
    "ApplicationPatch",
    "ApplicationTokenExpireIn",
    "BackgroundTaskOut",
    "BackgroundTaskStatus",
    "BackgroundTaskType",
    "BulkExpungeContentsIn",
    "BulkExpungeContentsOut",
    "BulkExpungeStatus",
    "BulkReplayIn",
    "CountOut",
    "EmptyResponse",
    "EndpointCreatedOut",
    "EndpointHeadersIn",
    "EndpointHeadersOut",
    "EndpointHeadersPatchIn",
    "EndpointHealthOut",
    "EndpointHealthState",
    "EndpointIn",
    "EndpointMessageOut",
    "EndpointOut",
    "EndpointPatch",
    "EndpointSecretOut",
    "EndpointSecretRotateIn",
    "EndpointStats",
    "EndpointThrottleRateStatusOut",
    "EndpointUpdate",
    "EndpointWrittenOut",
    "EventExampleIn",
    "EventTypeIn",
    "EventTypeOut",
    "EventTypePatch",
    "EventTypeUpdate",
    "ExpungeAllContentsOut",
    "FieldWarningOut",
    "HTTPValidationError",
    "HttpErrorOut",
    "ListResponse",
    "ListResponseApiTokenOut",
    "ListResponseApplicationOut",
    "ListResponseBackgroundTaskOut",
    "ListResponseEndpointMessageOut",
    "ListResponseEndpointOut",
    "ListResponseEventTypeOut",
    "ListResponseMessageAttemptOut",
    "ListResponseMessageEndpointOut",
    "ListResponseMessageOut",
    "ListResponseOperationalWebhookEndpointOut",
    "MessageAttemptHeadersOut",
    "MessageAttemptOut",
    "MessageAttemptTriggerType",
    "MessageEndpointOut",
    "MessageIn",
    "MessageOut",
    "MessageRawPayloadOut",
    "MessageStatus",
    "MessageStatusText",
    "OperationalWebhookEndpointIn",
    "OperationalWebhookEndpointOut",
    "OperationalWebhookEndpointUpsertIn",
    "RecoverIn",
    "RecoverOut",
    "ReplayIn",
    "ReplayOut",
    "RetryPolicyIn",
    "RetryScheduleInOut",
    "ValidationErrorItem",
    "status_text",
]

# --------------------------------------------------------------------------- list envelopes

ListResponseApplicationOut = ListResponse[ApplicationOut]
ListResponseApiTokenOut = ListResponse[ApiTokenOut]
ListResponseEventTypeOut = ListResponse[EventTypeOut]
ListResponseEndpointOut = ListResponse[EndpointOut]
ListResponseMessageOut = ListResponse[MessageOut]
ListResponseEndpointMessageOut = ListResponse[EndpointMessageOut]
ListResponseMessageEndpointOut = ListResponse[MessageEndpointOut]
ListResponseMessageAttemptOut = ListResponse[MessageAttemptOut]
ListResponseOperationalWebhookEndpointOut = ListResponse[OperationalWebhookEndpointOut]
ListResponseBackgroundTaskOut = ListResponse[BackgroundTaskOut]
