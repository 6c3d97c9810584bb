"""Which endpoints receive a message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hookpost.domain.filters import Payload, payload_matches, stored_filter
from hookpost.domain.models import Endpoint

ANY_EVENT_TYPE = "*"
PREFIX_SUFFIX = ".*"


def is_event_type_pattern(name: str) -> bool:
    """``*`` (every type) or ``prefix.*`` (every type that starts with ``prefix.``)."""
    return name == ANY_EVENT_TYPE or name.endswith(PREFIX_SUFFIX)


def event_type_matches(pattern: str, event_type: str) -> bool:
    """An endpoint's ``eventTypes`` entry against a message's type: an exact name, ``*``, or
    ``prefix.*``, which matches ``prefix.x`` and ``prefix.x.y`` but not ``prefix`` itself."""
    if pattern == ANY_EVENT_TYPE:
        return True
    if pattern.endswith(PREFIX_SUFFIX):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def types_match(endpoint_types: Sequence[str] | None, event_type: str) -> bool:
    """No type filter, or one of its entries (a name or a pattern) matches the type."""
    if not endpoint_types or event_type in endpoint_types:
        return True
    return _any_pattern_matches(endpoint_types, event_type)


def _any_pattern_matches(endpoint_types: Sequence[str], event_type: str) -> bool:
    for p in endpoint_types:
        if is_event_type_pattern(p) and event_type_matches(p, event_type):
            return True
    return False


def filters_match(
    endpoint_types: Sequence[str] | None,
    endpoint_channels: Sequence[str] | None,
    event_type: str,
    channels: Sequence[str] | None,
    payload_filter: str | None = None,
    payload: Payload | None = None,
) -> bool:
    """(no type filter or a name or pattern matches the type) and (no channel filter or the
    channels overlap) and (no payload filter, or it matches the payload). ``payload_filter``
    is the endpoint's stored filter (JSON text); ``payload`` is needed when there is one."""
    # types_match inlined: this runs once per endpoint and message on the send path.
    if (
        endpoint_types
        and event_type not in endpoint_types
        and not _any_pattern_matches(endpoint_types, event_type)
    ):
        return False
    if endpoint_channels and (not channels or set(endpoint_channels).isdisjoint(channels)):
        return False
    return payload_filter is None or (
        payload is not None and payload_matches(payload_filter, payload)
    )


def endpoint_matches(
    endpoint: Endpoint,
    event_type: str,
    channels: Sequence[str] | None,
    payload: Payload | None = None,
) -> bool:
    return not endpoint.disabled and filters_match(
        endpoint.event_types,
        endpoint.channels,
        event_type,
        channels,
        stored_filter(endpoint.payload_filter),
        payload,
    )


def matching_endpoints(
    endpoints: Iterable[Endpoint],
    event_type: str,
    channels: Sequence[str] | None,
    payload: Payload | None = None,
) -> list[Endpoint]:
    return [ep for ep in endpoints if endpoint_matches(ep, event_type, channels, payload)]
