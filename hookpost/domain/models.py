"""The domain model: plain data, no I/O.

Times are integer milliseconds since the Unix epoch (UTC) throughout the domain and the
stores: they compare and index identically on SQLite and PostgreSQL, and the API layer turns
them into ISO-8601 strings at the edge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from hookpost.domain.retry import RetryPolicy

T = TypeVar("T")


class DeliveryStatus(enum.IntEnum):
    """Stored as small integers; order has no meaning."""

    PENDING = 0
    SENDING = 1
    SUCCEEDED = 2
    FAILED = 3
    CANCELED = 4


class AttemptStatus(enum.IntEnum):
    SUCCESS = 0
    FAIL = 1


class Trigger(enum.IntEnum):
    SCHEDULED = 0
    MANUAL = 1


@dataclass(slots=True)
class Application:
    id: str
    name: str
    uid: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    throttle_rate: int | None = None
    created_at: int = 0
    updated_at: int = 0


@dataclass(slots=True)
class EventType:
    name: str
    description: str = ""
    schemas: dict[str, Any] | None = None
    archived: bool = False
    deprecated: bool = False
    feature_flag: str | None = None
    created_at: int = 0
    updated_at: int = 0
    # Svix's per-event-type retry schedule (seconds); None: the global one.
    retry_schedule: list[int] | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One signing secret. The current key has no expiry; rotated-out keys sign until expiry."""

    secret: str
    expires_at: int | None = None

    def active(self, now_ms: int) -> bool:
        return self.expires_at is None or self.expires_at > now_ms


@dataclass(slots=True)
class Endpoint:
    id: str
    app_id: str
    url: str
    description: str = ""
    uid: str | None = None
    disabled: bool = False
    event_types: list[str] | None = None  # None or empty: every event type
    channels: list[str] | None = None  # None or empty: every channel
    headers: dict[str, str] = field(default_factory=dict)
    # None: every payload; else a filter of domain.filters (validated by the service).
    payload_filter: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    keys: list[SigningKey] = field(default_factory=list)  # keys[0] is the current key
    throttle_rate: int | None = None
    # Per-endpoint delivery options; None means "use the deployment default".
    signature_scheme: str = "standard-webhooks"  # domain.signing.SCHEME_NAMES
    signature_header: str | None = None  # renames the hex/stripe signature header
    # retry_policy.delays(), the form the claim reads; a row stored before retry_policy
    # existed may have this alone (read as a schedule policy).
    retry_schedule: list[int] | None = None
    retry_policy: RetryPolicy | None = None
    timeout_s: int | None = None  # the total request timeout
    ordered: bool = False  # FIFO, one delivery at a time (domain.ordering)
    # With tracing on, send the attempt's `traceparent` (None: HOOKPOST_SEND_TRACEPARENT)
    send_traceparent: bool | None = None
    # Health, maintained by the store when attempts are recorded.
    consecutive_failures: int = 0
    first_failure_at: int | None = None
    disabled_reason: str | None = None  # domain.disabled.DISABLED_REASONS
    last_success_at: int | None = None  # at most domain.health.SUCCESS_REFRESH_MS behind
    last_failure_at: int | None = None
    last_status_code: int | None = None  # the last attempt's (0: no HTTP response)
    created_at: int = 0
    updated_at: int = 0

    @property
    def secret(self) -> str:
        return self.keys[0].secret


@dataclass(slots=True)
class Message:
    id: str
    app_id: str
    event_type: str
    payload: bytes  # the exact JSON bytes that are signed and sent
    event_id: str | None = None
    channels: list[str] | None = None
    created_at: int = 0
    expunged: bool = False
    # domain.provenance.payload_sha256 of ``payload`` as created; kept when it is expunged.
    # None for messages stored before it was recorded (migration 0009).
    payload_sha256: str | None = None
    # domain.retention: when the payload is erased (None: kept until the message is deleted).
    payload_expires_at: int | None = None


@dataclass(slots=True)
class Delivery:
    """One message x one endpoint: the unit of work the worker schedules."""

    id: int
    app_id: str
    message_id: str
    endpoint_id: str
    status: DeliveryStatus
    attempts: int = 0
    next_attempt_at: int | None = None
    updated_at: int = 0


@dataclass(slots=True)
class Attempt:
    id: str
    app_id: str
    message_id: str
    endpoint_id: str
    url: str
    status: AttemptStatus
    trigger: Trigger
    response_status_code: int  # 0 when no HTTP response was received
    response: str  # truncated response body, or the error text
    duration_ms: int
    error: str | None = None
    created_at: int = 0
    # The request's headers as sent (and a failed answer's), in domain.attempt_headers' stored
    # form; None for attempts recorded before hookpost kept them.
    headers: str | None = None


@dataclass(slots=True)
class ClaimedDelivery:
    """Everything the worker needs to send one delivery, read in the claim query."""

    delivery_id: int
    lease: str  # proves ownership when the result is written
    app_id: str
    message_id: str
    endpoint_id: str
    event_type: str
    payload: bytes
    msg_created_at: int
    attempts: int  # attempts made before this one
    trigger: Trigger
    url: str
    headers: dict[str, str]
    keys: list[SigningKey]
    signature_scheme: str
    retry_schedule: list[int] | None
    due_at: int = 0  # its place in its endpoint's queue when claimed
    signature_header: str | None = None
    ordered: bool = False  # its endpoint's, as claimed (domain.ordering)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """The options the claim does not read, which the worker caches (docs/decisions/0027):
    the event types' retry schedules and the endpoints' request timeouts, where set."""

    type_schedules: dict[str, tuple[int, ...]] = field(default_factory=dict)
    endpoint_timeouts: dict[str, int] = field(default_factory=dict)
    endpoint_traceparent: dict[str, bool] = field(default_factory=dict)  # sendTraceparent


@dataclass(slots=True)
class AttemptResult:
    """The outcome of one attempt and the delivery's next state, written in one transaction."""

    attempt: Attempt
    delivery_id: int
    lease: str
    next_status: DeliveryStatus
    next_attempt_at: int | None
    disable_endpoint_reason: str | None = None  # domain.disabled.GONE_410
    attempts: int = 0  # the delivery's attempt count after this attempt
    ordered: bool = False  # of an ordered endpoint: finishing it lets the next one go


@dataclass(slots=True)
class EndpointStats:
    pending: int = 0
    sending: int = 0
    success: int = 0
    fail: int = 0
    canceled: int = 0


@dataclass(slots=True)
class ApiToken:
    id: str
    token_hash: str
    app_id: str | None  # None: an admin token
    name: str = ""
    created_at: int = 0
    expires_at: int | None = None
    hint: str | None = None  # the token's last characters (domain.permissions.token_hint)

    def expired(self, now_ms: int) -> bool:
        return self.expires_at is not None and self.expires_at <= now_ms


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Keyset paging on the id column: stable while new rows arrive."""

    limit: int = 50
    iterator: str | None = None  # exclusive bound
    backwards: bool = False  # walk back towards the start (a prevIterator)
    descending: bool = False  # the list's natural order


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    done: bool  # no more items beyond this page in the direction walked
    # The keys of the first and last rows the store paged, when ``items`` was filtered after
    # paging: the page's iterators, so that paging neither skips nor repeats rows.
    bounds: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class BackgroundTask:
    """A durable operation a worker runs (domain.tasks): ``task`` its kind, ``params`` what it
    was asked, ``data`` what it reports (Svix's BackgroundTaskOut.data)."""

    id: str
    task: str
    status: str  # domain.tasks.STATUSES
    updated_at: int
    data: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0
    runs: int = 0  # how many times a worker claimed it
