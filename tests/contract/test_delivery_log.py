"""The DeliveryLog port: deliveries and attempts as operators read and steer them.

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hookpost.domain.errors import NotFound
from hookpost.domain.ids import ATTEMPT, new_id
from hookpost.domain.models import (
    Application,
    Attempt,
    AttemptStatus,
    DeliveryStatus,
    Endpoint,
    EndpointStats,
    Message,
    PageRequest,
    Trigger,
)
from hookpost.domain.queries import AttemptFilter
from hookpost.store.base import Store

from .support import (
    CANCELED,
    DAY,
    FAILED,
    HOUR,
    PENDING,
    SENDING,
    SUCCEEDED,
    T0,
    app_with_endpoint,
    claim,
    fail_final,
    finish,
    key_of,
    mk_endpoint,
    mk_message,
    new_app,
    new_endpoint,
    outcome,
    send,
    walk,
)


class TestDeliveryLog:
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
