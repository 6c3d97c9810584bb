"""Which endpoints receive a message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


def filters_match(
    endpoint_types: Sequence[str] | None,
    endpoint_channels: Sequence[str] | None,
    event_type: str,
    channels: Sequence[str] | None,
) -> bool:
    """(no type filter or the type is listed) and (no channel filter or the channels overlap)."""
    if endpoint_types and event_type not in endpoint_types:
        return False
    if endpoint_channels:
        return bool(channels) and not set(endpoint_channels).isdisjoint(channels or ())
    return True


def endpoint_matches(endpoint: Endpoint, event_type: str, channels: Sequence[str] | None) -> bool:
    return not endpoint.disabled and filters_match(
        endpoint.event_types, endpoint.channels, event_type, channels
    )


def matching_endpoints(
    endpoints: Iterable[Endpoint], event_type: str, channels: Sequence[str] | None
) -> list[Endpoint]:
    return [ep for ep in endpoints if endpoint_matches(ep, event_type, channels)]
