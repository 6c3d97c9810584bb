"""The Tasks port: background tasks claimed by one runner at a time under a lease, finished
with their operational event in one transaction, and the work they do (replay-missing,
bulk replay, usage, expunge-all). Run once per backend, through the ``store`` fixture."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hookpost.domain import operational as op
from hookpost.domain import tasks as t
from hookpost.domain.errors import NotFound
from hookpost.domain.ids import TASK, new_id
from hookpost.domain.models import BackgroundTask, DeliveryStatus, PageRequest
from hookpost.domain.tasks import ReplayRange
from hookpost.store.base import Store

from .support import (
    CANCELED,
    FAILED,
    PENDING,
    SUCCEEDED,
    T0,
    app_with_endpoint,
    claim,
    fail_final,
    finish,
    mk_message,
    new_app,
    new_endpoint,
    outcome,
    send,
)
from .test_operational_outbox import events, op_endpoint

LEASE_MS = 60_000


def mk_task(kind: str = t.RECOVER, *, at: int = T0, **params: object) -> BackgroundTask:
    return BackgroundTask(new_id(TASK, at), kind, t.RUNNING, at, {}, dict(params), at)


class TestTaskRecords:
    async def test_create_get_and_list_with_filters(self, store: Store) -> None:
        a = mk_task(t.RECOVER, at=T0, appId="app_x", since=1)
        b = mk_task(t.APP_STATS, at=T0 + 1)
        c = mk_task(t.RECOVER, at=T0 + 2)
        for task in (a, b, c):
            await store.create_task(task)
        got = await store.get_task(a.id)
        assert (got.task, got.status, got.params, got.data) == (t.RECOVER, "running", a.params, {})
        with pytest.raises(NotFound):
            await store.get_task(new_id(TASK, T0))
        newest = await store.list_tasks(PageRequest(limit=2, descending=True))
        assert [x.id for x in newest.items] == [c.id, b.id] and not newest.done
        rest = await store.list_tasks(PageRequest(limit=2, iterator=b.id, descending=True))
        assert [x.id for x in rest.items] == [a.id] and rest.done
        recovers = await store.list_tasks(PageRequest(limit=10), kind=t.RECOVER)
        assert [x.id for x in recovers.items] == [a.id, c.id]
        assert (await store.list_tasks(PageRequest(limit=10), status=t.FINISHED)).items == []


class TestClaims:
    async def test_one_claimer_holds_a_task_until_its_lease_expires(self, store: Store) -> None:
        task = mk_task()
        await store.create_task(task)
        first = await store.claim_task("lease-1", LEASE_MS, T0)
        assert first is not None and first.id == task.id and first.runs == 1
        assert await store.claim_task("lease-2", LEASE_MS, T0 + LEASE_MS - 1) is None
        assert await store.renew_task(task.id, "lease-1", LEASE_MS, T0 + 10)
        assert await store.claim_task("lease-2", LEASE_MS, T0 + LEASE_MS) is None  # renewed
        again = await store.claim_task("lease-2", LEASE_MS, T0 + 10 + LEASE_MS)
        assert again is not None and again.id == task.id and again.runs == 2
        # the first runner lost it: it can neither renew nor finish it
        assert not await store.renew_task(task.id, "lease-1", LEASE_MS, T0 + LEASE_MS + 20)
        assert not await store.finish_task(task.id, "lease-1", t.FINISHED, {"n": 1}, T0 + 30)
        assert await store.finish_task(task.id, "lease-2", t.FINISHED, {"n": 2}, T0 + 40)
        done = await store.get_task(task.id)
        assert (done.status, done.data, done.updated_at) == (t.FINISHED, {"n": 2}, T0 + 40)
        assert await store.claim_task("lease-3", LEASE_MS, T0 + 10 * LEASE_MS) is None

    async def test_oldest_first_and_release_hands_it_back_at_once(self, store: Store) -> None:
        old, new = mk_task(at=T0), mk_task(at=T0 + 5)
        await store.create_task(new)
        await store.create_task(old)
        first = await store.claim_task("a", LEASE_MS, T0 + 10)
        second = await store.claim_task("b", LEASE_MS, T0 + 10)
        assert first is not None and second is not None
        assert (first.id, second.id) == (old.id, new.id)
        await store.release_task(old.id, "a")
        back = await store.claim_task("c", LEASE_MS, T0 + 11)
        assert back is not None and back.id == old.id

    async def test_finish_writes_its_event_in_the_same_transaction(self, store: Store) -> None:
        await op_endpoint(store)
        task = mk_task()
        await store.create_task(task)
        assert await store.claim_task("l", LEASE_MS, T0) is not None
        event = op.task_finished(task.id, t.RECOVER, t.FAILED, {"error": "x"}, T0 + 1)
        assert not await store.finish_task(task.id, "other", t.FAILED, {}, T0 + 1, [event])
        assert await events(store) == []  # a lost lease writes nothing
        assert await store.finish_task(task.id, "l", t.FAILED, {"error": "x"}, T0 + 1, [event])
        (written,) = await events(store)
        assert written["type"] == "background_task.finished"
        assert written["data"] == {
            "taskId": task.id,
            "task": t.RECOVER,
            "status": t.FAILED,
            "data": {"error": "x"},
        }


class TestReplayMissing:
    async def test_lists_and_queues_only_what_the_endpoint_never_had(self, store: Store) -> None:
        app, old = await app_with_endpoint(store)
        had = await send(store, app.id, now=T0)  # old gets a delivery
        ep = await new_endpoint(store, app.id, at=T0 + 1)
        m1 = await send(store, app.id, now=T0 + 2, event_type="a.b")  # ep gets this one
        # sent to no endpoint (as if they were all disabled), before `since`
        before = (await store.create_message(mk_message(app.id, at=T0 - 10), T0, [])).message
        other = await new_app(store)
        foreign = await send(store, other.id, now=T0 + 3)
        await store.resend(app.id, had.id, old.id, T0 + 4)
        missing = await store.messages_missing(app.id, ep.id, T0 - 1, None, None, 100, True)
        assert [m.id for m in missing] == [had.id]
        assert missing[0].payload == had.payload
        heads = await store.messages_missing(app.id, old.id, T0 - 20, None, None, 100, False)
        assert [m.id for m in heads] == [before.id] and heads[0].payload == b""
        paged = await store.messages_missing(app.id, old.id, T0 - 20, T0 + 2, before.id, 1, False)
        assert paged == []  # m1 is past `until`; `had` has a delivery
        assert m1.id not in [m.id for m in missing]
        queued = await store.queue_missing(app.id, ep.id, [had.id, m1.id, foreign.id], T0 + 5)
        assert queued == 1  # m1 had one already, foreign is another application's
        assert await store.queue_missing(app.id, ep.id, [had.id], T0 + 6) == 0
        assert (await store.get_delivery(had.id, ep.id)).status == PENDING
        with pytest.raises(NotFound):
            await store.get_delivery(foreign.id, ep.id)


class TestBulkReplay:
    async def test_replays_final_deliveries_once_per_task(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        store.batch_rows = 2  # type: ignore[attr-defined]  # several batches
        sent = [await send(store, app.id, now=T0 + i, event_type=f"t.{i % 2}") for i in range(5)]
        claimed = {c.message_id: c for c in await claim(store, T0 + 10)}
        statuses = [SUCCEEDED, FAILED, SUCCEEDED, FAILED, None]  # the last stays sending
        for msg, status in zip(sent, statuses, strict=True):
            if status is not None:
                await finish(store, outcome(claimed[msg.id], status, at=T0 + 11), now=T0 + 11)
        await store.update_endpoint(replace(ep, updated_at=ep.updated_at + 1))
        final = [SUCCEEDED, FAILED, CANCELED]

        def replay(
            statuses: list[DeliveryStatus], types: list[str] | None, before: int
        ) -> ReplayRange:
            return ReplayRange(app.id, ep.id, T0, None, statuses, types, before)

        assert await store.replay_deliveries(replay(final, None, T0 + 20), T0 + 20, True) == 4
        assert await store.replay_deliveries(replay([FAILED], None, T0 + 20), T0 + 20, True) == 2
        assert await store.replay_deliveries(replay(final, ["t.0"], T0 + 20), T0 + 20, True) == 2
        assert await store.replay_deliveries(replay(final, None, T0 + 5), T0 + 20, True) == 0
        assert await store.replay_deliveries(replay([PENDING], None, T0 + 20), T0 + 20) == 0
        # nothing changed by the dry runs
        assert (await store.get_delivery(sent[0].id, ep.id)).status == SUCCEEDED
        assert await store.replay_deliveries(replay(final, None, T0 + 20), T0 + 30) == 4
        assert await store.replay_deliveries(replay(final, None, T0 + 20), T0 + 31) == 0
        for msg in sent[:4]:
            d = await store.get_delivery(msg.id, ep.id)
            assert d.status == PENDING
        again = await claim(store, T0 + 30)
        assert sorted(c.message_id for c in again) == sorted(m.id for m in sent[:4])
        for c in again:
            await fail_final(store, c, T0 + 40)
        # the same task run again (a crash): what it sent since it was created is not resent
        assert await store.replay_deliveries(replay(final, None, T0 + 20), T0 + 50) == 0


class TestUsage:
    async def test_usage_subscriptions_and_expunge_all(self, store: Store) -> None:
        await op_endpoint(store, event_types=["endpoint.created"])
        a, _ = await app_with_endpoint(store, event_types=["x.y", "z.*"])
        await new_endpoint(store, a.id)  # a catch-all
        b, _ = await app_with_endpoint(store, event_types=["q.r"])
        for i in range(3):
            await send(store, a.id, now=T0 + i, event_type="x.y")
        await send(store, b.id, now=T0 + 100, event_type="q.r")
        usage = await store.app_usage(None, T0, T0 + 100)
        # 3 messages x 2 endpoints
        assert sorted((x[0], x[2]) for x in usage) == sorted([(a.id, 6), (b.id, 0)])
        assert [x[2] for x in await store.app_usage([b.id], T0, T0 + 101)] == [1]
        subs = sorted(await store.endpoint_subscriptions(), key=lambda s: (s[0], str(s[1])))
        assert sorted(map(str, subs)) == sorted(
            map(str, [(a.id, ["x.y", "z.*"]), (a.id, None), (b.id, ["q.r"])])
        )
        store.batch_rows = 2  # type: ignore[attr-defined]
        assert await store.expunge_all_contents(a.id) == 3
        assert await store.expunge_all_contents(a.id) == 0
        msg = (await store.messages_missing(a.id, "ep_none", T0, None, None, 10, True))[0]
        assert msg.expunged and msg.payload == b"{}"
        assert not (await store.messages_missing(b.id, "ep_none", T0, None, None, 10, True))[
            0
        ].expunged
