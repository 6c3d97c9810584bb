"""What the store contract suite's modules share: times, factories of rows, and steps
(send, claim, finish) written once.

Times are explicit integer milliseconds (``now_ms``); no test sleeps. Ids are made with ``new_id``
at the time the row is said to be created, because the stores treat id order as time order
(keyset paging, ``before``/``after`` filters, ``recover`` and ``endpoint_stats`` ranges).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from hookpost.domain.ids import APP, ATTEMPT, ENDPOINT, MESSAGE, new_id
from hookpost.domain.models import (
    Application,
    Attempt,
    AttemptResult,
    AttemptStatus,
    ClaimedDelivery,
    DeliveryStatus,
    Endpoint,
    EventType,
    Message,
    Page,
    PageRequest,
    SigningKey,
    Trigger,
)
from hookpost.domain.queries import FinishOutcome
from hookpost.store.base import DeliveryQueue, Store
from hookpost.store.memory import MemoryQueue

T = TypeVar("T")

T0 = 1_700_000_000_000  # an arbitrary "now" (ms)
LEASE = 30_000
HOUR = 3_600_000
DAY = 24 * HOUR
WAKE_TIMEOUT = 5.0  # seconds to wait for an on_new_work callback

SUCCEEDED = DeliveryStatus.SUCCEEDED
PENDING = DeliveryStatus.PENDING
SENDING = DeliveryStatus.SENDING
FAILED = DeliveryStatus.FAILED
CANCELED = DeliveryStatus.CANCELED


# --------------------------------------------------------------------------- factories


def mk_app(*, at: int = T0, **kw: Any) -> Application:
    kw.setdefault("name", "Acme")
    return Application(id=new_id(APP, at), created_at=at, updated_at=at, **kw)


def mk_endpoint(app_id: str, *, at: int = T0, **kw: Any) -> Endpoint:
    kw.setdefault("url", "https://receiver.example/hook")
    kw.setdefault("keys", [SigningKey("whsec_" + new_id("k")[2:])])
    return Endpoint(id=new_id(ENDPOINT, at), app_id=app_id, created_at=at, updated_at=at, **kw)


def mk_message(app_id: str, *, at: int = T0, **kw: Any) -> Message:
    kw.setdefault("event_type", "invoice.paid")
    kw.setdefault("payload", b'{"amount":42}')
    return Message(id=new_id(MESSAGE, at), app_id=app_id, created_at=at, **kw)


def mk_event_type(name: str, *, at: int = T0, **kw: Any) -> EventType:
    return EventType(name=name, created_at=at, updated_at=at, **kw)


def mk_attempt(c: ClaimedDelivery, *, ok: bool, at: int, **kw: Any) -> Attempt:
    kw.setdefault("response_status_code", 200 if ok else 500)
    kw.setdefault("response", "ok" if ok else "internal error")
    kw.setdefault("duration_ms", 12)
    return Attempt(
        id=new_id(ATTEMPT, at),
        app_id=c.app_id,
        message_id=c.message_id,
        endpoint_id=c.endpoint_id,
        url=c.url,
        status=AttemptStatus.SUCCESS if ok else AttemptStatus.FAIL,
        trigger=c.trigger,
        created_at=at,
        **kw,
    )


def outcome(
    c: ClaimedDelivery,
    status: DeliveryStatus,
    *,
    at: int,
    retry_at: int | None = None,
    lease: str | None = None,
    reason: str | None = None,
    **attempt_kw: Any,
) -> AttemptResult:
    """The result of one attempt of ``c``: SUCCEEDED, PENDING (retry at ``retry_at``) or FAILED."""
    assert (status == PENDING) == (retry_at is not None)
    return AttemptResult(
        attempt=mk_attempt(c, ok=status == SUCCEEDED, at=at, **attempt_kw),
        delivery_id=c.delivery_id,
        lease=c.lease if lease is None else lease,
        next_status=status,
        next_attempt_at=retry_at,
        disable_endpoint_reason=reason,
        attempts=c.attempts + 1,
        ordered=c.ordered,
    )


async def new_app(store: Store, **kw: Any) -> Application:
    return await store.create_app(mk_app(**kw))


async def new_endpoint(store: Store, app_id: str, **kw: Any) -> Endpoint:
    return await store.create_endpoint(mk_endpoint(app_id, **kw))


async def app_with_endpoint(store: Store, **ep_kw: Any) -> tuple[Application, Endpoint]:
    app = await new_app(store)
    return app, await new_endpoint(store, app.id, **ep_kw)


async def send(
    store: Store, app_id: str, *, now: int = T0, at: int | None = None, **kw: Any
) -> Message:
    """Create a message (created at ``at``, default ``now``) whose deliveries are due at ``now``."""
    created = await store.create_message(
        mk_message(app_id, at=now if at is None else at, **kw), now
    )
    assert created.created
    return created.message


async def claim(
    store: DeliveryQueue, now: int, limit: int = 100, **kw: Any
) -> list[ClaimedDelivery]:
    return await store.claim_due(limit, LEASE, now, **kw)


async def finish(
    store: DeliveryQueue, *results: AttemptResult, now: int, disable_after_ms: int = 5 * DAY
) -> FinishOutcome:
    return await store.finish_attempts(list(results), now, disable_after_ms)


async def fail_final(store: Store, c: ClaimedDelivery, at: int) -> None:
    out = await finish(store, outcome(c, FAILED, at=at), now=at)
    assert out.stale == 0


def key_of(c: ClaimedDelivery) -> tuple[str, str]:
    return (c.message_id, c.endpoint_id)


def ids(items: Sequence[Any]) -> list[str]:
    return [x.id for x in items]


async def walk(
    fetch: Callable[[PageRequest], Awaitable[Page[T]]],
    cursor: Callable[[T], str],
    *,
    limit: int,
    descending: bool = False,
    between: Callable[[], Awaitable[None]] | None = None,
) -> list[T]:
    """Every item of a list, page by page, following the iterator to the end."""
    items: list[T] = []
    iterator: str | None = None
    for _ in range(1000):
        page = await fetch(PageRequest(limit=limit, iterator=iterator, descending=descending))
        assert len(page.items) <= limit
        items.extend(page.items)
        if page.done:
            return items
        assert page.items, "a page that is not done must not be empty"
        iterator = cursor(page.items[-1])
        if between is not None:
            await between()
    raise AssertionError("paging did not terminate")


async def wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), WAKE_TIMEOUT)


# --------------------------------------------------------------------------- queue worlds


class QueueWorld(Protocol):
    """A DeliveryQueue and a way to fill it: endpoints of one app, and messages sent to all of
    them, as ``new_endpoint`` and ``send`` make them on a store."""

    queue: DeliveryQueue

    async def endpoint(self) -> Endpoint: ...
    async def send(self, *, now: int = T0, at: int | None = None) -> Message: ...
    async def status(self, msg_id: str, endpoint_id: str) -> DeliveryStatus: ...


class StoreWorld:
    def __init__(self, store: Store) -> None:
        self.queue = self._store = store
        self._app: Application | None = None

    async def endpoint(self) -> Endpoint:
        if self._app is None:
            self._app = await new_app(self._store)
        return await new_endpoint(self._store, self._app.id)

    async def send(self, *, now: int = T0, at: int | None = None) -> Message:
        assert self._app is not None, "make an endpoint first"
        return await send(self._store, self._app.id, now=now, at=at)

    async def status(self, msg_id: str, endpoint_id: str) -> DeliveryStatus:
        return (await self._store.get_delivery(msg_id, endpoint_id)).status


class MemoryWorld:
    """The in-memory queue, seeded with the deliveries a store would have made."""

    def __init__(self) -> None:
        self.queue = MemoryQueue()
        self._app = mk_app()
        self._endpoints: list[Endpoint] = []
        self._deliveries: dict[tuple[str, str], int] = {}

    async def endpoint(self) -> Endpoint:
        ep = mk_endpoint(self._app.id)
        self._endpoints.append(ep)
        return ep

    async def send(self, *, now: int = T0, at: int | None = None) -> Message:
        m = mk_message(self._app.id, at=now if at is None else at)
        for ep in self._endpoints:
            delivery_id = len(self._deliveries) + 1
            self._deliveries[m.id, ep.id] = delivery_id
            self.queue.add(
                ClaimedDelivery(
                    delivery_id=delivery_id,
                    lease="",
                    app_id=m.app_id,
                    message_id=m.id,
                    endpoint_id=ep.id,
                    event_type=m.event_type,
                    payload=m.payload,
                    msg_created_at=m.created_at,
                    attempts=0,
                    trigger=Trigger.SCHEDULED,
                    url=ep.url,
                    headers=ep.headers,
                    keys=ep.keys,
                    signature_scheme=ep.signature_scheme,
                    retry_schedule=ep.retry_schedule,
                    due_at=now,
                )
            )
        return m

    async def status(self, msg_id: str, endpoint_id: str) -> DeliveryStatus:
        return self.queue.status(self._deliveries[msg_id, endpoint_id])
