"""Messages, their deliveries and attempts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from hookpost.domain import ids
from hookpost.domain.errors import InvalidInput, PayloadTooLarge
from hookpost.domain.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Message,
    Page,
    PageRequest,
)
from hookpost.domain.queries import AttemptFilter, CreatedMessage, MessageFilter
from hookpost.services.common import Clock, now_ms
from hookpost.services.idempotency import HeldKey
from hookpost.services.metrics import Metrics
from hookpost.store.base import Store

DEFAULT_MAX_PAYLOAD = 1024 * 1024


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
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_payload = max_payload_bytes
        self._metrics = metrics

    async def send(
        self,
        app_id: str,
        event_type: str,
        payload: Any,
        *,
        event_id: str | None = None,
        channels: Sequence[str] | None = None,
        endpoint_ids: Sequence[str] | None = None,
    ) -> CreatedMessage:
        """Store the message and one delivery per matching endpoint, atomically.

        A second send with the same ``event_id`` returns the first message and creates no
        deliveries. ``endpoint_ids`` sends to exactly those endpoints (test events).
        """
        app = await self._store.get_app(app_id)
        return await self.send_to_app_id(
            app.id,
            event_type,
            payload,
            event_id=event_id,
            channels=channels,
            endpoint_ids=endpoint_ids,
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
    ) -> CreatedMessage:
        """``send`` for a caller that already resolved the application's id (the API's hot
        path caches uid -> id); an unknown id still fails with NotFound in the store.
        ``key``: the request's idempotency key, checked and recorded by the message's own
        write (``Messages.create_message``); what it held already comes back as ``replayed``."""
        now = self._clock()
        message = Message(
            id=ids.new_id(ids.MESSAGE, now),
            app_id=app_id,
            event_type=event_type,
            payload=encode_payload(payload, self._max_payload),
            event_id=event_id,
            channels=list(channels) if channels else None,
            created_at=now,
        )
        recorded = None if key is None else key.for_message(now)
        created = await self._store.create_message(message, now, endpoint_ids, recorded)
        if key is not None:
            key.written(created)
        if created.created and self._metrics is not None:
            self._metrics.messages.inc()
        return created

    async def get(self, app_id: str, msg_id: str) -> Message:
        app = await self._store.get_app(app_id)
        return await self._store.get_message(app.id, msg_id)

    async def list(self, app_id: str, page: PageRequest, filt: MessageFilter) -> Page[Message]:
        app = await self._store.get_app(app_id)
        return await self._store.list_messages(app.id, page, filt)

    async def expunge(self, app_id: str, msg_id: str) -> None:
        message = await self.get(app_id, msg_id)
        await self._store.expunge_message(message.app_id, message.id)

    # -- attempts ----------------------------------------------------------------------------
    async def list_attempts(
        self, app_id: str, page: PageRequest, filt: AttemptFilter
    ) -> Page[Attempt]:
        app = await self._store.get_app(app_id)
        if filt.endpoint_id is not None:
            await self._store.get_endpoint(app.id, filt.endpoint_id)
        if filt.message_id is not None:
            await self._store.get_message(app.id, filt.message_id)
        return await self._store.list_attempts(app.id, page, filt)

    async def get_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> Attempt:
        message = await self.get(app_id, msg_id)
        return await self._store.get_attempt(message.app_id, message.id, attempt_id)

    async def expunge_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> None:
        attempt = await self.get_attempt(app_id, msg_id, attempt_id)
        await self._store.expunge_attempt(attempt.app_id, attempt.message_id, attempt.id)

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str) -> None:
        """A manual attempt now, whatever the delivery's state."""
        message = await self.get(app_id, msg_id)
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
    ) -> Page[tuple[Delivery, Message]]:
        app = await self._store.get_app(app_id)
        endpoint = await self._store.get_endpoint(app.id, endpoint_id)
        return await self._store.list_deliveries_for_endpoint(app.id, endpoint.id, page, status)
