"""Quotas and bounded work in the stores: endpoints per application, event types, recover in
batches, pages of messages bounded by the bytes of their payloads.

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hookpost.domain.errors import Conflict, LimitExceeded, NotFound
from hookpost.domain.models import Delivery, Message, Page, PageRequest
from hookpost.domain.queries import MessageFilter
from hookpost.store.base import Store

from .conftest import StoreFactory
from .support import (
    DAY,
    FAILED,
    PENDING,
    T0,
    claim,
    fail_final,
    mk_app,
    mk_endpoint,
    mk_event_type,
    new_app,
    new_endpoint,
    send,
    walk,
)


class TestEndpointsPerApp:
    async def test_the_application_holds_at_most_max_per_app(self, store: Store) -> None:
        app, other = await new_app(store), await new_app(store)
        eps = [await store.create_endpoint(mk_endpoint(app.id), 3) for _ in range(3)]
        with pytest.raises(LimitExceeded) as refused:
            await store.create_endpoint(mk_endpoint(app.id), 3)
        assert refused.value.setting == "HOOKPOST_MAX_ENDPOINTS_PER_APP"
        assert "HOOKPOST_MAX_ENDPOINTS_PER_APP (3)" in str(refused.value)
        assert len((await store.list_endpoints(app.id, PageRequest(limit=10))).items) == 3
        await store.create_endpoint(mk_endpoint(other.id), 3)  # per application
        await store.create_endpoint(mk_endpoint(app.id))  # no limit given: none applies
        with pytest.raises(LimitExceeded):
            await store.create_endpoint(mk_endpoint(app.id), 4)
        # A deleted endpoint no longer counts.
        await store.delete_endpoint(app.id, eps[0].id)
        await store.create_endpoint(mk_endpoint(app.id), 4)
        with pytest.raises(NotFound):
            await store.create_endpoint(mk_endpoint(mk_app().id), 3)

    async def test_concurrent_creates_do_not_overshoot(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        app = await new_app(store)
        async with store_factory() as other:  # another process's store

            async def create(s: Store) -> bool:
                try:
                    await s.create_endpoint(mk_endpoint(app.id), 5)
                except LimitExceeded:
                    return False
                return True

            made = await asyncio.gather(*(create(s) for s in [store, other] * 6))
        assert sum(made) == 5
        assert len((await store.list_endpoints(app.id, PageRequest(limit=50))).items) == 5


class TestEventTypes:
    async def test_the_catalog_holds_at_most_max_count(self, store: Store) -> None:
        await store.create_event_type(mk_event_type("a.one"), 2)
        await store.create_event_type(mk_event_type("a.two", archived=True), 2)  # counts too
        with pytest.raises(LimitExceeded) as refused:
            await store.create_event_type(mk_event_type("a.three"), 2)
        assert "HOOKPOST_MAX_EVENT_TYPES (2)" in str(refused.value)
        with pytest.raises(Conflict):  # a name that exists: the usual answer, even when full
            await store.create_event_type(mk_event_type("a.one"), 2)
        await store.create_event_type(mk_event_type("a.three"), 3)
        await store.create_event_type(mk_event_type("a.four"))
        await store.delete_event_type("a.one")
        await store.create_event_type(mk_event_type("a.five"), 4)


class TestRecoverInBatches:
    async def test_recover_walks_every_batch_within_the_range(self, store: Store) -> None:
        store.batch_rows = 2  # type: ignore[attr-defined]
        app = await new_app(store)
        ep = await new_endpoint(store, app.id, at=T0 - DAY)
        other = await new_endpoint(store, app.id, at=T0 - DAY)
        since, until = T0, T0 + 100
        before = await send(store, app.id, at=since - 1, now=T0)
        inside = [await send(store, app.id, at=since + i, now=T0) for i in range(7)]
        after = await send(store, app.id, at=until, now=T0)
        for c in await claim(store, T0):
            await fail_final(store, c, T0)
        # One in the middle succeeded on a manual resend: recover leaves it alone.
        await store.resend(app.id, inside[3].id, ep.id, T0 + 1)
        [c] = await claim(store, T0 + 1)
        await store.finish_attempts([_succeeded(c)], T0 + 1, 5 * DAY)

        assert await store.recover(app.id, ep.id, since, until, T0 + 2) == 6
        for msg in [before, *inside, after]:
            status = (await store.get_delivery(msg.id, ep.id)).status
            expected = PENDING if msg in inside and msg is not inside[3] else None
            assert status == expected or (expected is None and status != PENDING), msg.id
        assert {(await store.get_delivery(m.id, other.id)).status for m in inside} == {FAILED}
        got = await claim(store, T0 + 2)
        assert sorted(c.message_id for c in got) == sorted(
            m.id for m in inside if m is not inside[3]
        )
        assert await store.recover(app.id, ep.id, since, until, T0 + 3) == 0  # all queued


def _succeeded(c: Any) -> Any:
    from .support import SUCCEEDED, outcome

    return outcome(c, SUCCEEDED, at=T0 + 1)


# --------------------------------------------------------------------------- page content

SIZE = 100  # each payload's bytes


def payload(i: int) -> bytes:
    body = b'{"i":%d,"pad":"' % i
    return body + b"x" * (SIZE - len(body) - 2) + b'"}'


Lister = Callable[[Store, str, PageRequest, dict[str, Any]], Awaitable[Page[Message]]]


async def _messages(store: Store, app_id: str, page: PageRequest, kw: dict[str, Any]) -> Any:
    return await store.list_messages(app_id, page, MessageFilter(), **kw)


async def _endpoint_messages(
    store: Store, app_id: str, page: PageRequest, kw: dict[str, Any]
) -> Page[Message]:
    [ep] = (await store.list_endpoints(app_id, PageRequest(limit=1))).items
    found: Page[tuple[Delivery, Message]]
    found = await store.list_deliveries_for_endpoint(app_id, ep.id, page, **kw)
    return Page(items=[m for _, m in found.items], done=found.done)


@pytest.mark.parametrize("lister", [_messages, _endpoint_messages], ids=["messages", "endpoint"])
class TestPageContent:
    async def test_a_page_stops_at_its_content_budget(self, store: Store, lister: Lister) -> None:
        app = await new_app(store)
        await new_endpoint(store, app.id)
        sent = [await send(store, app.id, at=T0 + i, payload=payload(i)) for i in range(7)]
        newest_first = [m.id for m in reversed(sent)]
        budget = {"max_content_bytes": 2 * SIZE + SIZE // 2}  # two and a half payloads

        first = await lister(store, app.id, PageRequest(limit=5, descending=True), budget)
        assert [m.id for m in first.items] == newest_first[:2] and not first.done
        assert [m.payload for m in first.items] == [payload(6), payload(5)]

        async def fetch(page: PageRequest) -> Page[Message]:
            return await lister(store, app.id, page, budget)

        every = await walk(fetch, lambda m: m.id, limit=5, descending=True)
        assert [m.id for m in every] == newest_first
        assert [m.payload for m in every] == [payload(i) for i in reversed(range(7))]

        # Walking back from the oldest: the budget keeps the messages nearest the iterator.
        back = PageRequest(limit=5, iterator=sent[0].id, backwards=True, descending=True)
        page = await lister(store, app.id, back, budget)
        assert [m.id for m in page.items] == newest_first[-3:-1] and not page.done

        # A payload over the budget alone still makes a page (of one).
        tiny = await lister(store, app.id, PageRequest(limit=5), {"max_content_bytes": 1})
        assert [m.id for m in tiny.items] == [sent[0].id] and not tiny.done
        # Within the budget, or without one: full pages.
        loose = {"max_content_bytes": 7 * SIZE}
        full = await lister(store, app.id, PageRequest(limit=7), loose)
        assert len(full.items) == 7 and full.done
        assert len((await lister(store, app.id, PageRequest(limit=7), {})).items) == 7

    async def test_without_content_payloads_are_not_read(
        self, store: Store, lister: Lister
    ) -> None:
        app = await new_app(store)
        await new_endpoint(store, app.id)
        sent = [await send(store, app.id, at=T0 + i, payload=payload(i)) for i in range(4)]
        kw = {"with_content": False, "max_content_bytes": 1}
        page = await lister(store, app.id, PageRequest(limit=10), kw)
        assert [m.id for m in page.items] == [m.id for m in sent] and page.done
        assert {m.payload for m in page.items} == {b""}
        assert [m.event_type for m in page.items] == [m.event_type for m in sent]
