"""The store contract: the behaviour every backend of ``hookpost.store.base.Store`` must show.

One test class, run once per backend through the parametrised ``store`` fixture. Times are
explicit integer milliseconds (``now_ms``); no test sleeps. Ids are made with ``new_id`` at
the time the row is said to be created, because the stores treat id order as time order
(keyset paging, ``before``/``after`` filters, ``recover`` and ``endpoint_stats`` ranges).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from hookpost.domain.errors import Conflict, NotFound, StaleWrite
from hookpost.domain.ids import (
    APP,
    ATTEMPT,
    ENDPOINT,
    MESSAGE,
    TOKEN,
    new_id,
)
from hookpost.domain.matching import filters_match
from hookpost.domain.models import (
    ApiToken,
    Application,
    Attempt,
    AttemptResult,
    AttemptStatus,
    ClaimedDelivery,
    DeliveryStatus,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    Page,
    PageRequest,
    SigningKey,
    Trigger,
)
from hookpost.domain.queries import (
    AttemptFilter,
    CreatedMessage,
    FinishOutcome,
    IdempotencyKey,
    MessageFilter,
    QueueDepth,
    SentMessage,
    StoredAnswer,
)
from hookpost.store.base import Store
from hookpost.store.rows import PlainBox

from .conftest import StoreFactory

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


async def claim(store: Store, now: int, limit: int = 100, **kw: Any) -> list[ClaimedDelivery]:
    return await store.claim_due(limit, LEASE, now, **kw)


async def finish(
    store: Store, *results: AttemptResult, now: int, disable_after_ms: int = 5 * DAY
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


# --------------------------------------------------------------------------- the contract


class TestStoreContract:
    # -- lifecycle ---------------------------------------------------------------------------
    async def test_ping(self, store: Store) -> None:
        await store.ping()

    # -- applications ------------------------------------------------------------------------
    async def test_app_round_trip_by_id_and_uid(self, store: Store) -> None:
        app = mk_app(uid="acme", metadata={"plan": "pro"}, throttle_rate=10)
        assert await store.create_app(app) == app
        assert await store.get_app(app.id) == app
        assert await store.get_app("acme") == app
        bare = await new_app(store)
        assert await store.get_app(bare.id) == bare
        assert bare.uid is None and bare.metadata == {}

    async def test_app_duplicate_uid_conflicts(self, store: Store) -> None:
        await new_app(store, uid="acme")
        with pytest.raises(Conflict):
            await new_app(store, uid="acme")
        other = await new_app(store, uid="other")
        with pytest.raises(Conflict):
            await store.update_app(replace(other, uid="acme"))
        assert (await store.get_app(other.id)).uid == "other"
        # apps without a uid never collide
        await new_app(store)
        await new_app(store)

    async def test_app_update_and_delete(self, store: Store) -> None:
        app = await new_app(store, uid="a", throttle_rate=3)
        changed = replace(
            app,
            uid="b",
            name="Renamed",
            metadata={"x": "y"},
            throttle_rate=None,
            updated_at=T0 + 5,
        )
        assert await store.update_app(changed) == changed
        assert await store.get_app("b") == changed
        with pytest.raises(NotFound):
            await store.get_app("a")
        await store.delete_app(app.id)
        with pytest.raises(NotFound):
            await store.get_app(app.id)

    async def test_app_unknown_ids_are_not_found(self, store: Store) -> None:
        ghost = mk_app(uid="ghost")
        with pytest.raises(NotFound):
            await store.get_app(ghost.id)
        with pytest.raises(NotFound):
            await store.get_app("ghost")
        with pytest.raises(NotFound):
            await store.update_app(ghost)
        with pytest.raises(NotFound):
            await store.delete_app(ghost.id)

    async def test_list_apps_keyset_paging(self, store: Store) -> None:
        apps = [await new_app(store, at=T0 + i) for i in range(7)]
        expected = ids(apps)
        assert expected == sorted(expected), "ids sort by creation time"

        p1 = await store.list_apps(PageRequest(limit=3))
        assert (ids(p1.items), p1.done) == (expected[:3], False)
        p2 = await store.list_apps(PageRequest(limit=3, iterator=p1.items[-1].id))
        assert (ids(p2.items), p2.done) == (expected[3:6], False)
        p3 = await store.list_apps(PageRequest(limit=3, iterator=p2.items[-1].id))
        assert (ids(p3.items), p3.done) == (expected[6:], True)
        assert p3.items == apps[6:]

        # backwards (a prevIterator): the page before, still in the list's order
        b2 = await store.list_apps(PageRequest(limit=3, iterator=p3.items[0].id, backwards=True))
        assert (ids(b2.items), b2.done) == (expected[3:6], False)
        b1 = await store.list_apps(PageRequest(limit=3, iterator=b2.items[0].id, backwards=True))
        assert (ids(b1.items), b1.done) == (expected[:3], True)

        # descending (newest first), and back again
        newest = expected[::-1]
        d1 = await store.list_apps(PageRequest(limit=4, descending=True))
        assert (ids(d1.items), d1.done) == (newest[:4], False)
        d2 = await store.list_apps(PageRequest(limit=4, iterator=d1.items[-1].id, descending=True))
        assert (ids(d2.items), d2.done) == (newest[4:], True)
        db = await store.list_apps(
            PageRequest(limit=4, iterator=d2.items[0].id, descending=True, backwards=True)
        )
        assert (ids(db.items), db.done) == (newest[:4], True)

        # a page that ends exactly at the last row is done; past the end is empty and done
        exact = await store.list_apps(PageRequest(limit=7))
        assert (ids(exact.items), exact.done) == (expected, True)
        past = await store.list_apps(PageRequest(limit=3, iterator=expected[-1]))
        assert (past.items, past.done) == ([], True)

    @pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
    async def test_paging_yields_each_row_once_while_rows_arrive(
        self, store: Store, descending: bool
    ) -> None:
        initial = set(ids([await new_app(store, at=T0 + i) for i in range(10)]))
        added: set[str] = set()
        tick = iter(range(1, 1000))

        async def insert_newer_and_older() -> None:
            n = next(tick)
            added.add((await new_app(store, at=T0 + 100 + n)).id)
            added.add((await new_app(store, at=T0 - 100 - n)).id)

        seen = ids(
            await walk(
                store.list_apps,
                lambda a: a.id,
                limit=3,
                descending=descending,
                between=insert_newer_and_older,
            )
        )
        assert len(seen) == len(set(seen)), "a row was returned twice"
        assert initial <= set(seen), "a row that existed before the walk was skipped"
        assert set(seen) <= initial | added
        assert seen == sorted(seen, reverse=descending)
        assert added, "rows were inserted between pages"

    # -- event types -------------------------------------------------------------------------
    async def test_event_type_round_trip_and_conflict(self, store: Store) -> None:
        et = mk_event_type(
            "invoice.paid",
            description="An invoice was paid",
            schemas={"1": {"type": "object", "properties": {"amount": {"type": "integer"}}}},
            feature_flag="beta",
            deprecated=True,
        )
        assert await store.create_event_type(et) == et
        assert await store.get_event_type("invoice.paid") == et
        with pytest.raises(Conflict):
            await store.create_event_type(mk_event_type("invoice.paid"))
        plain = await store.create_event_type(mk_event_type("user.created"))
        assert await store.get_event_type("user.created") == plain
        assert plain.schemas is None and not plain.archived

    async def test_event_types_list_hides_archived(self, store: Store) -> None:
        for name, archived in [("c.three", False), ("a.one", False), ("b.two", True)]:
            await store.create_event_type(mk_event_type(name, archived=archived))
        visible = await store.list_event_types(PageRequest(limit=10))
        assert ([e.name for e in visible.items], visible.done) == (["a.one", "c.three"], True)
        every = await store.list_event_types(PageRequest(limit=10), include_archived=True)
        assert [e.name for e in every.items] == ["a.one", "b.two", "c.three"]
        assert [e.archived for e in every.items] == [False, True, False]
        # keyset paging on the name
        first = await store.list_event_types(PageRequest(limit=1), include_archived=True)
        assert ([e.name for e in first.items], first.done) == (["a.one"], False)
        rest = await store.list_event_types(
            PageRequest(limit=5, iterator="a.one"), include_archived=True
        )
        assert ([e.name for e in rest.items], rest.done) == (["b.two", "c.three"], True)
        back = await store.list_event_types(
            PageRequest(limit=5, iterator="c.three", backwards=True)
        )
        assert ([e.name for e in back.items], back.done) == (["a.one"], True)
        desc = await walk(
            lambda p: store.list_event_types(p, include_archived=True),
            lambda e: e.name,
            limit=2,
            descending=True,
        )
        assert [e.name for e in desc] == ["c.three", "b.two", "a.one"]

    async def test_event_type_update_archive_delete(self, store: Store) -> None:
        et = await store.create_event_type(mk_event_type("invoice.paid"))
        changed = replace(
            et, description="new", schemas={"1": {}}, archived=True, updated_at=T0 + 1
        )
        assert await store.update_event_type(changed) == changed
        assert await store.get_event_type("invoice.paid") == changed
        assert (await store.list_event_types(PageRequest(limit=10))).items == []
        await store.delete_event_type("invoice.paid")
        with pytest.raises(NotFound):
            await store.get_event_type("invoice.paid")
        with pytest.raises(NotFound):
            await store.delete_event_type("invoice.paid")
        with pytest.raises(NotFound):
            await store.update_event_type(changed)

    # -- endpoints ---------------------------------------------------------------------------
    async def test_endpoint_round_trip_with_secrets(self, store: Store) -> None:
        app = await new_app(store)
        ep = mk_endpoint(
            app.id,
            uid="billing",
            url="https://receiver.example/billing?x=1",
            description="billing hooks",
            event_types=["invoice.paid", "invoice.void"],
            channels=["eu"],
            headers={"X-Tenant": "acme"},
            metadata={"team": "billing"},
            keys=[
                SigningKey("whsec_current"),
                SigningKey("whsec_rotated", expires_at=T0 + DAY),
            ],
            throttle_rate=5,
            signature_scheme="standard-v1",
            retry_schedule=[1, 60, 3600],
        )
        assert await store.create_endpoint(ep) == ep
        got = await store.get_endpoint(app.id, ep.id)
        assert got == ep
        assert got.keys == [SigningKey("whsec_current"), SigningKey("whsec_rotated", T0 + DAY)]
        assert await store.get_endpoint(app.id, "billing") == ep
        bare = await new_endpoint(store, app.id)
        got_bare = await store.get_endpoint(app.id, bare.id)
        assert got_bare == bare
        assert got_bare.event_types is None and got_bare.retry_schedule is None

    async def test_endpoint_is_scoped_to_its_app(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store, uid="hook")
        other = await new_app(store)
        with pytest.raises(NotFound):
            await store.get_endpoint(other.id, ep.id)
        with pytest.raises(NotFound):
            await store.get_endpoint(other.id, "hook")
        with pytest.raises(NotFound):
            await store.delete_endpoint(other.id, ep.id)
        with pytest.raises(NotFound):
            await store.update_endpoint(replace(ep, app_id=other.id))
        with pytest.raises(NotFound):
            await store.create_endpoint(mk_endpoint(mk_app().id))  # unknown app
        assert await store.get_endpoint(app.id, ep.id) == ep

    async def test_endpoint_uid_unique_per_app(self, store: Store) -> None:
        a, b = await new_app(store), await new_app(store)
        ep_a = await new_endpoint(store, a.id, uid="hook")
        with pytest.raises(Conflict):
            await new_endpoint(store, a.id, uid="hook")
        ep_b = await new_endpoint(store, b.id, uid="hook")  # same uid, other app: fine
        assert (await store.get_endpoint(a.id, "hook")).id == ep_a.id
        assert (await store.get_endpoint(b.id, "hook")).id == ep_b.id
        second = await new_endpoint(store, a.id, uid="second")
        with pytest.raises(Conflict):
            await store.update_endpoint(replace(second, uid="hook"))
        # no uid: never a conflict
        await new_endpoint(store, a.id)
        await new_endpoint(store, a.id)

    async def test_endpoint_update_list_delete(self, store: Store) -> None:
        app = await new_app(store)
        eps = [await new_endpoint(store, app.id, at=T0 + i) for i in range(5)]
        other = await new_app(store)
        await new_endpoint(store, other.id)

        listed = await walk(lambda p: store.list_endpoints(app.id, p), lambda e: e.id, limit=2)
        assert listed == eps
        newest = await store.list_endpoints(app.id, PageRequest(limit=2, descending=True))
        assert (ids(newest.items), newest.done) == (ids(eps)[::-1][:2], False)

        changed = replace(
            eps[0],
            url="https://elsewhere.example/",
            disabled=True,
            event_types=["user.created"],
            keys=[SigningKey("whsec_next"), SigningKey("whsec_prev", T0 + HOUR)],
            headers={"A": "b"},
            updated_at=T0 + 99,
        )
        assert await store.update_endpoint(changed) == changed
        assert await store.get_endpoint(app.id, eps[0].id) == changed

        await store.delete_endpoint(app.id, eps[1].id)
        with pytest.raises(NotFound):
            await store.get_endpoint(app.id, eps[1].id)
        with pytest.raises(NotFound):
            await store.delete_endpoint(app.id, eps[1].id)
        with pytest.raises(NotFound):
            await store.update_endpoint(eps[1])
        remaining = await store.list_endpoints(app.id, PageRequest(limit=10))
        assert ids(remaining.items) == [eps[0].id, *ids(eps[2:])]

    # -- messages ----------------------------------------------------------------------------
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

    # -- claiming ----------------------------------------------------------------------------
    async def test_claim_only_due_rows_in_due_order(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        late = await send(store, app.id, now=T0 + 30)
        first = await send(store, app.id, now=T0 + 10)
        middle = await send(store, app.id, now=T0 + 20)
        assert await claim(store, T0 + 9) == []
        order = []
        for _ in range(3):
            got = await claim(store, T0 + 30, limit=1)
            assert len(got) == 1
            order.append(got[0].message_id)
        assert order == [first.id, middle.id, late.id]
        assert await claim(store, T0 + 30) == []

    async def test_claim_honours_limit_and_due_time(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        for _ in range(5):
            await send(store, app.id, now=T0)
        assert await claim(store, T0 - 1) == []
        a = await claim(store, T0, limit=3)  # due at creation time
        b = await claim(store, T0, limit=3)
        assert (len(a), len(b)) == (3, 2)
        assert {c.delivery_id for c in a}.isdisjoint(c.delivery_id for c in b)
        assert await claim(store, T0) == []

    async def test_claimed_delivery_carries_what_was_stored(self, store: Store) -> None:
        keys = [SigningKey("whsec_now"), SigningKey("whsec_before", T0 + HOUR)]
        app, ep = await app_with_endpoint(
            store,
            url="https://receiver.example/in",
            headers={"X-Custom": "1", "Authorization": "Bearer t"},
            keys=keys,
            signature_scheme="standard-v1",
            retry_schedule=[2, 4],
        )
        payload = '{"name":"Zoë","emoji":"🎉","n":[1,2.5,null]}'.encode()
        msg = await send(
            store, app.id, at=T0 - 50, now=T0, event_type="user.created", payload=payload
        )
        [c] = await claim(store, T0)
        d = await store.get_delivery(msg.id, ep.id)
        assert d.status == SENDING
        assert isinstance(c.lease, str) and c.lease
        assert c == ClaimedDelivery(
            delivery_id=d.id,
            lease=c.lease,
            app_id=app.id,
            message_id=msg.id,
            endpoint_id=ep.id,
            event_type="user.created",
            payload=payload,
            msg_created_at=T0 - 50,
            attempts=0,
            trigger=Trigger.SCHEDULED,
            url="https://receiver.example/in",
            headers={"X-Custom": "1", "Authorization": "Bearer t"},
            keys=keys,
            signature_scheme="standard-v1",
            retry_schedule=[2, 4],
            due_at=T0,
        )
        assert type(c.payload) is bytes

    async def test_lease_blocks_reclaim_until_it_expires(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [first] = await claim(store, T0)
        assert await claim(store, T0 + 1) == []
        assert await claim(store, T0 + LEASE - 1) == []
        [second] = await claim(store, T0 + LEASE + 1)  # the first worker crashed
        assert second.delivery_id == first.delivery_id
        assert second.lease != first.lease
        assert await claim(store, T0 + LEASE + 2) == []
        # the first worker's late result is stale: recorded, but the delivery stays leased
        out = await finish(store, outcome(first, SUCCEEDED, at=T0 + LEASE + 3), now=T0 + LEASE + 3)
        assert out.stale == 1
        assert (await store.get_delivery(msg.id, ep.id)).status == SENDING
        out = await finish(store, outcome(second, SUCCEEDED, at=T0 + LEASE + 4), now=T0 + LEASE + 4)
        assert out.stale == 0
        assert (await store.get_delivery(msg.id, ep.id)).status == SUCCEEDED

    async def test_claim_from_a_due_time_skips_the_rows_before_it(self, store: Store) -> None:
        """``due_from``: the worker knows that the rows before it belong to endpoints it
        excludes, and does not walk past them again."""
        app, _ = await app_with_endpoint(store)
        early = await send(store, app.id, now=T0 - 30)
        middle = await send(store, app.id, now=T0 - 20)
        late = await send(store, app.id, now=T0 - 10)
        got = await claim(store, T0, due_from=T0 - 20)
        assert [(c.message_id, c.due_at) for c in got] == [
            (middle.id, T0 - 20),
            (late.id, T0 - 10),
        ]
        [rest] = await claim(store, T0)
        assert (rest.message_id, rest.due_at) == (early.id, T0 - 30)

    async def test_claim_excludes_endpoints(self, store: Store) -> None:
        app = await new_app(store)
        e1, e2, e3 = [await new_endpoint(store, app.id) for _ in range(3)]
        await send(store, app.id)
        got = await claim(store, T0, exclude_endpoints=[e1.id, e3.id])
        assert [c.endpoint_id for c in got] == [e2.id]
        assert await claim(store, T0, exclude_endpoints=[e1.id, e3.id]) == []
        rest = await claim(store, T0, exclude_endpoints=())
        assert sorted(c.endpoint_id for c in rest) == sorted([e1.id, e3.id])

    async def test_a_row_that_cannot_be_decoded_does_not_hold_back_its_batch(
        self, store: Store, store_factory: StoreFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = await new_app(store)
        good = await new_endpoint(store, app.id)
        bad = await new_endpoint(store, app.id)
        bad_secret = bad.keys[0].secret
        msg = await send(store, app.id)
        # A claimer whose box cannot open the bad endpoint's keys (say, a rotated main key).
        async with store_factory(box=_BoxThatCannotOpen(bad_secret)) as picky:
            got = await claim(picky, T0)
        assert [c.endpoint_id for c in got] == [good.id]
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert any("cannot be decoded" in e for e in errors), errors
        # The bad row is not lost: leased like the others, and claimed again once that expires.
        assert (await store.get_delivery(msg.id, bad.id)).status == SENDING
        assert await claim(store, T0 + 1) == []
        await finish(store, outcome(got[0], SUCCEEDED, at=T0 + 2), now=T0 + 2)
        again = await claim(store, T0 + LEASE + 1)
        assert [(c.endpoint_id, c.keys[0].secret) for c in again] == [(bad.id, bad_secret)]

    async def test_deliveries_of_a_disabled_endpoint_are_canceled_not_claimed(
        self, store: Store
    ) -> None:
        app = await new_app(store)
        e_on, e_off = await new_endpoint(store, app.id), await new_endpoint(store, app.id)
        msg = await send(store, app.id)
        assert (await store.get_delivery(msg.id, e_off.id)).status == PENDING
        await store.update_endpoint(replace(e_off, disabled=True, updated_at=T0 + 1))
        got = await claim(store, T0 + 2)
        assert [c.endpoint_id for c in got] == [e_on.id]
        assert (await store.get_delivery(msg.id, e_off.id)).status == CANCELED
        assert await claim(store, T0 + 10 * LEASE, exclude_endpoints=[e_on.id]) == []
        depth = await store.queue_depth(T0 + 3)
        assert (depth.due, depth.scheduled) == (0, 0)

    async def test_concurrent_claimers_never_share_a_delivery(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        app = await new_app(store)
        for _ in range(3):
            await new_endpoint(store, app.id)
        for i in range(20):
            await send(store, app.id, now=T0 + i)
        total = 60
        async with store_factory() as other:
            batches = await asyncio.gather(
                *(s.claim_due(7, LEASE, T0 + 100) for s in [store, other] * 6)
            )
            got = [c.delivery_id for batch in batches for c in batch]
            assert len(got) == len(set(got)), "a delivery was handed out twice"
            rest = await other.claim_due(total, LEASE, T0 + 100)
        rest_ids = [c.delivery_id for c in rest]
        assert set(got).isdisjoint(rest_ids)
        assert len(got) + len(rest_ids) == total
        assert await claim(store, T0 + 100) == []

    # -- finishing attempts ------------------------------------------------------------------
    async def test_endpoint_health_follows_the_order_of_results_within_one_batch(
        self, store: Store
    ) -> None:
        app = await new_app(store)
        a, b, c = [await new_endpoint(store, app.id) for _ in range(3)]
        await send(store, app.id)
        first = await claim(store, T0)
        await finish(
            store,
            *(outcome(x, PENDING, at=T0 + 1, retry_at=T0 + DAY) for x in first),
            now=T0 + 1,
        )
        m1, m2 = await send(store, app.id, now=T0 + 2), await send(store, app.id, now=T0 + 2)
        got = {(x.message_id, x.endpoint_id): x for x in await claim(store, T0 + 3)}

        def ok(m: Message, ep: Endpoint, at: int) -> AttemptResult:
            return outcome(got[(m.id, ep.id)], SUCCEEDED, at=at)

        def fail(m: Message, ep: Endpoint, at: int) -> AttemptResult:
            return outcome(got[(m.id, ep.id)], PENDING, at=at, retry_at=T0 + DAY)

        out = await finish(
            store,
            fail(m1, a, T0 + 10),  # a: a failure, then a success: healthy
            ok(m1, b, T0 + 11),  # b: a success, then a failure: one failure, since T0 + 13
            ok(m1, c, T0 + 12),  # c: only successes: healthy
            fail(m2, b, T0 + 13),
            ok(m2, a, T0 + 14),
            ok(m2, c, T0 + 15),
            now=T0 + 20,
        )
        assert out == FinishOutcome(disabled_endpoints=[], stale=0)
        health = {ep.id: await store.get_endpoint(app.id, ep.id) for ep in (a, b, c)}
        assert {k: (h.consecutive_failures, h.first_failure_at) for k, h in health.items()} == {
            a.id: (0, None),
            b.id: (1, T0 + 13),
            c.id: (0, None),
        }

    async def test_finish_success_and_endpoint_health_reset(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        m1, m2 = await send(store, app.id), await send(store, app.id)
        by_msg = {c.message_id: c for c in await claim(store, T0)}
        out = await finish(
            store, outcome(by_msg[m1.id], PENDING, at=T0 + 100, retry_at=T0 + 5000), now=T0 + 100
        )
        assert out == FinishOutcome(disabled_endpoints=[], stale=0)
        health = await store.get_endpoint(app.id, ep.id)
        assert (health.consecutive_failures, health.first_failure_at) == (1, T0 + 100)

        out = await finish(store, outcome(by_msg[m2.id], SUCCEEDED, at=T0 + 200), now=T0 + 200)
        assert out == FinishOutcome(disabled_endpoints=[], stale=0)
        d = await store.get_delivery(m2.id, ep.id)
        assert (d.status, d.attempts, d.next_attempt_at) == (SUCCEEDED, 1, None)
        health = await store.get_endpoint(app.id, ep.id)
        assert (health.consecutive_failures, health.first_failure_at) == (0, None)
        assert not health.disabled
        # only the retry is left to do
        assert [c.message_id for c in await claim(store, T0 + DAY)] == [m1.id]

    async def test_finish_failure_with_retry(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        await finish(store, outcome(c, PENDING, at=T0 + 10, retry_at=T0 + 5000), now=T0 + 10)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.status, d.attempts, d.next_attempt_at) == (PENDING, 1, T0 + 5000)
        assert await store.next_due_at() == T0 + 5000
        assert await claim(store, T0 + 4999) == []
        [again] = await claim(store, T0 + 5000)
        assert (again.delivery_id, again.attempts, again.trigger) == (
            c.delivery_id,
            1,
            Trigger.SCHEDULED,
        )
        await finish(store, outcome(again, SUCCEEDED, at=T0 + 5001), now=T0 + 5001)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.status, d.attempts) == (SUCCEEDED, 2)

    async def test_update_endpoint_only_if_unchanged_since_read(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        read = await store.get_endpoint(app.id, ep.id)
        later = read.updated_at + 1
        await store.update_endpoint(
            replace(read, description="first", updated_at=later), read.updated_at
        )
        with pytest.raises(StaleWrite):  # a second writer that read the same row
            await store.update_endpoint(
                replace(read, description="second", updated_at=later), read.updated_at
            )
        current = await store.get_endpoint(app.id, ep.id)
        assert (current.description, current.updated_at) == ("first", later)
        with pytest.raises(NotFound):
            await store.update_endpoint(mk_endpoint(app.id), 0)

        # The worker disabling the endpoint is a write as well, even in the same millisecond.
        await send(store, app.id)
        [c] = await claim(store, T0)
        await finish(store, outcome(c, FAILED, at=later, reason="HTTP 410"), now=later)
        with pytest.raises(StaleWrite):
            await store.update_endpoint(replace(current, description="stale"), current.updated_at)
        off = await store.get_endpoint(app.id, ep.id)
        assert off.disabled and off.description == "first" and off.updated_at > later
        await store.update_endpoint(replace(off, description="fresh"), off.updated_at)
        assert (await store.get_endpoint(app.id, ep.id)).description == "fresh"

    async def test_update_endpoint_keeps_health_and_re_enable_resets_it(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        stale = await store.get_endpoint(app.id, ep.id)  # read before the failure
        await send(store, app.id)
        [c] = await claim(store, T0)
        await finish(store, outcome(c, PENDING, at=T0 + 10, retry_at=T0 + 5000), now=T0 + 10)
        stale.description = "edited from a stale read"
        await store.update_endpoint(stale)
        now = await store.get_endpoint(app.id, ep.id)
        assert (now.description, now.consecutive_failures, now.first_failure_at) == (
            "edited from a stale read",
            1,
            T0 + 10,
        )
        now.disabled = True
        await store.update_endpoint(now)
        disabled = await store.get_endpoint(app.id, ep.id)
        assert disabled.disabled and disabled.consecutive_failures == 1
        disabled.disabled = False
        await store.update_endpoint(disabled)
        enabled = await store.get_endpoint(app.id, ep.id)
        assert (enabled.disabled, enabled.consecutive_failures, enabled.first_failure_at) == (
            False,
            0,
            None,
        )

    async def test_finish_failure_final(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        await fail_final(store, c, T0 + 10)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.status, d.attempts, d.next_attempt_at) == (FAILED, 1, None)
        assert await claim(store, T0 + 10 * DAY) == []
        assert await store.next_due_at() is None
        attempts = await store.list_attempts(app.id, PageRequest(limit=10), AttemptFilter())
        assert [a.status for a in attempts.items] == [AttemptStatus.FAIL]

    async def test_finish_with_a_lost_lease_is_stale(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        bad = outcome(c, SUCCEEDED, at=T0 + 10, lease="not-the-lease")
        out = await finish(store, bad, now=T0 + 10)
        assert out == FinishOutcome(disabled_endpoints=[], stale=1)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.status, d.attempts) == (SENDING, 0)
        attempts = await store.list_attempts(app.id, PageRequest(limit=10), AttemptFilter())
        assert attempts.items == [bad.attempt]  # the attempt really happened: recorded
        # the real owner can still finish
        out = await finish(store, outcome(c, SUCCEEDED, at=T0 + 11), now=T0 + 11)
        assert out.stale == 0
        assert (await store.get_delivery(msg.id, ep.id)).status == SUCCEEDED

    async def test_finish_after_the_endpoint_was_deleted_mid_flight(self, store: Store) -> None:
        """A result for a delivery that no longer exists must not sink the rest of the batch."""
        app = await new_app(store)
        gone, stays = await new_endpoint(store, app.id), await new_endpoint(store, app.id)
        msg = await send(store, app.id)
        by_ep = {c.endpoint_id: c for c in await claim(store, T0)}
        await store.delete_endpoint(app.id, gone.id)
        out = await finish(
            store,
            outcome(by_ep[gone.id], FAILED, at=T0 + 1),
            outcome(by_ep[stays.id], SUCCEEDED, at=T0 + 1),
            now=T0 + 1,
        )
        assert out == FinishOutcome(disabled_endpoints=[], stale=1)
        assert (await store.get_delivery(msg.id, stays.id)).status == SUCCEEDED
        attempts = await store.list_attempts(app.id, PageRequest(limit=10), AttemptFilter())
        assert [a.endpoint_id for a in attempts.items] == [stays.id]

    async def test_finish_can_disable_the_endpoint(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        reason = "endpoint answered HTTP 410 Gone"
        out = await finish(
            store,
            outcome(c, FAILED, at=T0 + 10, reason=reason, response_status_code=410),
            now=T0 + 10,
        )
        assert out == FinishOutcome(disabled_endpoints=[(app.id, ep.id, reason)], stale=0)
        got = await store.get_endpoint(app.id, ep.id)
        assert (got.disabled, got.disabled_reason) == (True, reason)
        assert (await store.get_delivery(msg.id, ep.id)).status == FAILED
        later = await store.create_message(mk_message(app.id, at=T0 + 20), T0 + 20)
        assert later.deliveries == 0

    async def test_endpoint_auto_disabled_after_failing_for_too_long(self, store: Store) -> None:
        window = HOUR
        app, ep = await app_with_endpoint(store)
        for i, at in enumerate([T0, T0 + window // 2, T0 + window - 1]):
            await send(store, app.id, now=at)
            [c] = await claim(store, at)
            out = await store.finish_attempts(
                [outcome(c, PENDING, at=at, retry_at=at + 10 * DAY)], at, window
            )
            assert out == FinishOutcome(disabled_endpoints=[], stale=0)
            health = await store.get_endpoint(app.id, ep.id)
            assert not health.disabled
            assert (health.consecutive_failures, health.first_failure_at) == (i + 1, T0)

        at = T0 + window + 1
        await send(store, app.id, now=at)
        await send(store, app.id, now=at)
        a, b = await claim(store, at)
        out = await store.finish_attempts(
            [outcome(a, PENDING, at=at, retry_at=at + DAY), outcome(b, FAILED, at=at)],
            at,
            window,
        )
        assert out.stale == 0
        assert len(out.disabled_endpoints) == 1, "reported once, however many failures"
        app_id, ep_id, reason = out.disabled_endpoints[0]
        assert (app_id, ep_id) == (app.id, ep.id) and reason
        health = await store.get_endpoint(app.id, ep.id)
        assert (health.disabled, health.disabled_reason) == (True, reason)
        assert health.consecutive_failures == 5

    # -- release, resend, recover ------------------------------------------------------------
    async def test_release_returns_leased_rows_to_pending_now(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        m1, m2 = await send(store, app.id), await send(store, app.id)
        by_msg = {c.message_id: c for c in await claim(store, T0)}
        c1, c2 = by_msg[m1.id], by_msg[m2.id]
        released = await store.release(
            [(c1.delivery_id, c1.lease), (c2.delivery_id, "someone-else")], T0 + 10
        )
        assert released == 1
        assert (await store.get_delivery(m1.id, ep.id)).status == PENDING
        assert (await store.get_delivery(m2.id, ep.id)).status == SENDING
        [again] = await claim(store, T0 + 10)  # due now, well before the lease would expire
        assert (again.delivery_id, again.attempts) == (c1.delivery_id, 0)
        await finish(store, outcome(again, SUCCEEDED, at=T0 + 11), now=T0 + 11)
        assert await store.release([(again.delivery_id, again.lease)], T0 + 12) == 0
        assert await store.release([], T0 + 12) == 0

    async def test_resend_makes_a_delivery_due_now_as_manual(self, store: Store) -> None:
        app, e1 = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        await fail_final(store, c, T0 + 1)
        e2 = await new_endpoint(store, app.id, at=T0 + 2)  # no delivery for msg yet
        e3 = await new_endpoint(store, app.id, at=T0 + 2)
        with pytest.raises(NotFound):
            await store.get_delivery(msg.id, e2.id)

        await store.resend(app.id, msg.id, e1.id, T0 + 1000)
        await store.resend(app.id, msg.id, e2.id, T0 + 1000)
        for ep in (e1, e2):
            assert (await store.get_delivery(msg.id, ep.id)).status == PENDING
        assert (await store.queue_depth(T0 + 1000)).due == 2
        assert await claim(store, T0 + 999) == []
        got = await claim(store, T0 + 1000)
        assert sorted(key_of(x) for x in got) == sorted([(msg.id, e1.id), (msg.id, e2.id)])
        assert {x.trigger for x in got} == {Trigger.MANUAL}
        with pytest.raises(NotFound):
            await store.get_delivery(msg.id, e3.id)

    async def test_resend_of_a_delivery_waiting_for_a_retry(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        [c] = await claim(store, T0)
        await finish(store, outcome(c, PENDING, at=T0 + 1, retry_at=T0 + HOUR), now=T0 + 1)
        await store.resend(app.id, msg.id, ep.id, T0 + 50)
        [again] = await claim(store, T0 + 50)
        assert (again.delivery_id, again.trigger) == (c.delivery_id, Trigger.MANUAL)

    async def test_resend_of_unknown_or_foreign_rows_is_not_found(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        other, other_ep = await app_with_endpoint(store)
        other_msg = await send(store, other.id)
        for app_id, msg_id, ep_id in [
            (app.id, mk_message(app.id).id, ep.id),  # no such message
            (app.id, msg.id, mk_endpoint(app.id).id),  # no such endpoint
            (other.id, msg.id, ep.id),  # both belong to another app
            (app.id, msg.id, other_ep.id),  # the endpoint belongs to another app
            (app.id, other_msg.id, ep.id),  # the message belongs to another app
        ]:
            with pytest.raises(NotFound):
                await store.resend(app_id, msg_id, ep_id, T0 + 1)
        with pytest.raises(NotFound):
            await store.get_delivery(msg.id, other_ep.id)
        with pytest.raises(NotFound):
            await store.get_delivery(other_msg.id, ep.id)
        assert (await store.get_delivery(msg.id, ep.id)).status == PENDING

    async def test_recover_requeues_failed_and_canceled_in_range(self, store: Store) -> None:
        app = await new_app(store)
        ep = await new_endpoint(store, app.id, at=T0 - DAY)
        other_ep = await new_endpoint(store, app.id, at=T0 - DAY)
        since, until = T0, T0 + 10_000
        old = await send(store, app.id, at=since - 1, now=T0)
        first = await send(store, app.id, at=since, now=T0)
        ok = await send(store, app.id, at=since + 1, now=T0)
        edge = await send(store, app.id, at=until, now=T0)  # outside: until is exclusive
        for c in await claim(store, T0):
            if c.endpoint_id == ep.id and c.message_id == ok.id:
                await finish(store, outcome(c, SUCCEEDED, at=T0), now=T0)
            else:
                await fail_final(store, c, T0)
        # a canceled one: the endpoint was disabled when the delivery came due
        canceled = await send(store, app.id, at=since + 5000, now=T0 + 1)
        await store.update_endpoint(replace(ep, disabled=True))
        assert await claim(store, T0 + 1, exclude_endpoints=[other_ep.id]) == []
        assert (await store.get_delivery(canceled.id, ep.id)).status == CANCELED
        await store.update_endpoint(replace(ep, disabled=False))
        await fail_final(store, (await claim(store, T0 + 1))[0], T0 + 1)  # other_ep's

        recovered = await store.recover(app.id, ep.id, since, until, T0 + 20_000)
        assert recovered == 2
        for msg, status in [
            (old, FAILED),
            (first, PENDING),
            (ok, SUCCEEDED),
            (edge, FAILED),
            (canceled, PENDING),
        ]:
            d = await store.get_delivery(msg.id, ep.id)
            assert d.status == status, msg
            if status == PENDING:
                assert d.attempts == 0
        # other endpoints are untouched
        assert (await store.get_delivery(first.id, other_ep.id)).status == FAILED
        got = await claim(store, T0 + 20_000)
        assert sorted(c.message_id for c in got) == sorted([first.id, canceled.id])
        assert {(c.endpoint_id, c.attempts) for c in got} == {(ep.id, 0)}

        # no upper bound: everything since
        for c in got:
            await fail_final(store, c, T0 + 20_001)
        assert await store.recover(app.id, ep.id, since, None, T0 + 30_000) == 3
        assert await store.recover(app.id, ep.id, since, None, T0 + 30_000) == 0

    async def test_get_delivery_unknown_is_not_found(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        with pytest.raises(NotFound):
            await store.get_delivery(msg.id, mk_endpoint(app.id).id)
        with pytest.raises(NotFound):
            await store.get_delivery(mk_message(app.id).id, ep.id)
        d = await store.get_delivery(msg.id, ep.id)
        assert (d.app_id, d.message_id, d.endpoint_id, d.status) == (app.id, msg.id, ep.id, PENDING)

    async def test_queue_depth_and_next_due_at(self, store: Store) -> None:
        assert await store.queue_depth(T0) == QueueDepth(due=0, oldest_due_at=None, scheduled=0)
        assert await store.next_due_at() is None
        app, _ = await app_with_endpoint(store)
        await send(store, app.id, now=T0)
        assert len(await claim(store, T0)) == 1  # SENDING, lease expires at T0 + LEASE
        assert await store.next_due_at() == T0 + LEASE
        await send(store, app.id, now=T0 + 10)
        await send(store, app.id, now=T0 + 20)
        [retrying] = await claim(store, T0 + 20, limit=1)
        await finish(
            store, outcome(retrying, PENDING, at=T0 + 21, retry_at=T0 + 2 * LEASE), now=T0 + 21
        )
        # one due (T0+20), one scheduled retry, one leased (neither due nor scheduled)
        assert await store.queue_depth(T0 + 500) == QueueDepth(
            due=1, oldest_due_at=T0 + 20, scheduled=1
        )
        assert await store.next_due_at() == T0 + 20
        # the lease has expired: that delivery is due again
        assert await store.queue_depth(T0 + LEASE + 1) == QueueDepth(
            due=2, oldest_due_at=T0 + 20, scheduled=1
        )
        assert await store.queue_depth(T0 + 2 * LEASE) == QueueDepth(
            due=3, oldest_due_at=T0 + 20, scheduled=0
        )
        for c in await claim(store, T0 + 2 * LEASE):
            await finish(store, outcome(c, SUCCEEDED, at=T0 + 2 * LEASE), now=T0 + 2 * LEASE)
        assert await store.queue_depth(T0 + DAY) == QueueDepth(0, None, 0)
        assert await store.next_due_at() is None

    # -- attempts and delivery views ---------------------------------------------------------
    async def _attempt_history(
        self, store: Store
    ) -> tuple[Application, Endpoint, Endpoint, Message, Message, list[Attempt]]:
        """Two endpoints x two messages (types a.one, b.two), six attempts at distinct times.

        (m1, e1): fail, then success   (m1, e2): success
        (m2, e1): fail, then fail final (m2, e2): success
        """
        app = await new_app(store)
        e1 = await new_endpoint(store, app.id, at=T0 - 2)
        e2 = await new_endpoint(store, app.id, at=T0 - 1)
        m1 = await send(store, app.id, at=T0, event_type="a.one")
        m2 = await send(store, app.id, at=T0 + 1, event_type="b.two")
        first = {key_of(c): c for c in await claim(store, T0 + 1)}
        r = [
            outcome(first[m1.id, e1.id], PENDING, at=T0 + 100, retry_at=T0 + 1000),
            outcome(first[m1.id, e2.id], SUCCEEDED, at=T0 + 101),
            outcome(first[m2.id, e1.id], PENDING, at=T0 + 102, retry_at=T0 + 1000),
            outcome(first[m2.id, e2.id], SUCCEEDED, at=T0 + 103, response="secret-body"),
        ]
        await finish(store, *r, now=T0 + 103)
        second = {key_of(c): c for c in await claim(store, T0 + 1000)}
        r += [
            outcome(second[m1.id, e1.id], SUCCEEDED, at=T0 + 1001),
            outcome(second[m2.id, e1.id], FAILED, at=T0 + 1002),
        ]
        await finish(store, *r[4:], now=T0 + 1002)
        return app, e1, e2, m1, m2, [x.attempt for x in r]

    async def test_list_attempts_filters_and_paging(self, store: Store) -> None:
        app, e1, e2, m1, m2, a = await self._attempt_history(store)
        other = await new_app(store)

        async def listed(filt: AttemptFilter, *, descending: bool = False) -> list[Attempt]:
            return await walk(
                lambda p: store.list_attempts(app.id, p, filt),
                lambda x: x.id,
                limit=4,
                descending=descending,
            )

        assert await listed(AttemptFilter()) == a
        assert await listed(AttemptFilter(), descending=True) == a[::-1]
        assert await listed(AttemptFilter(endpoint_id=e1.id)) == [a[0], a[2], a[4], a[5]]
        assert await listed(AttemptFilter(message_id=m1.id)) == [a[0], a[1], a[4]]
        assert await listed(AttemptFilter(status=AttemptStatus.FAIL)) == [a[0], a[2], a[5]]
        assert await listed(AttemptFilter(status=AttemptStatus.SUCCESS, endpoint_id=e2.id)) == [
            a[1],
            a[3],
        ]
        assert await listed(AttemptFilter(event_types=["b.two"])) == [a[2], a[3], a[5]]
        assert await listed(AttemptFilter(after=T0 + 101)) == a[2:]
        assert await listed(AttemptFilter(before=T0 + 1001)) == a[:4]
        assert await listed(AttemptFilter(after=T0 + 101, before=T0 + 1002)) == a[2:5]
        assert await listed(AttemptFilter(message_id=m2.id, endpoint_id=e1.id)) == [a[2], a[5]]
        first = await store.list_attempts(
            app.id, PageRequest(limit=4, descending=True), AttemptFilter()
        )
        assert (first.items, first.done) == (a[::-1][:4], False)
        empty = await store.list_attempts(other.id, PageRequest(limit=10), AttemptFilter())
        assert (empty.items, empty.done) == ([], True)

    async def test_get_and_expunge_attempt(self, store: Store) -> None:
        app, _, _, m1, m2, a = await self._attempt_history(store)
        assert await store.get_attempt(app.id, m2.id, a[3].id) == a[3]
        assert a[3].response == "secret-body"
        with pytest.raises(NotFound):
            await store.get_attempt(app.id, m1.id, a[3].id)  # not that message's
        other = await new_app(store)
        with pytest.raises(NotFound):
            await store.get_attempt(other.id, m2.id, a[3].id)
        await store.expunge_attempt(app.id, m2.id, a[3].id)
        got = await store.get_attempt(app.id, m2.id, a[3].id)
        assert "secret-body" not in got.response
        assert replace(got, response=a[3].response) == a[3]  # only the body is gone
        with pytest.raises(NotFound):
            await store.expunge_attempt(app.id, m1.id, a[3].id)
        with pytest.raises(NotFound):
            await store.expunge_attempt(app.id, m2.id, new_id(ATTEMPT))

    async def test_list_deliveries_for_message(self, store: Store) -> None:
        app, e1, e2, m1, m2, _ = await self._attempt_history(store)
        page = await store.list_deliveries_for_message(app.id, m2.id, PageRequest(limit=10))
        assert page.done
        by_ep = {ep.id: (d, ep) for d, ep in page.items}
        assert set(by_ep) == {e1.id, e2.id}
        assert by_ep[e1.id][1] == await store.get_endpoint(app.id, e1.id)
        assert (by_ep[e1.id][0].status, by_ep[e1.id][0].attempts) == (FAILED, 2)
        assert (by_ep[e2.id][0].status, by_ep[e2.id][0].attempts) == (SUCCEEDED, 1)
        assert by_ep[e1.id][0] == await store.get_delivery(m2.id, e1.id)
        # paged by endpoint id
        walked = await walk(
            lambda p: store.list_deliveries_for_message(app.id, m1.id, p),
            lambda pair: pair[1].id,
            limit=1,
        )
        assert [ep.id for _, ep in walked] == sorted([e1.id, e2.id])
        other = await new_app(store)
        empty = await store.list_deliveries_for_message(other.id, m1.id, PageRequest(limit=10))
        assert empty.items == []

    async def test_list_deliveries_for_endpoint(self, store: Store) -> None:
        app, e1, e2, m1, m2, _ = await self._attempt_history(store)
        m3 = await send(store, app.id, at=T0 + 2000, now=T0 + 2000)

        Row = tuple[str, DeliveryStatus]

        async def listed(ep: Endpoint, status: DeliveryStatus | None = None) -> list[Row]:
            pairs = await walk(
                lambda p: store.list_deliveries_for_endpoint(app.id, ep.id, p, status),
                lambda pair: pair[1].id,
                limit=1,
            )
            for d, m in pairs:
                assert d.message_id == m.id and d.endpoint_id == ep.id
                assert m == await store.get_message(app.id, m.id)
            return [(m.id, d.status) for d, m in pairs]

        assert await listed(e1) == [(m1.id, SUCCEEDED), (m2.id, FAILED), (m3.id, PENDING)]
        assert await listed(e2) == [(m1.id, SUCCEEDED), (m2.id, SUCCEEDED), (m3.id, PENDING)]
        assert await listed(e1, SUCCEEDED) == [(m1.id, SUCCEEDED)]
        assert await listed(e1, FAILED) == [(m2.id, FAILED)]
        assert await listed(e2, FAILED) == []
        assert await listed(e2, PENDING) == [(m3.id, PENDING)]

    async def test_endpoint_stats_counts_per_status(self, store: Store) -> None:
        app = await new_app(store)
        ep = await new_endpoint(store, app.id, at=T0 - 1)
        spare = await new_endpoint(store, app.id, at=T0 - 1, event_types=["other.thing"])
        # created at T0..T0+5; deliveries due at T0
        ms = [await send(store, app.id, at=T0 + i, now=T0) for i in range(6)]
        outcomes = {  # message index -> final status
            0: SUCCEEDED,
            1: SUCCEEDED,
            2: FAILED,
            3: SENDING,
            4: PENDING,
            5: CANCELED,
        }
        claimed = {c.message_id: c for c in await claim(store, T0, limit=4)}  # ms[0..3]
        assert set(claimed) == {m.id for m in ms[:4]}
        for i in (0, 1):
            await finish(store, outcome(claimed[ms[i].id], SUCCEEDED, at=T0 + 10), now=T0 + 10)
        await fail_final(store, claimed[ms[2].id], T0 + 10)
        # ms[4]: leave pending but not due; ms[5]: canceled by a disabled endpoint
        await store.resend(app.id, ms[4].id, ep.id, T0 + DAY)
        await store.update_endpoint(replace(ep, disabled=True))
        assert await claim(store, T0 + 11) == []
        await store.update_endpoint(replace(ep, disabled=False))
        for i, status in outcomes.items():
            assert (await store.get_delivery(ms[i].id, ep.id)).status == status, i

        stats = await store.endpoint_stats(app.id, ep.id, None, None)
        assert stats == EndpointStats(pending=1, sending=1, success=2, fail=1, canceled=1)
        # the window is on the message's creation time: [since, until)
        assert await store.endpoint_stats(app.id, ep.id, T0 + 1, T0 + 4) == EndpointStats(
            success=1, fail=1, sending=1
        )
        assert await store.endpoint_stats(app.id, ep.id, T0 + 4, None) == EndpointStats(
            pending=1, canceled=1
        )
        assert await store.endpoint_stats(app.id, ep.id, None, T0 + 1) == EndpointStats(success=1)
        assert await store.endpoint_stats(app.id, spare.id, None, None) == EndpointStats()
        other = await new_app(store)
        assert await store.endpoint_stats(other.id, ep.id, None, None) == EndpointStats()

    # -- tokens and idempotency --------------------------------------------------------------
    async def test_tokens(self, store: Store) -> None:
        app = await new_app(store)
        assert await store.count_admin_tokens() == 0
        admin = ApiToken(new_id(TOKEN), "hash-admin", None, "bootstrap", T0, None)
        scoped = ApiToken(new_id(TOKEN), "hash-app", app.id, "ci", T0, T0 + DAY)
        await store.create_token(admin)
        await store.create_token(scoped)
        assert await store.find_token("hash-admin") == admin
        assert await store.find_token("hash-app") == scoped
        assert await store.find_token("hash-nope") is None
        assert await store.count_admin_tokens() == 1
        await store.create_token(ApiToken(new_id(TOKEN), "hash-admin-2", None, "", T0))
        assert await store.count_admin_tokens() == 2
        assert await store.delete_token("hash-app") is True
        assert await store.find_token("hash-app") is None
        assert await store.delete_token("hash-app") is False
        assert await store.find_token("hash-admin") == admin

    async def test_idempotency_keys(self, store: Store) -> None:
        assert await store.get_idempotent("app_1", "key-1", T0) is None
        stored = await store.put_idempotent("app_1", "key-1", 201, b'{"id":"msg_1"}', T0 + 1000, T0)
        assert stored is None
        first = StoredAnswer(201, b'{"id":"msg_1"}')
        assert await store.get_idempotent("app_1", "key-1", T0) == first
        assert await store.get_idempotent("app_1", "key-1", T0 + 999) == first
        assert await store.get_idempotent("app_1", "key-1", T0 + 1001) is None  # expired
        assert await store.get_idempotent("app_2", "key-1", T0) is None  # scoped
        assert await store.get_idempotent("app_1", "key-2", T0) is None
        # put again before expiry: the first answer wins, and comes back
        second = await store.put_idempotent("app_1", "key-1", 422, b"later", T0 + 3000, T0 + 10)
        assert second == first
        assert await store.get_idempotent("app_1", "key-1", T0 + 20) == first
        # put again after expiry: replaced
        again = await store.put_idempotent(
            "app_1", "key-1", 409, b"\x00\xffraw", T0 + 5000, T0 + 1000
        )
        assert again is None
        assert await store.get_idempotent("app_1", "key-1", T0 + 2000) == StoredAnswer(
            409, b"\x00\xffraw"
        )

    async def test_a_created_message_records_its_idempotency_key(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        first = IdempotencyKey("tok_1", "POST /msg k1", T0 + 1000)
        created = await store.create_message(mk_message(app.id, event_id="e1"), T0, None, first)
        assert created.created and created.deliveries == 1
        sent = SentMessage(created.message.id)
        assert await store.get_idempotent("tok_1", "POST /msg k1", T0) == sent
        assert await store.get_idempotent("tok_1", "POST /msg k1", T0 + 1001) is None  # expires
        # Not created (its eventId is taken): the key is not recorded; the caller answers 409.
        second = IdempotencyKey("tok_1", "POST /msg k2", T0 + 1000)
        again = await store.create_message(mk_message(app.id, event_id="e1"), T0, None, second)
        assert not again.created
        assert await store.get_idempotent("tok_1", "POST /msg k2", T0) is None
        # A key holding a send's message wins over a later answer, as any answer does.
        later = await store.put_idempotent("tok_1", "POST /msg k1", 422, b"no", T0 + 2000, T0)
        assert later == sent
        # Concurrent creates, each with its own key (one group or batch on the backends
        # that make them together).
        keys = [IdempotencyKey("tok_1", f"POST /msg c{i}", T0 + 1000) for i in range(20)]
        made = await asyncio.gather(
            *(store.create_message(mk_message(app.id), T0, None, k) for k in keys)
        )
        assert all(m.created for m in made)
        for k, m in zip(keys, made, strict=True):
            assert await store.get_idempotent(k.scope, k.key, T0) == SentMessage(m.message.id)

    async def test_an_answered_key_is_replayed_and_nothing_created(self, store: Store) -> None:
        """A key answered before (by a message or by put_idempotent, say a 422) wins over the
        message given with it: nothing is created, what the key holds comes back. An expired
        key does not count."""
        app, _ = await app_with_endpoint(store)
        first = IdempotencyKey("tok_1", "POST /msg k1", T0 + 1000)
        made = await store.create_message(mk_message(app.id), T0, None, first)
        assert made.created and made.replayed is None
        repeat = IdempotencyKey("tok_1", "POST /msg k1", T0 + 2000)
        again = await store.create_message(mk_message(app.id, event_id="e9"), T0 + 1, None, repeat)
        assert not again.created and again.deliveries == 0
        assert again.replayed == SentMessage(made.message.id)
        await store.put_idempotent("tok_1", "POST /msg k2", 422, b"invalid", T0 + 1000, T0)
        keys = [
            IdempotencyKey("tok_1", "POST /msg k2", T0 + 1000),
            *(IdempotencyKey("tok_1", f"POST /msg f{i}", T0 + 1000) for i in range(5)),
        ]
        results = await asyncio.gather(
            *(store.create_message(mk_message(app.id), T0 + 1, None, k) for k in keys)
        )  # one group or batch on the backends that make them together
        assert results[0].replayed == StoredAnswer(422, b"invalid") and not results[0].created
        assert all(r.created and r.replayed is None for r in results[1:])
        page = await store.list_messages(app.id, PageRequest(limit=50), MessageFilter())
        assert {m.id for m in page.items} == {made.message.id} | {
            r.message.id for r in results[1:]
        }  # neither repeat was stored, and their eventIds are free
        expired = await store.create_message(mk_message(app.id), T0 + 1000, None, repeat)
        assert expired.created and expired.replayed is None
        assert await store.get_idempotent(repeat.scope, repeat.key, T0 + 1000) == SentMessage(
            expired.message.id
        )

    # -- deletion ----------------------------------------------------------------------------
    async def test_delete_app_cascades(self, store: Store) -> None:
        async def populated() -> tuple[Application, Endpoint, Message, ApiToken]:
            app, ep = await app_with_endpoint(store)
            msg = await send(store, app.id)
            token = ApiToken(new_id(TOKEN), "hash-" + app.id, app.id, "t", T0)
            await store.create_token(token)
            return app, ep, msg, token

        doomed, d_ep, d_msg, d_token = await populated()
        kept, k_ep, k_msg, k_token = await populated()
        for c in await claim(store, T0):
            await finish(store, outcome(c, PENDING, at=T0 + 1, retry_at=T0 + 2), now=T0 + 1)

        await store.delete_app(doomed.id)
        with pytest.raises(NotFound):
            await store.get_app(doomed.id)
        with pytest.raises(NotFound):
            await store.get_endpoint(doomed.id, d_ep.id)
        with pytest.raises(NotFound):
            await store.get_message(doomed.id, d_msg.id)
        with pytest.raises(NotFound):
            await store.get_delivery(d_msg.id, d_ep.id)
        page = PageRequest(limit=10)
        assert (await store.list_endpoints(doomed.id, page)).items == []
        assert (await store.list_messages(doomed.id, page, MessageFilter())).items == []
        assert (await store.list_attempts(doomed.id, page, AttemptFilter())).items == []
        assert await store.find_token(d_token.token_hash) is None
        assert [c.app_id for c in await claim(store, T0 + 2)] == [kept.id]
        with pytest.raises(NotFound):
            await store.delete_app(doomed.id)
        # the other app is intact
        assert await store.get_app(kept.id) == kept
        assert (await store.get_endpoint(kept.id, k_ep.id)).id == k_ep.id
        assert await store.get_message(kept.id, k_msg.id) == k_msg
        assert await store.find_token(k_token.token_hash) == k_token
        assert len((await store.list_attempts(kept.id, page, AttemptFilter())).items) == 1

    async def test_delete_endpoint_removes_its_deliveries(self, store: Store) -> None:
        app = await new_app(store)
        gone, stays = await new_endpoint(store, app.id), await new_endpoint(store, app.id)
        msg = await send(store, app.id)
        await store.delete_endpoint(app.id, gone.id)
        with pytest.raises(NotFound):
            await store.get_delivery(msg.id, gone.id)
        assert [c.endpoint_id for c in await claim(store, T0)] == [stays.id]
        assert await store.get_message(app.id, msg.id) == msg

    # -- waking workers ----------------------------------------------------------------------
    async def test_on_new_work_fires_after_create_message(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        woke = asyncio.Event()
        threads: list[int] = []

        def callback() -> None:
            threads.append(threading.get_ident())
            woke.set()

        store.on_new_work(callback)
        created = await store.create_message(mk_message(app.id), T0)
        assert created.deliveries == 1
        await wait_for(woke)
        assert threads[0] == threading.get_ident(), "called on the event loop's thread"

    async def test_on_new_work_fires_after_resend(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store, event_types=["other.thing"])
        msg = await send(store, app.id)  # matches nothing: no deliveries, no wake-up
        woke = asyncio.Event()
        store.on_new_work(woke.set)
        await store.resend(app.id, msg.id, ep.id, T0 + 1)
        await wait_for(woke)
        [c] = await claim(store, T0 + 1)
        assert (c.endpoint_id, c.trigger) == (ep.id, Trigger.MANUAL)

    async def test_on_new_work_fires_after_release_and_recover(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        step = [asyncio.Event()]
        store.on_new_work(lambda: step[-1].set())
        await send(store, app.id)
        await wait_for(step[-1])  # the create's wake-up, so none is left in flight

        [c] = await claim(store, T0)
        step.append(asyncio.Event())
        assert await store.release([(c.delivery_id, c.lease)], T0 + 1) == 1
        await wait_for(step[-1])

        [c] = await claim(store, T0 + 1)
        await fail_final(store, c, T0 + 2)
        step.append(asyncio.Event())
        assert await store.recover(app.id, ep.id, T0 - HOUR, None, T0 + 3) == 1
        await wait_for(step[-1])
        assert len(await claim(store, T0 + 3)) == 1


class _BoxThatCannotOpen(PlainBox):
    """Opens every sealed value except those holding ``secret``."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def open(self, sealed: str) -> bytes:
        if self._secret in sealed:
            raise ValueError("cannot open this sealed value")
        return super().open(sealed)
