"""Row <-> model mapping shared by the backends (rows are mappings: sqlite3.Row, asyncpg Record)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import orjson

from hookpost.domain.filters import stored_filter
from hookpost.domain.headers import is_sensitive_header
from hookpost.domain.health import Health
from hookpost.domain.models import (
    ApiToken,
    Application,
    Attempt,
    AttemptStatus,
    BackgroundTask,
    ClaimedDelivery,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    SigningKey,
    Trigger,
)
from hookpost.domain.queries import CreatedMessage, KeyAnswer, SentMessage, StoredAnswer
from hookpost.domain.retry import RetryPolicy, policy_from_dict
from hookpost.domain.signing import canonical_scheme
from hookpost.store.secretbox import endpoint_keys_context

log = logging.getLogger("hookpost.store")

R = TypeVar("R")


class Row(Protocol):
    """What the mappers need of a row: sqlite3.Row and asyncpg.Record both qualify."""

    def __getitem__(self, key: str, /) -> Any: ...


class SecretBox(Protocol):
    """Seals endpoint secrets at rest. The store never writes a key in the clear through it."""

    def seal(self, plaintext: bytes, context: bytes = b"") -> str: ...
    def open(self, sealed: str, context: bytes = b"") -> bytes: ...


class PlainBox:
    """No encryption: for tests of other behaviour only; the wiring always uses an AEAD box."""

    def seal(self, plaintext: bytes, context: bytes = b"") -> str:
        return plaintext.decode("latin-1")  # any bytes (a stored answer's body) round-trip

    def open(self, sealed: str, context: bytes = b"") -> bytes:
        return sealed.encode("latin-1")


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def dumps_opt(value: Any) -> str | None:
    return None if value is None else dumps(value)


def loads_opt(value: str | bytes | None) -> Any:
    return None if value is None else orjson.loads(value)


def stored_policy(raw: str | None, schedule: list[int] | None) -> RetryPolicy | None:
    """An endpoint's ``retry_policy`` column; a row with a ``retry_schedule`` alone (stored
    before migration 0010) reads as that schedule."""
    if raw is not None:
        return policy_from_dict(orjson.loads(raw))
    return None if schedule is None else RetryPolicy(schedule=tuple(schedule))


# A sensitive header's value at rest: this prefix, then the value sealed (bound to the
# endpoint and the header's name). No header value holds a NUL, so none is mistaken for it.
SEALED_HEADER = "\x00sealed:"
SEALED_HEADER_JSON = "\\u0000sealed:"  # how it reads in the stored JSON


def header_context(endpoint_id: str, name: str) -> bytes:
    return b"endpoint-header:" + endpoint_id.encode() + b":" + name.lower().encode()


def seal_headers(box: SecretBox, headers: dict[str, str], endpoint_id: str) -> str:
    """An endpoint's custom headers as stored: those that hold secrets sealed."""
    return dumps(
        {
            name: SEALED_HEADER + box.seal(value.encode(), header_context(endpoint_id, name))
            if is_sensitive_header(name)
            else value
            for name, value in headers.items()
        }
    )


def open_headers(box: SecretBox, stored: str, endpoint_id: str) -> dict[str, str]:
    """The headers ``seal_headers`` stored, opened (headers stored before are plain)."""
    headers: dict[str, str] = orjson.loads(stored)
    if SEALED_HEADER_JSON not in stored:
        return headers
    n = len(SEALED_HEADER)
    return {
        name: box.open(value[n:], header_context(endpoint_id, name)).decode()
        if value.startswith(SEALED_HEADER)
        else value
        for name, value in headers.items()
    }


def seal_keys(box: SecretBox, keys: list[SigningKey], endpoint_id: str) -> str:
    plain = orjson.dumps([[k.secret, k.expires_at] for k in keys])
    return box.seal(plain, endpoint_keys_context(endpoint_id))


def open_keys(box: SecretBox, sealed: str, endpoint_id: str) -> list[SigningKey]:
    plain = box.open(sealed, endpoint_keys_context(endpoint_id))
    return [SigningKey(secret, expires) for secret, expires in orjson.loads(plain)]


