"""Domain objects <-> the JSON of the Svix-compatible API.

Responses are built here as plain dicts with the camelCase keys of the ``*Out`` models in
``hookpost.api.schemas`` and serialised once with orjson: no pydantic re-validation on the hot
paths. ``tests/integration/test_api_*`` parse every response with the official svix SDK's
models, which keeps these dicts and the schemas in step.

* Times: epoch milliseconds -> ISO 8601 UTC with a ``Z`` suffix (``2024-05-01T12:00:00.123Z``).
* Nullable fields are always present (``null``), never omitted.
* Message payloads are the stored JSON bytes, embedded verbatim (``orjson.Fragment``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from hookpost.domain import health
from hookpost.domain.attempt_headers import AttemptHeaders
from hookpost.domain.catalog import FieldWarning
from hookpost.domain.headers import is_sensitive_header
from hookpost.domain.models import (
    ApiToken,
    Application,
    Attempt,
    AttemptStatus,
    BackgroundTask,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    Page,
)
from hookpost.domain.throttle import ThrottleStatus

T = TypeVar("T")

EMPTY_PAYLOAD = orjson.Fragment(b"{}")

# Svix MessageStatus: Success=0, Pending=1, Fail=2, Sending=3. A canceled delivery (its
# endpoint was disabled before it was sent) reads as failed.
DELIVERY_TO_MESSAGE_STATUS = {
    DeliveryStatus.SUCCEEDED: 0,
    DeliveryStatus.PENDING: 1,
    DeliveryStatus.FAILED: 2,
    DeliveryStatus.SENDING: 3,
    DeliveryStatus.CANCELED: 2,
}
MESSAGE_TO_DELIVERY_STATUS = {
    0: DeliveryStatus.SUCCEEDED,
    1: DeliveryStatus.PENDING,
    2: DeliveryStatus.FAILED,
    3: DeliveryStatus.SENDING,
}
ATTEMPT_TO_MESSAGE_STATUS = {AttemptStatus.SUCCESS: 0, AttemptStatus.FAIL: 2}
STATUS_TEXT = ("success", "pending", "fail", "sending")


# --------------------------------------------------------------------------- scalars


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC, e.g. ``2024-05-01T12:00:00.123Z``."""
    global _last_second
    seconds, millis = divmod(ms, 1000)
    last = _last_second  # one read: another thread may replace it meanwhile
    if last[0] != seconds:
        # Every response carries a timestamp, mostly of the current second: format it once.
        last = _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{last[1]}.{millis:03d}Z"


_last_second: tuple[int | None, str] = (None, "")


def iso_opt(ms: int | None) -> str | None:
    return None if ms is None else iso(ms)


MAX_MS = (1 << 48) - 1  # ids hold 48 bits of milliseconds (until the year 10889)


