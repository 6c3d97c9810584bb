"""Operational events are written by the store in the transaction of the change they report
(Catalog's endpoint writes, DeliveryQueue.finish_attempts): a message of the operational
application with a delivery per operational endpoint whose filterTypes want it, and nothing
when none does."""

from __future__ import annotations

from typing import Any

import orjson

from hookpost.domain import operational as op
from hookpost.domain.errors import NotFound
from hookpost.domain.models import Endpoint, PageRequest
from hookpost.domain.queries import MessageFilter
from hookpost.store.base import Store

from .support import (
    DAY,
    FAILED,
    LEASE,
    PENDING,
    SUCCEEDED,
    T0,
    app_with_endpoint,
    claim,
    mk_app,
    mk_endpoint,
    new_app,
    outcome,
    send,
)

PAGE = PageRequest(limit=100)


async def op_endpoint(store: Store, **kw: Any) -> Endpoint:
    try:
        await store.get_app(op.OPERATIONAL_APP_ID)
    except NotFound:
        app = mk_app(name="ops")
        app.id = op.OPERATIONAL_APP_ID
        await store.create_app(app)
    return await store.create_endpoint(mk_endpoint(op.OPERATIONAL_APP_ID, **kw))


async def events(store: Store) -> list[dict[str, Any]]:
    page = await store.list_messages(op.OPERATIONAL_APP_ID, PAGE, MessageFilter())
    return [orjson.loads(m.payload) for m in page.items]  # oldest first


async def delivered_to(store: Store, endpoint_id: str) -> list[str]:
    page = await store.list_deliveries_for_endpoint(op.OPERATIONAL_APP_ID, endpoint_id, PAGE)
    return [m.event_type for _, m in page.items]


def created(ep: Endpoint, at: int = T0) -> op.OperationalEvent:
    return op.endpoint_event(op.ENDPOINT_CREATED, ep.app_id, None, ep.id, ep.uid, at)


class TestEndpointWrites:
    async def test_nothing_is_written_without_an_operational_endpoint(self, store: Store) -> None:
        app = await new_app(store)
        ep = mk_endpoint(app.id)
        await store.create_endpoint(ep, notify=[created(ep)])
        await store.update_endpoint(ep, notify=[created(ep)])
        await store.delete_endpoint(app.id, ep.id, notify=[created(ep)])
        await op_endpoint(store)  # the app exists from here: still nothing was written
        assert await events(store) == []

    async def test_create_update_delete_write_their_events(self, store: Store) -> None:
        listener = await op_endpoint(store)
        app = await new_app(store)
        ep = mk_endpoint(app.id)
        await store.create_endpoint(ep, notify=[created(ep)])
        updated = op.endpoint_change_event(False, True, app.id, None, ep.id, None, T0 + 1)
        ep.disabled = True
        ep.updated_at = T0 + 1
        await store.update_endpoint(ep, T0, notify=[updated])
        gone = op.endpoint_event(op.ENDPOINT_DELETED, app.id, None, ep.id, None, T0 + 2)
        await store.delete_endpoint(app.id, ep.id, notify=[gone])
        got = await events(store)
        assert [e["type"] for e in got] == [
            "endpoint.created",
            "endpoint.disabled",
            "endpoint.deleted",
        ]
        assert got[1]["data"]["trigger"] == "manual"
        assert got[0]["data"] == {
            "appId": app.id,
            "appUid": None,
            "endpointId": ep.id,
            "endpointUid": None,
        }
        assert sorted(await delivered_to(store, listener.id)) == sorted(e["type"] for e in got)

    async def test_a_refused_write_writes_no_event(self, store: Store) -> None:
        await op_endpoint(store)
        app = await new_app(store)
        ep = mk_endpoint(app.id)
        await store.create_endpoint(ep)
        try:
            await store.update_endpoint(ep, T0 - 1, notify=[created(ep)])  # stale: refused
        except Exception:
            pass
        else:
            raise AssertionError("a stale write was accepted")
        assert await events(store) == []

    async def test_filter_types_choose_the_endpoints(self, store: Store) -> None:
        deleted_only = await op_endpoint(store, event_types=["endpoint.deleted"])
        every = await op_endpoint(store)
        app = await new_app(store)
        ep = mk_endpoint(app.id)
        await store.create_endpoint(ep, notify=[created(ep)])
        gone = op.endpoint_event(op.ENDPOINT_DELETED, app.id, None, ep.id, None, T0 + 2)
        await store.delete_endpoint(app.id, ep.id, notify=[gone])
        assert await delivered_to(store, deleted_only.id) == ["endpoint.deleted"]
        assert sorted(await delivered_to(store, every.id)) == [
            "endpoint.created",
            "endpoint.deleted",
        ]

    async def test_disabled_operational_endpoints_get_nothing(self, store: Store) -> None:
        await op_endpoint(store, disabled=True)
        app = await new_app(store)
        ep = mk_endpoint(app.id)
        await store.create_endpoint(ep, notify=[created(ep)])
        assert await events(store) == []