class KeyOpener:
    """Opens sealed keys once per distinct value: a claim batch holds many deliveries of the
    same endpoint (see docs/decisions/0003-worker-hot-path-caches.md)."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._opened: dict[str, tuple[str, list[SigningKey]]] = {}

    def __call__(self, sealed: str, endpoint_id: str) -> list[SigningKey]:
        found = self._opened.get(sealed)
        if found is None or found[0] != endpoint_id:  # bound to its row: see secretbox
            found = self._opened[sealed] = (endpoint_id, open_keys(self._box, sealed, endpoint_id))
        return list(found[1])  # each delivery owns its list; the keys themselves are frozen


def decode_claimed(
    rows: Iterable[R], decode: Callable[[R], ClaimedDelivery], delivery_id: Callable[[R], int]
) -> list[ClaimedDelivery]:
    """Decode claimed rows one by one, after the claim's transaction.

    A row that cannot be decoded (sealed keys the current main key cannot open, corrupt stored
    headers) is logged and skipped: it stays leased, so it is claimed again when its lease
    expires, and the rows claimed with it are delivered now. Failing the whole batch instead
    would leave every row of it leased, and the next claim would fail at the same row.
    """
    claimed = []
    for r in rows:
        try:
            claimed.append(decode(r))
        except Exception:
            log.exception(
                "delivery %s cannot be decoded; it is retried when its lease expires",
                delivery_id(r),
            )
    return claimed


def app_from_row(r: Row) -> Application:
    return Application(
        id=r["id"],
        name=r["name"],
        uid=r["uid"],
        metadata=orjson.loads(r["metadata"]),
        throttle_rate=r["throttle_rate"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def event_type_from_row(r: Row) -> EventType:
    return EventType(
        name=r["name"],
        description=r["description"],
        schemas=loads_opt(r["schemas"]),
        archived=bool(r["archived"]),
        deprecated=bool(r["deprecated"]),
        feature_flag=r["feature_flag"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        retry_schedule=loads_opt(r["retry_schedule"]),
    )


def endpoint_from_row(r: Row, box: SecretBox) -> Endpoint:
    schedule = loads_opt(r["retry_schedule"])
    return Endpoint(
        id=r["id"],
        app_id=r["app_id"],
        url=r["url"],
        description=r["description"],
        uid=r["uid"],
        disabled=bool(r["disabled"]),
        event_types=loads_opt(r["event_types"]),
        channels=loads_opt(r["channels"]),
        payload_filter=loads_opt(r["payload_filter"]),
        headers=open_headers(box, r["headers"], r["id"]),
        metadata=orjson.loads(r["metadata"]),
        keys=open_keys(box, r["keys"], r["id"]),
        throttle_rate=r["throttle_rate"],
        signature_scheme=canonical_scheme(r["signature_scheme"]),
        signature_header=r["signature_header"],
        retry_schedule=schedule,
        retry_policy=stored_policy(r["retry_policy"], schedule),
        timeout_s=r["timeout_s"],
        ordered=bool(r["ordered"]),
        send_traceparent=None if r["send_traceparent"] is None else bool(r["send_traceparent"]),
        consecutive_failures=r["consecutive_failures"],
        first_failure_at=r["first_failure_at"],
        disabled_reason=r["disabled_reason"],
        last_success_at=r["last_success_at"],
        last_failure_at=r["last_failure_at"],
        last_status_code=r["last_status_code"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def endpoint_values(ep: Endpoint, box: SecretBox) -> dict[str, Any]:
    return {
        "id": ep.id,
        "app_id": ep.app_id,
        "uid": ep.uid,
        "url": ep.url,
        "description": ep.description,
        "disabled": ep.disabled,
        "event_types": dumps_opt(ep.event_types),
        "channels": dumps_opt(ep.channels),
        "payload_filter": stored_filter(ep.payload_filter),
        "headers": seal_headers(box, ep.headers, ep.id),
        "metadata": dumps(ep.metadata),
        "keys": seal_keys(box, ep.keys, ep.id),
        "throttle_rate": ep.throttle_rate,
        "signature_scheme": ep.signature_scheme,
        "signature_header": ep.signature_header,
        "retry_schedule": dumps_opt(ep.retry_schedule),
        "retry_policy": None if ep.retry_policy is None else dumps(ep.retry_policy.as_dict()),
        "timeout_s": ep.timeout_s,
        "ordered": ep.ordered,
        "send_traceparent": ep.send_traceparent,
        "consecutive_failures": ep.consecutive_failures,
        "first_failure_at": ep.first_failure_at,
        "disabled_reason": ep.disabled_reason,
        "last_success_at": ep.last_success_at,
        "last_failure_at": ep.last_failure_at,
        "last_status_code": ep.last_status_code,
        "created_at": ep.created_at,
        "updated_at": ep.updated_at,
    }


ENDPOINT_COLUMNS = tuple(endpoint_values(Endpoint("", "", ""), PlainBox()))

# An endpoint update never writes the health columns from the (possibly stale) object it was
# given: finish_attempts owns them. Re-enabling a disabled endpoint starts a fresh record.
HEALTH_COLUMNS = (
    "consecutive_failures",
    "first_failure_at",
    "last_success_at",
    "last_failure_at",
    "last_status_code",
)
# domain.health.Health's fields, which are also the endpoint columns of the same names.
HEALTH_FIELDS = tuple(f.name for f in dataclasses.fields(Health))
ENDPOINT_UPDATE_PARAMS = tuple(
    c for c in ENDPOINT_COLUMNS if c != "created_at" and c not in HEALTH_COLUMNS
)


def endpoint_update_sql(placeholder: Callable[[str], str], expected: str) -> str:
    """The UPDATE for ``update_endpoint``; ``placeholder(column)`` spells a bound parameter,
    ``expected`` the one for the ``updated_at`` the row must still have (NULL: any)."""
    sets = [f"{c} = {placeholder(c)}" for c in ENDPOINT_UPDATE_PARAMS if c not in ("id", "app_id")]
    reenabled = f"disabled AND NOT {placeholder('disabled')}"  # SET reads the old row
    sets += [
        f"consecutive_failures = CASE WHEN {reenabled} THEN 0 ELSE consecutive_failures END",
        f"first_failure_at = CASE WHEN {reenabled} THEN NULL ELSE first_failure_at END",
    ]
    return (
        f"UPDATE endpoints SET {', '.join(sets)} "
        f"WHERE id = {placeholder('id')} AND app_id = {placeholder('app_id')} AND NOT deleted"
        f" AND ({expected} IS NULL OR updated_at = {expected})"
    )


# A message's columns but its payload, which lists read apart (store.paging.content_rows).
_MESSAGE_HEAD = (
    "id",
    "app_id",
    "event_type",
    "event_id",
    "channels",
    "expunged",
    "created_at",
    "payload_sha256",
    "payload_expires_at",
)


def message_head(table: str) -> str:
    """The select list of a message without its payload, plus its size as ``size``."""
    return ", ".join(f"{table}.{c}" for c in _MESSAGE_HEAD) + f", length({table}.payload) AS size"


def message_from_row(r: Row, payload: bytes | None = None) -> Message:
    """``payload``: the message's payload when the row does not hold it."""
    return Message(
        id=r["id"],
        app_id=r["app_id"],
        event_type=r["event_type"],
        payload=bytes(r["payload"]) if payload is None else payload,
        event_id=r["event_id"],
        channels=loads_opt(r["channels"]),
        created_at=r["created_at"],
        expunged=bool(r["expunged"]),
        payload_sha256=r["payload_sha256"],
        payload_expires_at=r["payload_expires_at"],
    )


