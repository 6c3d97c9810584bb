"""The Catalog port: applications, event types and endpoints.

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hookpost.domain.errors import Conflict, NotFound, StaleWrite
from hookpost.domain.ids import TOKEN, new_id
from hookpost.domain.models import (
    ApiToken,
    Application,
    Endpoint,
    Message,
    PageRequest,
    SigningKey,
)
from hookpost.domain.queries import AttemptFilter, MessageFilter
from hookpost.domain.retry import RetryPolicy
from hookpost.store.base import Store

from .support import (
    DAY,
    FAILED,
    HOUR,
    PENDING,
    T0,
    app_with_endpoint,
    claim,
    finish,
    ids,
    mk_app,
    mk_endpoint,
    mk_event_type,
    new_app,
    new_endpoint,
    outcome,
    send,
    walk,
)


class TestCatalog:
    async def test_app_round_trip_by_id_and_uid(self, store: Store) -> None:
        app = mk_app(uid="acme", metadata={"plan": "pro"}, throttle_rate=10)
        assert await store.create_app(app) == app
        assert await store.get_app(app.id) == app
        assert await store.get_app("acme") == app
        bare = await new_app(store)
        assert await store.get_app(bare.id) == bare
        assert bare.uid is None and bare.metadata == {}

    async def test_app_lookup_prefers_the_id_over_another_apps_uid(self, store: Store) -> None:
        # Written before uids of an id's form were refused (AppService): such a row may exist.
        # Whichever was created first, the id names its own application, deterministically.
        for squatter_first in (True, False):
            owner = mk_app(name="owner")
            squatter = mk_app(name="squatter", uid=owner.id)
            for app in (squatter, owner) if squatter_first else (owner, squatter):
                await store.create_app(app)
            for _ in range(3):
                assert (await store.get_app(owner.id)).id == owner.id
            assert (await store.get_app(squatter.id)).id == squatter.id
            # And after an update of either row (PostgreSQL then stores it elsewhere).
            await store.update_app(replace(owner, name="owner 2", updated_at=owner.updated_at + 1))
            await store.update_app(replace(squatter, name="sq 2", updated_at=T0 + 2))
            assert (await store.get_app(owner.id)).id == owner.id

    async def test_endpoint_lookup_prefers_the_id_over_another_endpoints_uid(
        self, store: Store
    ) -> None:
        app = await new_app(store)
        for squatter_first in (True, False):
            owner = mk_endpoint(app.id)
            squatter = mk_endpoint(app.id, uid=owner.id)
            for ep in (squatter, owner) if squatter_first else (owner, squatter):
                await store.create_endpoint(ep)
            assert (await store.get_endpoint(app.id, owner.id)).id == owner.id
            assert (await store.get_endpoint(app.id, squatter.id)).id == squatter.id

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
            signature_scheme="standard-webhooks",
            retry_schedule=[1, 60, 3600],
            retry_policy=RetryPolicy(schedule=(1, 60, 3600)),
            timeout_s=7,
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
        assert got_bare.retry_policy is None and got_bare.timeout_s is None

    async def test_endpoint_strategy_policy_round_trip(self, store: Store) -> None:
        app = await new_app(store)
        policy = RetryPolicy(strategy="linear", initial_delay_s=3, max_attempts=4)
        ep = mk_endpoint(app.id, retry_policy=policy, retry_schedule=list(policy.delays()))
        await store.create_endpoint(ep)
        assert (await store.get_endpoint(app.id, ep.id)).retry_policy == policy

    async def test_stored_schedule_alone_reads_as_a_schedule_policy(self, store: Store) -> None:
        # Rows written before retryPolicy existed (migration 0010) keep their schedule.
        app = await new_app(store)
        ep = mk_endpoint(app.id, retry_schedule=[2, 4])
        await store.create_endpoint(ep)
        got = await store.get_endpoint(app.id, ep.id)
        assert got.retry_schedule == [2, 4]
        assert got.retry_policy == RetryPolicy(schedule=(2, 4))

    async def test_event_type_retry_schedule_and_delivery_options(self, store: Store) -> None:
        await store.create_event_type(mk_event_type("a.b"))
        await store.create_event_type(mk_event_type("c.d"))
        et = await store.get_event_type("a.b")
        assert et.retry_schedule is None
        await store.update_event_type(replace(et, retry_schedule=[3, 9]))
        assert (await store.get_event_type("a.b")).retry_schedule == [3, 9]
        app = await new_app(store)
        timed = mk_endpoint(app.id, timeout_s=12)
        await store.create_endpoint(timed)
        await store.create_endpoint(mk_endpoint(app.id))
        options = await store.delivery_options()
        assert options.type_schedules == {"a.b": (3, 9)}
        assert options.endpoint_timeouts == {timed.id: 12}

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