class TestFinish:
    async def test_results_write_the_events_given_and_auto_disables(self, store: Store) -> None:
        listener = await op_endpoint(store)
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        (c,) = await claim(store, T0)
        exhausted = op.attempt_event(
            op.ATTEMPT_EXHAUSTED,
            app_id=app.id,
            msg_id=msg.id,
            endpoint_id=ep.id,
            attempt_id="atmpt_x",
            status_code=410,
            at_ms=T0,
        )
        result = outcome(c, FAILED, at=T0, reason="HTTP 410 Gone", response_status_code=410)
        out = await store.finish_attempts([result], T0, 5 * DAY, notify=[exhausted])
        assert out.disabled_endpoints == [(app.id, ep.id, "HTTP 410 Gone")]
        got = {e["type"]: e["data"] for e in await events(store)}  # one instant: no order
        assert sorted(got) == ["endpoint.disabled", "message.attempt.exhausted"]
        assert got["endpoint.disabled"]["trigger"] == "automatic"
        assert got["endpoint.disabled"]["failSince"] == op.iso(T0)
        assert got["message.attempt.exhausted"]["lastAttempt"]["responseStatusCode"] == 410
        assert out.notified == 2
        assert len(await delivered_to(store, listener.id)) == 2

    async def test_a_healthy_batch_with_a_recovered_event(self, store: Store) -> None:
        await op_endpoint(store, event_types=["message.attempt.recovered"])
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        (c,) = await claim(store, T0)
        await store.finish_attempts([outcome(c, PENDING, at=T0, retry_at=T0)], T0, 5 * DAY)
        (c,) = await claim(store, T0 + 1)
        recovered = op.attempt_event(
            op.ATTEMPT_RECOVERED,
            app_id=app.id,
            msg_id=msg.id,
            endpoint_id=ep.id,
            attempt_id="atmpt_y",
            status_code=200,
            at_ms=T0 + 1,
        )
        ok = outcome(c, SUCCEEDED, at=T0 + 1)
        out = await store.finish_attempts([ok], T0 + 1, 5 * DAY, notify=[recovered])
        assert out.notified == 1 and out.stale == 0
        assert [e["type"] for e in await events(store)] == ["message.attempt.recovered"]

    async def test_without_operational_endpoints_nothing_is_written(self, store: Store) -> None:
        app, ep = await app_with_endpoint(store)
        await send(store, app.id)
        (c,) = await claim(store, T0)
        result = outcome(c, FAILED, at=T0, reason="HTTP 410 Gone")
        out = await store.finish_attempts([result], T0, 5 * DAY, notify=[created(ep)])
        assert out.notified == 0 and out.disabled_endpoints
        await op_endpoint(store)
        assert await events(store) == []


class TestRecover:
    async def test_the_last_batch_writes_the_finished_task(self, store: Store) -> None:
        await op_endpoint(store)
        app, ep = await app_with_endpoint(store)
        store.batch_rows = 2  # type: ignore[attr-defined]  # three batches for five deliveries
        for i in range(5):
            await send(store, app.id, now=T0 + i)
        for c in await claim(store, T0 + 10):
            await store.finish_attempts([outcome(c, FAILED, at=T0 + 10)], T0 + 10, 5 * DAY)
        finished = op.recover_finished("qtask_x", ep.id, T0, None, T0 + 20)
        assert await store.recover(app.id, ep.id, T0, None, T0 + 20, finished) == 5
        (event,) = await events(store)
        assert event["type"] == "background_task.finished"
        assert event["data"]["taskId"] == "qtask_x" and event["data"]["status"] == "finished"
        assert event["data"]["data"]["messages_sent"] == 5
        assert event["data"]["data"]["endp_id"] == ep.id


class TestStale:
    async def test_a_result_whose_lease_was_lost_reports_nothing(self, store: Store) -> None:
        await op_endpoint(store)
        app, ep = await app_with_endpoint(store)
        msg = await send(store, app.id)
        (first,) = await claim(store, T0)
        (second,) = await claim(store, T0 + LEASE + 1)  # the lease expired: taken again
        assert second.lease != first.lease
        result = outcome(first, FAILED, at=T0 + LEASE + 2)
        exhausted = op.attempt_event(
            op.ATTEMPT_EXHAUSTED,
            app_id=app.id,
            msg_id=msg.id,
            endpoint_id=ep.id,
            attempt_id=result.attempt.id,
            status_code=500,
            at_ms=T0 + LEASE + 2,
        )
        out = await store.finish_attempts([result], T0 + LEASE + 2, 5 * DAY, notify=[exhausted])
        assert out.stale == 1 and out.notified == 0
        assert await events(store) == []
