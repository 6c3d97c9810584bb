"""What callers hand the services: new resources, changes to existing ones, list queries.

A ``*Changes`` holds only the fields a PATCH sent; the rest stay ``UNSET`` (which differs from
None: None clears a nullable field).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final, Self

from hookpost.domain.models import AttemptStatus
from hookpost.domain.retry import RetryPolicy


class Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True)
class Changes:
    def given(self) -> dict[str, Any]:
        """The fields that were set, by name."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not UNSET:
                out[f.name] = value
        return out

    @classmethod
    def replacing(cls, new: object) -> Self:
        """Every field set as ``new`` (a ``New*``) has it: a PUT. Fields that are not
        changes (a new endpoint's secret and headers) are left alone."""
        return cls(**{f.name: getattr(new, f.name) for f in fields(cls)})


# --------------------------------------------------------------------------- applications


@dataclass(frozen=True, slots=True)
class NewApp:
    name: str
    uid: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    throttle_rate: int | None = None


@dataclass(frozen=True, slots=True)
class AppChanges(Changes):
    name: str | Unset = UNSET
    uid: str | Unset | None = UNSET
    metadata: dict[str, str] | Unset = UNSET
    throttle_rate: int | Unset | None = UNSET


# --------------------------------------------------------------------------- event types


@dataclass(frozen=True, slots=True)
class NewEventType:
    name: str
    description: str = ""
    schemas: dict[str, Any] | None = None
    archived: bool = False
    deprecated: bool = False
    feature_flag: str | None = None


@dataclass(frozen=True, slots=True)
class EventTypeChanges(Changes):
    description: str | Unset = UNSET
    schemas: dict[str, Any] | Unset | None = UNSET
    archived: bool | Unset = UNSET
    deprecated: bool | Unset = UNSET
    feature_flag: str | Unset | None = UNSET


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    url: str
    description: str = ""
    uid: str | None = None
    disabled: bool = False
    throttle_rate: int | None = None
    event_types: list[str] | None = None  # None or empty: every event type
    channels: list[str] | None = None  # None or empty: every channel
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    secret: str | None = None  # None: a generated one
    # None: every payload (domain.filters). UNSET: not given, which a replace (PUT) leaves
    # as it is: the svix SDKs do not know the field, and their PUT must not drop it.
    payload_filter: dict[str, Any] | Unset | None = UNSET
    # Extensions a Svix client does not send: UNSET keeps them as they are on a PUT (the
    # default scheme when created).
    signature_scheme: str | Unset = UNSET
    signature_header: str | Unset | None = UNSET
    retry_policy: RetryPolicy | Unset | None = UNSET
    timeout_s: int | Unset | None = UNSET
    ordered: bool | Unset = UNSET  # False when created without it
    send_traceparent: bool | Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class EndpointChanges(Changes):
    url: str | Unset = UNSET
    description: str | Unset = UNSET
    uid: str | Unset | None = UNSET
    disabled: bool | Unset = UNSET
    throttle_rate: int | Unset | None = UNSET
    event_types: list[str] | Unset | None = UNSET
    channels: list[str] | Unset | None = UNSET
    metadata: dict[str, str] | Unset = UNSET
    payload_filter: dict[str, Any] | Unset | None = UNSET
    signature_scheme: str | Unset = UNSET
    signature_header: str | Unset | None = UNSET
    retry_policy: RetryPolicy | Unset | None = UNSET
    timeout_s: int | Unset | None = UNSET
    ordered: bool | Unset = UNSET
    send_traceparent: bool | Unset | None = UNSET


# --------------------------------------------------------------------------- list queries


@dataclass(frozen=True, slots=True)
class AttemptQuery:
    """Which attempts to list. The endpoint may be named by id or uid, the message by id or
    eventId. ``status_code_class`` and ``channel`` are not store filters: the service applies
    them to each page the store returns."""

    endpoint: str | None = None
    message: str | None = None
    statuses: frozenset[AttemptStatus] | None = None  # None: any; empty: none can match
    event_types: Sequence[str] | None = None
    before: int | None = None  # created strictly before (ms)
    after: int | None = None  # created strictly after (ms)
    status_code_class: int | None = None  # 0 (no HTTP response), 100, 200, ... 500
    channel: str | None = None  # the attempt's message was sent on this channel


def status_code_class(code: int) -> int:
    """100 for 1xx, 200 for 2xx, ...; 0 when no HTTP response was received."""
    return 0 if code < 100 else (code // 100) * 100
