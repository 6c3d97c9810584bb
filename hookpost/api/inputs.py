"""REST request bodies (``api.schemas``) turned into the services' inputs
(``domain.inputs``): for the routes, and for the library (``hookpost.library``), which takes
the same models, so that a field means the same thing whichever way it comes in."""

from __future__ import annotations

from hookpost.api.schemas import (
    ApplicationIn,
    ApplicationPatch,
    EndpointPatch,
    EndpointUpdate,
    EventTypePatch,
    EventTypeUpdate,
    RetryPolicyIn,
)
from hookpost.domain.inputs import (
    UNSET,
    AppChanges,
    EndpointChanges,
    EventTypeChanges,
    NewApp,
    NewEndpoint,
    NewEventType,
)
from hookpost.domain.retry import RetryPolicy, policy_from_dict


def new_app(body: ApplicationIn) -> NewApp:
    return NewApp(body.name, body.uid, dict(body.metadata), body.throttle_rate)


def app_changes(body: ApplicationPatch) -> AppChanges:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("throttle_rate") == 0:  # the reference's Patch allows 0: no limit
        changes["throttle_rate"] = None
    return AppChanges(**changes)


def new_event_type(name: str, body: EventTypeUpdate) -> NewEventType:
    return NewEventType(
        name=name,
        description=body.description,
        schemas=body.schemas,
        archived=body.archived,
        deprecated=body.deprecated,
        feature_flag=body.feature_flag,
    )


def event_type_changes(body: EventTypePatch) -> EventTypeChanges:
    return EventTypeChanges(**body.model_dump(exclude_unset=True))


def new_endpoint(
    body: EndpointUpdate, headers: dict[str, str] | None = None, secret: str | None = None
) -> NewEndpoint:
    """PUT's body (``EndpointUpdate``); POST's adds the headers and the secret."""
    sent = body.model_fields_set
    return NewEndpoint(
        url=body.url,
        description=body.description,
        uid=body.uid,
        disabled=body.disabled,
        throttle_rate=body.throttle_rate,
        event_types=body.event_types,
        channels=body.channels,
        metadata=dict(body.metadata),
        headers=headers or {},
        secret=secret,
        # Absent from a PUT: left as it is (extensions the svix SDKs do not send).
        payload_filter=body.payload_filter if "payload_filter" in sent else UNSET,
        signature_scheme=body.signature_scheme or UNSET,
        signature_header=body.signature_header if "signature_header" in sent else UNSET,
        retry_policy=retry_policy(body.retry_policy) if "retry_policy" in sent else UNSET,
        timeout_s=body.timeout_seconds if "timeout_seconds" in sent else UNSET,
        ordered=body.ordered if "ordered" in sent else UNSET,
        send_traceparent=body.send_traceparent if "send_traceparent" in sent else UNSET,
    )


def retry_policy(body: RetryPolicyIn | None) -> RetryPolicy | None:
    """The domain's policy; InvalidInput (422) names the field, e.g. retryPolicy.maxAttempts."""
    if body is None:
        return None
    return policy_from_dict(body.model_dump(by_alias=True, exclude_unset=True))


def endpoint_changes(body: EndpointPatch) -> EndpointChanges:
    changes = body.model_dump(exclude_unset=True, exclude={"retry_policy", "timeout_seconds"})
    sent = body.model_fields_set
    if "retry_policy" in sent:
        changes["retry_policy"] = retry_policy(body.retry_policy)
    if "timeout_seconds" in sent:
        changes["timeout_s"] = body.timeout_seconds
    if changes.get("throttle_rate") == 0:  # the reference's Patch allows 0: no limit
        changes["throttle_rate"] = None
    for key in ("event_types", "channels"):  # an empty filter means "everything"
        if key in changes and not changes[key]:
            changes[key] = None
    return EndpointChanges(**changes)
