"""Endpoint health as finishing attempts keeps it (the rule is ``domain.health``).

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

from hookpost.domain.models import AttemptResult, Endpoint, Message
from hookpost.domain.queries import FinishOutcome
from hookpost.store.base import Store

from .support import (
    DAY,
    FAILED,
    HOUR,
    PENDING,
    SUCCEEDED,
    T0,
    app_with_endpoint,
    claim,
    finish,
    mk_message,
    new_app,
    new_endpoint,
    outcome,
    send,
)


class TestEndpointHealth:
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
