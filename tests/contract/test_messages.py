"""The Messages port: a message and its deliveries, created in one transaction.

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hookpost.domain.errors import NotFound
from hookpost.domain.matching import filters_match
from hookpost.domain.models import PageRequest
from hookpost.domain.queries import CreatedMessage, MessageFilter
from hookpost.store.base import Store

from .conftest import StoreFactory
from .support import (
    PENDING,
    T0,
    app_with_endpoint,
    claim,
    ids,
    mk_app,
    mk_message,
    new_app,
    new_endpoint,
    send,
    walk,
)

# Endpoint filters x messages for test_endpoint_matching_equals_filters_match: every
# combination of the endpoint options is one endpoint of an app. The second table holds
# filters PostgreSQL leaves to Python (JSON escapes, control characters) and a channel with a
# NUL, with ordinary endpoints in the same app.
_TYPES: list[list[str] | None] = [
    None,
    [],
    ["invoice.paid"],
    ["invoice.paid", "invoice.void"],
    ["user.created"],
    ["invoice"],
    ["Invoice.Paid"],
    ["Zoë.🎉"],
    [""],
]
_CHANNELS: list[list[str] | None] = [None, [], ["eu"], ["eu", "us"], ["ca"], ["É"], [""]]
_MESSAGES: list[tuple[str, list[str] | None]] = [
    ("invoice.paid", None),
    ("invoice.paid", []),
    ("invoice.paid", ["eu"]),
    ("invoice.paid", ["us", "ca"]),
    ("invoice.void", ["ca", "nowhere"]),
    ("user.created", ["us", "eu"]),
    ("invoice", ["e"]),
    ("invoice.paid.late", ["É"]),
    ("Zoë.🎉", ["É", "eu"]),
    ("Zoe\u0308.🎉", ["E\u0301"]),
    ("other.thing", [""]),
]
_ODD_TYPES: list[list[str] | None] = [None, ['say "hi"'], ["back\\slash"], ["tab\tnew\nline"]]
_ODD_CHANNELS: list[list[str] | None] = [None, ["eu"], ['q"uote'], ["nul\x00"], ["\x7f"]]
_ODD_MESSAGES: list[tuple[str, list[str] | None]] = [
    ('say "hi"', None),
    ("back\\slash", ['q"uote', "eu"]),
    ("tab\tnew\nline", ["nul\x00"]),
    ("invoice.paid", ["\x7f"]),
    ("invoice.paid", None),
]
MATCHING_TABLES = [
    (_TYPES, _CHANNELS, _MESSAGES),
    (_ODD_TYPES, _ODD_CHANNELS, _ODD_MESSAGES),
]


class TestMessages:
    async def test_create_message_fans_out_to_matching_enabled_endpoints(
        self, store: Store
    ) -> None:
        app = await new_app(store)
        e_all = await new_endpoint(store, app.id)
        e_empty = await new_endpoint(store, app.id, event_types=[], channels=[])
        e_type = await new_endpoint(store, app.id, event_types=["invoice.paid", "invoice.void"])
        e_other = await new_endpoint(store, app.id, event_types=["user.created"])
        e_chan = await new_endpoint(store, app.id, channels=["eu"])
        e_both = await new_endpoint(store, app.id, event_types=["invoice.paid"], channels=["us"])
        await new_endpoint(store, app.id, disabled=True)
        stranger = await new_app(store)
        await new_endpoint(store, stranger.id)  # another app's endpoint never receives

        cases = [
            ("invoice.paid", ["eu", "ca"], [e_all, e_empty, e_type, e_chan]),
            ("invoice.paid", None, [e_all, e_empty, e_type]),
            ("invoice.paid", ["us"], [e_all, e_empty, e_type, e_both]),
            ("user.created", ["us", "eu"], [e_all, e_empty, e_other, e_chan]),
            ("other.thing", [], [e_all, e_empty]),
        ]
        for event_type, channels, expected_eps in cases:
            expected = set(ids(expected_eps))
            msg = mk_message(app.id, event_type=event_type, channels=channels)
            created = await store.create_message(msg, T0)
            assert (created.created, created.deliveries) == (True, len(expected)), event_type
            assert created.message == msg
            assert await store.get_message(app.id, msg.id) == msg
            page = await store.list_deliveries_for_message(app.id, msg.id, PageRequest(limit=50))
            assert {ep.id for _, ep in page.items} == expected, (event_type, channels)
            for d, ep in page.items:
                assert (d.message_id, d.endpoint_id, d.app_id) == (msg.id, ep.id, app.id)
                assert (d.status, d.attempts) == (PENDING, 0)

    async def test_create_message_for_unknown_app_is_not_found(self, store: Store) -> None:
        ghost = mk_app()
        with pytest.raises(NotFound):
            await store.create_message(mk_message(ghost.id), T0)
        with pytest.raises(NotFound):
            await store.create_message(mk_message(ghost.id, event_id="evt-1"), T0)

    async def test_event_id_makes_create_message_idempotent(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        first = mk_message(app.id, event_id="evt-1")
        c1 = await store.create_message(first, T0)
        assert (c1.created, c1.deliveries) == (True, 1)
        later_ep = await new_endpoint(store, app.id)  # would match a new message

        again = mk_message(app.id, at=T0 + 5, event_id="evt-1", payload=b'{"other":true}')
        c2 = await store.create_message(again, T0 + 5)
        assert (c2.created, c2.deliveries) == (False, 0)
        assert c2.message == first
        assert await store.get_message(app.id, "evt-1") == first
        with pytest.raises(NotFound):
            await store.get_message(app.id, again.id)
        with pytest.raises(NotFound):
            await store.get_delivery(first.id, later_ep.id)
        page = await store.list_deliveries_for_endpoint(app.id, ep.id, PageRequest(limit=10))
        assert [d.message_id for d, _ in page.items] == [first.id]
        assert len(await claim(store, T0 + 5)) == 1

        # the same eventId in another app is another message
        other = await new_app(store)
        c3 = await store.create_message(mk_message(other.id, event_id="evt-1"), T0)
        assert c3.created

    async def test_create_message_is_one_transaction(self, store: Store) -> None:
        """A reader never sees a message without all of its deliveries."""
        app = await new_app(store)
        for _ in range(3):
            await new_endpoint(store, app.id)
        done = asyncio.Event()
        partial: list[tuple[str, int]] = []
        checked = 0

        async def writer() -> None:
            try:
                for i in range(25):
                    await store.create_message(mk_message(app.id, at=T0 + i), T0 + i)
            finally:
                done.set()

        async def reader() -> None:
            nonlocal checked
            while not done.is_set():
                page = await store.list_messages(app.id, PageRequest(limit=100), MessageFilter())
                for m in page.items:
                    ds = await store.list_deliveries_for_message(
                        app.id, m.id, PageRequest(limit=10)
                    )
                    checked += 1
                    if len(ds.items) != 3:
                        partial.append((m.id, len(ds.items)))

        await asyncio.gather(writer(), reader())
        assert partial == []
        page = await store.list_messages(app.id, PageRequest(limit=100), MessageFilter())
        assert len(page.items) == 25

    async def test_endpoint_matching_equals_filters_match(self, store: Store) -> None:
        """The store sends to exactly the endpoints ``domain.matching.filters_match`` accepts,
        however it evaluates the filters (PostgreSQL in SQL where it can, else in Python)."""
        for types_options, channel_options, messages in MATCHING_TABLES:
            app = await new_app(store)
            endpoints = [
                await new_endpoint(store, app.id, event_types=types, channels=chans)
                for types in types_options
                for chans in channel_options
            ]
            for event_type, channels in messages:
                msg = mk_message(app.id, event_type=event_type, channels=channels)
                expected = {
                    ep.id
                    for ep in endpoints
                    if filters_match(ep.event_types, ep.channels, event_type, channels)
                }
                created = await store.create_message(msg, T0)
                assert (created.created, created.deliveries) == (True, len(expected)), msg
                page = await store.list_deliveries_for_message(
                    app.id, msg.id, PageRequest(limit=250)
                )
                assert {ep.id for _, ep in page.items} == expected, (event_type, channels)
            again = mk_message(app.id, event_id="evt-m")
            assert (await store.create_message(again, T0)).created
            repeat = await store.create_message(mk_message(app.id, event_id="evt-m"), T0)
            assert (repeat.created, repeat.deliveries, repeat.message) == (False, 0, again)

    async def test_concurrent_creates_each_get_their_own_answer(self, store: Store) -> None:
        """Creates issued together (which PostgreSQL runs as one statement) answer exactly as
        one by one: matching in SQL and in Python in the same batch, eventIds taken before or
        within the batch, an unknown app failing alone."""
        for types_options, channel_options, messages in MATCHING_TABLES:
            app = await new_app(store)
            endpoints = [
                await new_endpoint(store, app.id, event_types=types, channels=chans)
                for types in types_options
                for chans in channel_options
            ]
            plain = await new_app(store)
            plain_ep = await new_endpoint(store, plain.id, channels=["eu"])
            taken = await send(store, plain.id, event_id="evt-taken")
            ghost = mk_app()

            batch = [mk_message(app.id, event_type=t, channels=c) for t, c in messages]
            batch += [
                mk_message(plain.id, channels=["eu", 'q"uote']),
                mk_message(plain.id, channels=["us"]),
                mk_message(plain.id, event_id="evt-taken", channels=["eu"]),
                mk_message(plain.id, event_id="evt-twice", channels=["eu"]),
                mk_message(plain.id, event_id="evt-twice", channels=["eu"]),
            ]
            results = await asyncio.gather(
                *(store.create_message(m, T0) for m in batch),
                store.create_message(mk_message(ghost.id), T0),
                return_exceptions=True,
            )
            assert isinstance(results[-1], NotFound)
            created = results[:-1]
            for msg, result in zip(batch, created, strict=True):
                assert isinstance(result, CreatedMessage), result
                if msg.app_id == app.id:
                    expected = {
                        ep.id
                        for ep in endpoints
                        if filters_match(ep.event_types, ep.channels, msg.event_type, msg.channels)
                    }
                    assert (result.created, result.deliveries) == (True, len(expected)), msg
                    page = await store.list_deliveries_for_message(
                        app.id, msg.id, PageRequest(limit=250)
                    )
                    assert {ep.id for _, ep in page.items} == expected, msg
            tail = [(r.created, r.deliveries) for r in created[-5:]]  # type: ignore[union-attr]
            assert tail[:3] == [(True, 1), (True, 0), (False, 0)]
            assert sorted(tail[3:]) == [(False, 0), (True, 1)]  # one of the two, either
            assert created[-3].message == taken  # type: ignore[union-attr]
            assert created[-1].message == created[-2].message  # type: ignore[union-attr]
            assert created[-5].message == batch[-5]  # type: ignore[union-attr]
            due = await claim(store, T0, limit=250)
            assert sum(1 for c in due if c.endpoint_id == plain_ep.id) == 2

    async def test_create_message_for_explicit_endpoints(self, store: Store) -> None:
        """``endpoint_ids``: exactly those enabled endpoints of the app, filters ignored."""
        app = await new_app(store)
        picky = await new_endpoint(store, app.id, event_types=["user.created"], channels=["x"])
        plain = await new_endpoint(store, app.id)
        unpicked = await new_endpoint(store, app.id)
        off = await new_endpoint(store, app.id, disabled=True)
        stranger = await new_endpoint(store, (await new_app(store)).id)
        msg = mk_message(app.id, event_id="evt-test")
        wanted = [picky.id, plain.id, off.id, stranger.id, "ep_missing"]
        created = await store.create_message(msg, T0, wanted)
        assert (created.created, created.deliveries, created.message) == (True, 2, msg)
        page = await store.list_deliveries_for_message(app.id, msg.id, PageRequest(limit=10))
        assert {ep.id for _, ep in page.items} == {picky.id, plain.id}
        assert unpicked.id not in {ep.id for _, ep in page.items}

        again = await store.create_message(mk_message(app.id, event_id="evt-test"), T0, wanted)
        assert (again.created, again.deliveries, again.message) == (False, 0, msg)
        none = await store.create_message(mk_message(app.id), T0, [])
        assert (none.created, none.deliveries) == (True, 0)
        with pytest.raises(NotFound) as missing:
            await store.create_message(mk_message(mk_app().id), T0, [plain.id])
        assert missing.value.kind == "application"

    async def test_concurrent_sends_with_one_event_id_create_one_message(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        app = await new_app(store)
        eps = [await new_endpoint(store, app.id) for _ in range(2)]
        async with store_factory() as other:
            sends = [
                s.create_message(mk_message(app.id, event_id="evt-race"), T0)
                for s in [store, other] * 8
            ]
            results = await asyncio.gather(*sends)
        firsts = [r for r in results if r.created]
        assert len(firsts) == 1
        first = firsts[0].message
        assert firsts[0].deliveries == len(eps)
        assert all(r.message == first for r in results)
        assert all(r.deliveries == 0 for r in results if not r.created)
        page = await store.list_messages(app.id, PageRequest(limit=50), MessageFilter())
        assert ids(page.items) == [first.id]
        assert sorted(c.endpoint_id for c in await claim(store, T0)) == sorted(ids(eps))

    async def test_get_message_by_id_or_event_id(self, store: Store) -> None:
        app = await new_app(store)
        msg = await send(store, app.id, event_id="evt-42", channels=["eu"])
        assert await store.get_message(app.id, msg.id) == msg
        assert await store.get_message(app.id, "evt-42") == msg
        assert msg.payload == b'{"amount":42}' and msg.channels == ["eu"]
        other = await new_app(store)
        for ident in (msg.id, "evt-42", "nope"):
            with pytest.raises(NotFound):
                await store.get_message(other.id, ident)
        with pytest.raises(NotFound):
            await store.get_message(app.id, "nope")

    async def test_list_messages_filters_and_paging(self, store: Store) -> None:
        app = await new_app(store)
        m0 = await send(store, app.id, at=T0, event_type="a.one", channels=["eu"])
        m1 = await send(store, app.id, at=T0 + 10, event_type="b.two", channels=["us", "eu"])
        m2 = await send(store, app.id, at=T0 + 20, event_type="a.one")
        m3 = await send(store, app.id, at=T0 + 30, event_type="c.three", channels=["us"])
        other = await new_app(store)
        await send(store, other.id, at=T0 + 15)

        async def listed(filt: MessageFilter, **page: Any) -> list[str]:
            got = await walk(
                lambda p: store.list_messages(app.id, p, filt), lambda m: m.id, limit=2, **page
            )
            return ids(got)

        assert await listed(MessageFilter()) == ids([m0, m1, m2, m3])
        assert await listed(MessageFilter(), descending=True) == ids([m3, m2, m1, m0])
        assert await listed(MessageFilter(event_types=["a.one"])) == ids([m0, m2])
        assert await listed(MessageFilter(event_types=["a.one", "c.three"])) == ids([m0, m2, m3])
        assert await listed(MessageFilter(channel="eu")) == ids([m0, m1])
        assert await listed(MessageFilter(channel="us")) == ids([m1, m3])
        assert await listed(MessageFilter(after=T0 + 10)) == ids([m2, m3])
        assert await listed(MessageFilter(before=T0 + 20)) == ids([m0, m1])
        assert await listed(MessageFilter(after=T0, before=T0 + 30)) == ids([m1, m2])
        assert await listed(MessageFilter(event_types=["a.one"], after=T0)) == ids([m2])

    async def test_expunge_message(self, store: Store) -> None:
        app = await new_app(store)
        msg = await send(store, app.id, payload=b'{"card":"4242-secret"}')
        await store.expunge_message(app.id, msg.id)
        got = await store.get_message(app.id, msg.id)
        assert got.expunged
        assert b"4242-secret" not in got.payload
        assert (got.id, got.event_type, got.created_at) == (msg.id, msg.event_type, msg.created_at)
        other = await new_app(store)
        with pytest.raises(NotFound):
            await store.expunge_message(other.id, msg.id)
        with pytest.raises(NotFound):
            await store.expunge_message(app.id, mk_message(app.id).id)
