"""Concurrent changes to one endpoint all survive (optimistic concurrency in EndpointService)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hookpost.domain.errors import Conflict, StaleWrite
from hookpost.domain.inputs import EndpointChanges
from hookpost.domain.models import Endpoint
from hookpost.services.endpoints import WRITE_ATTEMPTS, EndpointService
from hookpost.store.base import Store

from .support import app_with_endpoint


class RacingWrites:
    """A store whose first ``n`` endpoint writes wait for each other, so that each was
    computed from the same read: the interleaving that used to lose all but one change."""

    def __init__(self, store: Store, n: int) -> None:
        self._store = store
        self._arrived = 0
        self._n = n
        self._all_read = asyncio.Event()
        self.stale = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def update_endpoint(
        self, endpoint: Endpoint, expected: int | None = None, notify: Any = ()
    ) -> Endpoint:
        if self._arrived < self._n:
            self._arrived += 1
            if self._arrived == self._n:
                self._all_read.set()
            await self._all_read.wait()
        try:
            return await self._store.update_endpoint(endpoint, expected, notify=notify)
        except StaleWrite:
            self.stale += 1
            raise


async def test_concurrent_patch_rotate_and_headers_all_survive(store: Store) -> None:
    app, ep = await app_with_endpoint(store)
    racing = RacingWrites(store, 3)
    service = EndpointService(racing)  # type: ignore[arg-type]
    await asyncio.gather(
        service.patch(app.id, ep.id, EndpointChanges(description="patched")),
        service.rotate_secret(app.id, ep.id, key="whsec_" + "QUJD" * 8),
        service.set_headers(app.id, ep.id, {"x-tenant": "acme"}, merge=True),
    )
    now = await store.get_endpoint(app.id, ep.id)
    assert now.description == "patched"
    assert now.secret == "whsec_" + "QUJD" * 8
    assert [k.secret for k in now.keys[1:]] == [ep.secret]  # the old key, in its grace period
    assert now.headers == {"x-tenant": "acme"}
    assert racing.stale >= 2  # two of the three first writes were refused: the race happened
    assert now.updated_at > ep.updated_at


async def test_a_change_that_never_gets_through_is_a_conflict(store: Store) -> None:
    app, ep = await app_with_endpoint(store)

    class AlwaysStale(RacingWrites):
        async def update_endpoint(
            self, endpoint: Endpoint, expected: int | None = None, notify: Any = ()
        ) -> Any:
            self.stale += 1
            raise StaleWrite("changed")

    always = AlwaysStale(store, 0)
    with pytest.raises(Conflict):
        await EndpointService(always).patch(  # type: ignore[arg-type]
            app.id, ep.id, EndpointChanges(description="x")
        )
    assert always.stale == WRITE_ATTEMPTS