def to_ms(value: datetime) -> int:
    """An aware datetime as epoch milliseconds, clamped to what ids can encode (so that a
    date before 1970 or after the year 10889 bounds a time range as expected)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return min(max(int(value.timestamp() * 1000), 0), MAX_MS)


def to_ms_opt(value: datetime | None) -> int | None:
    return None if value is None else to_ms(value)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


# --------------------------------------------------------------------------- resources


def token_out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "appId": token.app_id,
        "createdAt": iso(token.created_at),
        "expiresAt": iso_opt(token.expires_at),
        "hint": token.hint,
    }


def app_out(app: Application) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "uid": app.uid,
        "throttleRate": app.throttle_rate,
        "metadata": app.metadata,
        "createdAt": iso(app.created_at),
        "updatedAt": iso(app.updated_at),
    }


def event_type_out(et: EventType, with_content: bool = True) -> dict[str, Any]:
    return {
        "name": et.name,
        "description": et.description,
        "archived": et.archived,
        "deprecated": et.deprecated,
        "schemas": et.schemas if with_content else None,
        "featureFlag": et.feature_flag,
        "createdAt": iso(et.created_at),
        "updatedAt": iso(et.updated_at),
    }


def _endpoint_base(ep: Endpoint) -> dict[str, Any]:
    return {
        "id": ep.id,
        "url": ep.url,
        "description": ep.description,
        "uid": ep.uid,
        "disabled": ep.disabled,
        "throttleRate": ep.throttle_rate,
        "eventTypes": ep.event_types or None,
        "channels": ep.channels or None,
        "createdAt": iso(ep.created_at),
        "updatedAt": iso(ep.updated_at),
    }


def endpoint_out(ep: Endpoint, now_ms: int | None = None) -> dict[str, Any]:
    out = _endpoint_base(ep)
    out["metadata"] = ep.metadata
    out["payloadFilter"] = ep.payload_filter
    out["signatureScheme"] = ep.signature_scheme
    out["signatureHeader"] = ep.signature_header
    out["retryPolicy"] = None if ep.retry_policy is None else ep.retry_policy.as_dict()
    out["timeoutSeconds"] = ep.timeout_s
    out["ordered"] = ep.ordered
    out["sendTraceparent"] = ep.send_traceparent
    out["health"] = endpoint_health_out(ep, now_ms)
    return out


def operational_endpoint_out(ep: Endpoint) -> dict[str, Any]:
    out = _endpoint_base(ep)
    del out["channels"]
    out["metadata"] = ep.metadata
    return out


def endpoint_health_out(ep: Endpoint, now_ms: int | None = None) -> dict[str, Any]:
    h = health.health_of(ep)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return {
        "state": health.state(h, now).value,
        "consecutiveFailures": h.consecutive_failures,
        "lastSuccessAt": iso_opt(h.last_success_at),
        "lastFailureAt": iso_opt(h.last_failure_at),
        "lastStatusCode": h.last_status_code or None,  # 0: no HTTP response
        "disabledReason": health.disabled_reason(h),
    }


def endpoint_written_out(
    ep: Endpoint, warnings: Sequence[FieldWarning], secret: str | None = None
) -> dict[str, Any]:
    """``EndpointWrittenOut``, or ``EndpointCreatedOut`` given the ``secret``."""
    out = endpoint_out(ep)
    out["warnings"] = [{"field": w.field, "message": w.message} for w in warnings]
    if secret is not None:
        out["secret"] = secret
    return out


def headers_out(headers: dict[str, str]) -> dict[str, Any]:
    sensitive = [name for name in headers if is_sensitive_header(name)]
    hidden = set(sensitive)
    visible = {name: value for name, value in headers.items() if name not in hidden}
    return {"headers": visible, "sensitive": sensitive}


def stats_out(stats: EndpointStats) -> dict[str, Any]:
    return {
        "success": stats.success,
        "pending": stats.pending,
        "sending": stats.sending,
        "fail": stats.fail,
        "canceled": stats.canceled,
    }


def throttle_status_out(status: ThrottleStatus) -> dict[str, Any]:
    return {
        "status": "RateLimited" if status.limited else "Ok",
        "throttledSince": iso_opt(status.since),
    }


def _delivery_status(delivery: Delivery) -> dict[str, Any]:
    status = DELIVERY_TO_MESSAGE_STATUS[delivery.status]
    next_attempt = delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None
    return {
        "status": status,
        "statusText": STATUS_TEXT[status],
        "nextAttempt": iso_opt(next_attempt),
    }


def message_endpoint_out(delivery: Delivery, ep: Endpoint) -> dict[str, Any]:
    out = _endpoint_base(ep)
    out.update(_delivery_status(delivery))
    return out


def message_out(msg: Message, with_content: bool = True) -> dict[str, Any]:
    return {
        "id": msg.id,
        "eventType": msg.event_type,
        "eventId": msg.event_id,
        "payload": orjson.Fragment(msg.payload) if with_content else EMPTY_PAYLOAD,
        "channels": msg.channels or None,
        "timestamp": iso(msg.created_at),
        "payloadSha256": msg.payload_sha256,
        "expunged": msg.expunged,
    }


def endpoint_message_out(delivery: Delivery, msg: Message, with_content: bool) -> dict[str, Any]:
    out = message_out(msg, with_content)
    out.update(_delivery_status(delivery))
    return out


def attempt_out(attempt: Attempt, with_content: bool = True) -> dict[str, Any]:
    status = ATTEMPT_TO_MESSAGE_STATUS[attempt.status]
    response = (attempt.response or attempt.error or "") if with_content else ""
    return {
        "id": attempt.id,
        "msgId": attempt.message_id,
        "endpointId": attempt.endpoint_id,
        "url": attempt.url,
        "response": response,
        "responseStatusCode": attempt.response_status_code,
        "responseDurationMs": attempt.duration_ms,
        "status": status,
        "statusText": STATUS_TEXT[status],
        "triggerType": int(attempt.trigger),
        "timestamp": iso(attempt.created_at),
    }


def attempt_headers_out(h: AttemptHeaders) -> dict[str, Any]:
    return {
        "sentHeaders": h.sent,
        "responseHeaders": None if h.response is None else [list(p) for p in h.response],
        "sensitive": h.sensitive,
        "recorded": h.recorded,
    }


def task_out(task: BackgroundTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": task.status,
        "task": task.task,
        "updatedAt": iso(task.updated_at),
    }


def delivery_statuses(status: int) -> list[DeliveryStatus]:
    """The delivery statuses a (Svix) message status stands for."""
    return [d for d, m in DELIVERY_TO_MESSAGE_STATUS.items() if m == int(status)]


def background_task_out(task: BackgroundTask) -> dict[str, Any]:
    return {**task_out(task), "data": task.data}


# --------------------------------------------------------------------------- lists


def list_out(
    page: Page[T],
    render: Callable[[T], dict[str, Any]],
    key: Callable[[T], str],
) -> dict[str, Any]:
    """The list envelope. ``iterator`` is the key of the page's last row and ``prevIterator``
    "-" + the key of its first (a leading "-" walks backwards); both null for an empty page.

    A page filtered after paging carries the keys of the rows the store returned
    (``Page.bounds``): the iterators come from those, so paging never skips or repeats.
    """
    items: Sequence[T] = page.items
    data = [render(item) for item in items]
    if page.bounds is not None:
        first, last = page.bounds
    elif items:
        first, last = key(items[0]), key(items[-1])
    else:
        return {"data": data, "iterator": None, "prevIterator": None, "done": page.done}
    return {"data": data, "iterator": last, "prevIterator": "-" + first, "done": page.done}
