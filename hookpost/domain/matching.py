"""Which endpoints receive a message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hookpost.domain.models import Endpoint


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