def key_answer(
    box: SecretBox, status: int | None, body: bytes | None, message_id: str | None
) -> KeyAnswer:
    """What an idempotency key's row holds: the message its send created, or an answer (its
    body sealed: answers hold new secrets and tokens, see ``seal_answer``)."""
    if message_id is not None:
        return SentMessage(message_id)
    assert status is not None and body is not None
    return StoredAnswer(status, box.open(bytes(body).decode()) if body else b"")


class _StillSealed:
    """Leaves a stored answer's body sealed: for reads inside a write shared by a group
    (``opened`` opens it after, outside the write)."""

    def seal(self, plaintext: bytes, context: bytes = b"") -> str:  # pragma: no cover
        raise NotImplementedError  # never sealed through

    def open(self, sealed: str, context: bytes = b"") -> bytes:
        return sealed.encode()


SEALED = _StillSealed()


def opened(created: CreatedMessage, box: SecretBox) -> CreatedMessage:
    """``created`` with the stored answer its key held (if any) opened."""
    held = created.replayed
    if not isinstance(held, StoredAnswer) or not held.body:
        return created
    return dataclasses.replace(
        created, replayed=StoredAnswer(held.status, box.open(held.body.decode()))
    )


def seal_answer(box: SecretBox, body: bytes) -> bytes:
    """A stored answer's body, sealed with the main key: ``secret/rotate``'s and
    ``app-portal-access``'s answers hold live secrets, and any may hold a payload."""
    return box.seal(body).encode() if body else b""


