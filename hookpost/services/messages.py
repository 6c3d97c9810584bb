"""Messages, their deliveries and attempts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from hookpost.domain import ids
from hookpost.domain.attempt_headers import AttemptHeaders, decode_headers
from hookpost.domain.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from hookpost.domain.examples import example_payload
from hookpost.domain.inputs import AttemptQuery, status_code_class
from hookpost.domain.limits import DEFAULT_MAX_PAGE_CONTENT_BYTES
from hookpost.domain.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EventType,
    Message,
    Page,
    PageRequest,
)
from hookpost.domain.provenance import payload_sha256
from hookpost.domain.queries import (
    AttemptFilter,
    CreatedMessage,
    IdempotencyKey,
    MessageFilter,
)
from hookpost.domain.retention import RetentionPolicy, payload_expires_at, retention_ms
from hookpost.services.catalog import CatalogCache
from hookpost.services.common import Clock, filtered, now_ms
from hookpost.services.idempotency import HeldKey
from hookpost.services.metrics import Metrics
from hookpost.store.base import Store

if TYPE_CHECKING:
    from hookpost.services.tracing import Tracing

DEFAULT_MAX_PAYLOAD = 1024 * 1024
COUNT_PAGE = 250  # attempts read per page when counting them
T = TypeVar("T")


def encode_payload(payload: Any, max_bytes: int = DEFAULT_MAX_PAYLOAD) -> bytes:
    """Serialise once; these exact bytes are stored, signed and sent."""
    if not isinstance(payload, dict):
        raise InvalidInput("payload", "must be a JSON object")
    try:
        body = orjson.dumps(payload)
    except orjson.JSONEncodeError as exc:  # too deep, or an integer beyond 64 bits
        raise InvalidInput("payload", f"cannot be serialised: {exc}") from None
    if len(body) > max_bytes:
        raise PayloadTooLarge(len(body), max_bytes)
    return body


class MessageService:
    def __init__(
        self,
        store: Store,
        clock: Clock = now_ms,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        metrics: Metrics | None = None,
        max_page_content_bytes: int | None = DEFAULT_MAX_PAGE_CONTENT_BYTES,
        strict_catalog: CatalogCache | None = None,
        retention: RetentionPolicy = RetentionPolicy(),
        tracing: Tracing | None = None,
    ) -> None:
        self._store = store
        self._tracing = tracing  # None unless OTEL_* asks for traces: no work then
        self._retention = retention
        # HOOKPOST_STRICT_EVENT_TYPES: the cached catalog every message is checked against;
        # None (the default): no check, and no work on the create path.
        self._strict = strict_catalog
        self._clock = clock
        self._max_payload = max_payload_bytes
        self._metrics = metrics
        self._max_page_content = max_page_content_bytes

    async def send(
        self,
        app_id: str,
        event_type: str,
        payload: Any,
        *,
        event_id: str | None = None,
        channels: Sequence[str] | None = None,
        endpoint_ids: Sequence[str] | None = None,
        retention_days: int | None = None,
        retention_hours: int | None = None,
    ) -> CreatedMessage:
        """Store the message and one delivery per matching endpoint, atomically.

        A second send with the same ``event_id`` returns the first message and creates no
        deliveries. ``endpoint_ids`` sends to exactly those endpoints (test events).
        ``retention_days``/``retention_hours``: how long its payload is kept (at most one;
        neither: the deployment's default, see ``domain.retention``).
        """
        app = await self._store.get_app(app_id)
        return await self.send_to_app_id(
            app.id,
            event_type,
            payload,
            event_id=event_id,
            channels=channels,
            endpoint_ids=endpoint_ids,
            retention_days=retention_days,
            retention_hours=retention_hours,
        )

    async def send_to_app_id(
        self,
        app_id: str,
        event_type: str,
        payload: Any,
        *,
        event_id: str | None = None,
        channels: Sequence[str] | None = None,
        endpoint_ids: Sequence[str] | None = None,
        key: HeldKey | None = None,
        retention_days: int | None = None,
        retention_hours: int | None = None,
    ) -> CreatedMessage:
        """``send`` for a caller that already resolved the application's id (the API's hot
        path caches uid -> id); an unknown id still fails with NotFound in the store.
        ``key``: the request's idempotency key, checked and recorded by the message's own
        write (``Messages.create_message``); what it held already comes back as ``replayed``."""
        body = encode_payload(payload, self._max_payload)
        if self._strict is not None:
            await self._strict.check_message(event_type, payload)
        now = self._clock()
        message = Message(
            id=ids.new_id(ids.MESSAGE, now),
            app_id=app_id,
            event_type=event_type,
            payload=body,
            event_id=event_id,
            channels=list(channels) if channels else None,
            created_at=now,
            payload_sha256=payload_sha256(body),
            payload_expires_at=payload_expires_at(
                now, retention_ms(self._retention, retention_days, retention_hours)
            ),
        )
        recorded = None if key is None else key.for_message(now)
        if self._tracing is None:
            created = await self._store.create_message(message, now, endpoint_ids, recorded)
        else:
            created = await self._create_traced(self._tracing, message, now, endpoint_ids, recorded)
        if key is not None:
            key.written(created)
        if created.created and self._metrics is not None:
            self._metrics.messages.inc()
        return created

    async def _create_traced(
        self,
        tracing: Tracing,
        message: Message,
        now: int,
        endpoint_ids: Sequence[str] | None,
        recorded: IdempotencyKey | None,
    ) -> CreatedMessage:
        """``create_message`` with the current trace context stored first (a worker may claim
        the message as soon as it commits), and removed if no message was created after all."""
        context = tracing.current_context()
        if context is None:
            return await self._store.create_message(message, now, endpoint_ids, recorded)
        await self._store.save_trace_context(message.app_id, message.id, context)
        try:
            created = await self._store.create_message(message, now, endpoint_ids, recorded)
        except Exception:
            with contextlib.suppress(Exception):  # the create's error is the one to tell
                await self._store.delete_trace_context(message.id)
            raise
        if not created.created:
            await self._store.delete_trace_context(message.id)
        return created

    # -- reads and operations: ``app_id`` is an application's id (see ``AppService.resolve``),
    # a message may be named by its id or eventId, an endpoint by its id or uid.
    async def get(self, app_id: str, msg_id: str) -> Message:
        return await self._store.get_message(app_id, msg_id)

    async def list(
        self, app_id: str, page: PageRequest, filt: MessageFilter, with_content: bool = True
    ) -> Page[Message]:
        """A page with content may be short (``done`` False): it stops before the message
        whose payload would take it over ``max_page_content_bytes``."""
        return await self._store.list_messages(
            app_id,
            page,
            filt,
            with_content=with_content,
            max_content_bytes=self._max_page_content,
        )

    async def expunge(self, app_id: str, msg_id: str) -> None:
        message = await self.get(app_id, msg_id)
        await self._store.expunge_message(message.app_id, message.id)

    async def send_example(
        self, app_id: str, endpoint_id: str, event_type: str, example_index: int = 0
    ) -> Message:
        """An example message of the event type (see ``example_payload``), sent to this one
        endpoint only."""
        endpoint = await self._store.get_endpoint(app_id, endpoint_id)
        try:
            known: EventType | None = await self._store.get_event_type(event_type)
        except NotFound:
            known = None
        payload = example_payload(known, event_type, example_index)
        created = await self.send_to_app_id(
            endpoint.app_id, event_type, payload, endpoint_ids=[endpoint.id]
        )
        return created.message

    # -- attempts ----------------------------------------------------------------------------
    async def list_attempts(
        self, app_id: str, page: PageRequest, query: AttemptQuery
    ) -> Page[Attempt]:
        message = None
        if query.message is not None:
            message = await self._store.get_message(app_id, query.message)
        endpoint_id = None
        if query.endpoint is not None:
            endpoint_id = (await self._store.get_endpoint(app_id, query.endpoint)).id
        statuses = query.statuses
        if statuses is not None and not statuses:
            return Page(items=[], done=True)
        filt = AttemptFilter(
            endpoint_id=endpoint_id,
            message_id=None if message is None else message.id,
            status=next(iter(statuses)) if statuses is not None and len(statuses) == 1 else None,
            event_types=query.event_types,
            before=query.before,
            after=query.after,
        )
        found = await self._store.list_attempts(app_id, page, filt)
        if not found.items or (query.status_code_class is None and query.channel is None):
            return found
        keep: list[Callable[[Attempt], bool]] = []
        if query.status_code_class is not None:
            wanted = query.status_code_class
            keep.append(lambda a: status_code_class(a.response_status_code) == wanted)
        if query.channel is not None:
            channel = query.channel
            known = {} if message is None else {message.id: message}
            messages = await self._messages_by_id(app_id, found.items, known)
            keep.append(lambda a: channel in (messages[a.message_id].channels or ()))
        return filtered(found, lambda a: all(check(a) for check in keep), _attempt_key)

    async def attempt_messages(
        self, app_id: str, attempts: Sequence[Attempt]
    ) -> dict[str, Message]:
        """The messages of these attempts, by id (an attempt list's ``with_msg``)."""
        return await self._messages_by_id(app_id, attempts, {})

    async def count_attempts(self, app_id: str, query: AttemptQuery, cap: int) -> tuple[int, bool]:
        """How many attempts the query lists, counted up to ``cap``: (count, whether more)."""
        count, iterator = 0, None
        while count < cap:
            page = await self.list_attempts(app_id, PageRequest(COUNT_PAGE, iterator), query)
            count += len(page.items)
            if page.done:
                return count, False
            iterator = page.bounds[1] if page.bounds else page.items[-1].id
        return cap, True

    async def bulk_expunge(self, app_id: str, msg_ids: Sequence[str]) -> dict[str, bool]:
        """Expunge each of these messages (ids or eventIds): whether it was found."""
        results = {}
        for msg_id in msg_ids:
            try:
                await self.expunge(app_id, msg_id)
            except NotFound:
                results[msg_id] = False
            else:
                results[msg_id] = True
        return results

    async def _messages_by_id(
        self, app_id: str, attempts: Sequence[Attempt], known: dict[str, Message]
    ) -> dict[str, Message]:
        wanted = [m for m in dict.fromkeys(a.message_id for a in attempts) if m not in known]
        found = await asyncio.gather(*(self._store.get_message(app_id, m) for m in wanted))
        return {**known, **{m.id: m for m in found}}

    async def get_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> Attempt:
        message = await self.get(app_id, msg_id)
        return await self._store.get_attempt(message.app_id, message.id, attempt_id)

    async def attempt_headers(self, app_id: str, msg_id: str, attempt_id: str) -> AttemptHeaders:
        """The headers the attempt sent (sensitive ones named, not shown) and a failed
        answer's headers (docs/decisions/0046-attempt-headers.md)."""
        return self.headers_of(await self.get_attempt(app_id, msg_id, attempt_id))

    @staticmethod
    def headers_of(attempt: Attempt) -> AttemptHeaders:
        """The headers of an attempt already read (a list's), without another read."""
        return decode_headers(attempt.headers, attempt.message_id)

    async def expunge_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> None:
        attempt = await self.get_attempt(app_id, msg_id, attempt_id)
        await self._store.expunge_attempt(attempt.app_id, attempt.message_id, attempt.id)

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str) -> None:
        """A manual attempt now, whatever the delivery's state; a message whose payload was
        expunged cannot be resent (Conflict)."""
        message = await self.get(app_id, msg_id)
        if message.expunged:
            raise Conflict("the message's payload was expunged; it cannot be resent")
        endpoint = await self._store.get_endpoint(message.app_id, endpoint_id)
        await self._store.resend(message.app_id, message.id, endpoint.id, self._clock())

    async def destinations(
        self, app_id: str, msg_id: str, page: PageRequest
    ) -> Page[tuple[Delivery, Endpoint]]:
        message = await self.get(app_id, msg_id)
        return await self._store.list_deliveries_for_message(message.app_id, message.id, page)

    async def endpoint_messages(
        self,
        app_id: str,
        endpoint_id: str,
        page: PageRequest,
        status: DeliveryStatus | None = None,
        filt: MessageFilter | None = None,
        with_content: bool = True,
    ) -> Page[tuple[Delivery, Message]]:
        """The endpoint's deliveries with their messages, newest first. ``filt`` is applied to
        each page the store returns (the store pages by delivery). With content, a page may
        be short, as in ``list``."""
        endpoint = await self._store.get_endpoint(app_id, endpoint_id)
        found = await self._store.list_deliveries_for_endpoint(
            app_id,
            endpoint.id,
            page,
            status,
            with_content=with_content,
            max_content_bytes=self._max_page_content,
        )
        if filt is None or filt == _NO_FILTER:
            return found
        if filt.event_types:  # a set: each row's test stays O(1) however many names
            filt = replace(filt, event_types=frozenset(filt.event_types))
        return filtered(found, lambda item: filt.matches(item[1]), _delivery_message_key)


_NO_FILTER = MessageFilter()


def _attempt_key(attempt: Attempt) -> str:
    return attempt.id


def _delivery_message_key(item: tuple[Delivery, Message]) -> str:
    return item[1].id
