"""Operational webhook endpoints: the operator's own endpoints, told about endpoint changes,
failing deliveries and finished tasks (``domain.operational``).

They are endpoints of the reserved operational application, so the same engine signs, sends,
retries and logs their deliveries; this service keeps that application out of the clients'
sight (``AppService`` hides it) and creates it with the first endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookpost.domain.errors import Conflict, InvalidInput
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import Application, Endpoint, Page, PageRequest
from hookpost.domain.operational import EVENT_TYPES, OPERATIONAL_APP_ID
from hookpost.services.common import Clock, now_ms
from hookpost.services.endpoints import DEFAULT_GRACE_S, EndpointService
from hookpost.store.base import Store

APP = OPERATIONAL_APP_ID


def _check_types(event_types: list[str] | None) -> None:
    for i, name in enumerate(event_types or ()):
        if name not in EVENT_TYPES:
            known = ", ".join(EVENT_TYPES)
            raise InvalidInput("eventTypes", f"not an operational event type ({known})", (i,))


class OperationalWebhookService:
    def __init__(self, store: Store, endpoints: EndpointService, clock: Clock = now_ms) -> None:
        self._store = store
        self._endpoints = endpoints
        self._clock = clock
        self._app_exists = False

    async def _ensure_app(self) -> None:
        if self._app_exists:
            return
        now = self._clock()
        app = Application(APP, "hookpost operational webhooks", created_at=now, updated_at=now)
        try:
            await self._store.create_app(app)
        except Conflict:
            pass  # created before, or by another process at the same time
        self._app_exists = True

    async def create(self, endpoint: NewEndpoint) -> Endpoint:
        _check_types(endpoint.event_types)
        await self._ensure_app()
        return await self._endpoints.create(APP, endpoint)

    async def list(self, page: PageRequest) -> Page[Endpoint]:
        return await self._endpoints.list(APP, page)

    async def get(self, endpoint_id: str) -> Endpoint:
        return await self._endpoints.get(APP, endpoint_id)

    async def upsert(self, endpoint_id: str, endpoint: NewEndpoint) -> tuple[Endpoint, bool]:
        _check_types(endpoint.event_types)
        await self._ensure_app()
        return await self._endpoints.upsert(APP, endpoint_id, endpoint)

    async def delete(self, endpoint_id: str) -> None:
        await self._endpoints.delete(APP, endpoint_id)

    async def get_secret(self, endpoint_id: str) -> str:
        return await self._endpoints.get_secret(APP, endpoint_id)

    async def rotate_secret(
        self, endpoint_id: str, key: str | None = None, grace_s: int = DEFAULT_GRACE_S
    ) -> Endpoint:
        return await self._endpoints.rotate_secret(APP, endpoint_id, key, grace_s)

    async def get_headers(self, endpoint_id: str) -> dict[str, str]:
        return await self._endpoints.get_headers(APP, endpoint_id)

    async def set_headers(self, endpoint_id: str, headers: Mapping[str, str]) -> Endpoint:
        return await self._endpoints.set_headers(APP, endpoint_id, headers, merge=False)