def delivery_from_row(r: Row, prefix: str = "") -> Delivery:
    return Delivery(
        id=r[prefix + "id"],
        app_id=r[prefix + "app_id"],
        message_id=r[prefix + "message_id"],
        endpoint_id=r[prefix + "endpoint_id"],
        status=DeliveryStatus(r[prefix + "status"]),
        attempts=r[prefix + "attempts"],
        next_attempt_at=r[prefix + "next_attempt_at"],
        updated_at=r[prefix + "updated_at"],
    )


def attempt_from_row(r: Row) -> Attempt:
    return Attempt(
        id=r["id"],
        app_id=r["app_id"],
        message_id=r["message_id"],
        endpoint_id=r["endpoint_id"],
        url=r["url"],
        status=AttemptStatus(r["status"]),
        trigger=Trigger(r["trigger"]),
        response_status_code=r["response_status_code"],
        response=r["response"],
        duration_ms=r["duration_ms"],
        error=r["error"],
        created_at=r["created_at"],
        headers=r["headers"],
    )


def attempt_values(a: Attempt) -> tuple[Any, ...]:
    return (
        a.id,
        a.app_id,
        a.message_id,
        a.endpoint_id,
        a.url,
        int(a.status),
        int(a.trigger),
        a.response_status_code,
        a.response,
        a.duration_ms,
        a.error,
        a.created_at,
        a.headers,
    )


ATTEMPT_COLUMNS = (
    "id",
    "app_id",
    "message_id",
    "endpoint_id",
    "url",
    "status",
    "trigger",
    "response_status_code",
    "response",
    "duration_ms",
    "error",
    "created_at",
    "headers",  # last: PostgreSQL's finish statements take it as their last parameter
)


def token_from_row(r: Row) -> ApiToken:
    return ApiToken(
        id=r["id"],
        token_hash=r["token_hash"],
        app_id=r["app_id"],
        name=r["name"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        hint=r["hint"],
    )


def stats_from_counts(counts: Mapping[int, int]) -> EndpointStats:
    """Delivery counts by status (as stored) into the stats shape."""
    return EndpointStats(
        pending=counts.get(DeliveryStatus.PENDING, 0),
        sending=counts.get(DeliveryStatus.SENDING, 0),
        success=counts.get(DeliveryStatus.SUCCEEDED, 0),
        fail=counts.get(DeliveryStatus.FAILED, 0),
        canceled=counts.get(DeliveryStatus.CANCELED, 0),
    )


def task_from_row(r: Row) -> BackgroundTask:
    return BackgroundTask(
        id=r["id"],
        task=r["kind"],
        status=r["status"],
        updated_at=r["updated_at"],
        data=orjson.loads(r["data"]),
        params=orjson.loads(r["params"]),
        created_at=r["created_at"],
        runs=r["runs"],
    )
