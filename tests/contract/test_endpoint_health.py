"""Endpoint health as finishing attempts keeps it. The rule is ``domain.health``; SQLite resets
the streak of an endpoint with only successes in a batch in SQL, and
``test_endpoint_health_equals_the_domain_rule`` holds every backend to the rule.

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

from hookpost.domain.disabled import GONE_410
from hookpost.domain.health import SUCCESS_REFRESH_MS, Health, health_of, replay
from hookpost.domain.models import AttemptResult, ClaimedDelivery, Endpoint, Message
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

# Batches of attempt results for test_endpoint_health_equals_the_domain_rule, per case: (now,
# [(endpoint 0-2, outcome, attempted at)]), times in ms after T0. "fail" is retried later,
# "final" fails for good, "gone" asks for the endpoint to be disabled (an HTTP 410).
# "ok:204", "fail:0": with that status code (0: no HTTP response; otherwise 200 and 500).
Batch = tuple[int, list[tuple[int, str, int]]]
WINDOW = HOUR  # disable_after_ms
S = SUCCESS_REFRESH_MS
HEALTH_CASES: dict[str, list[Batch]] = {
    "successes only": [(0, [(0, "ok", 0), (1, "ok", 0)])],
    "order within a batch": [(10, [(0, "fail", 1), (0, "ok", 2), (1, "ok", 3), (1, "fail", 4)])],
    "a streak across batches, ended by a batch of successes": [
        (10, [(0, "fail", 10)]),
        (20, [(0, "final", 20), (1, "ok", 20)]),
        (30, [(0, "ok", 30)]),
    ],
    "successes beside a failing endpoint": [
        (0, [(0, "fail", 0), (1, "fail", 0)]),
        (10, [(0, "ok", 10), (1, "fail", 10), (2, "ok", 10), (0, "ok", 10)]),
    ],
    "gone disables at once, within the millisecond of the last write": [
        (0, [(0, "gone", 0), (0, "fail", 0), (1, "fail", 0), (1, "ok", 0)]),
    ],
    "failing for the whole window disables, once": [
        (0, [(0, "fail", 0)]),
        (WINDOW - 1, [(0, "fail", WINDOW - 1), (1, "fail", WINDOW - 1)]),
        (WINDOW, [(0, "fail", WINDOW), (0, "gone", WINDOW), (1, "fail", WINDOW)]),
    ],
    "a success restarts the window": [
        (0, [(0, "fail", 0)]),
        (WINDOW // 2, [(0, "ok", WINDOW // 2)]),
        (WINDOW, [(0, "fail", WINDOW)]),
    ],
    "the streak starts at its first attempt, not at the batch": [
        (WINDOW + 5, [(0, "fail", 0), (1, "fail", 5), (1, "ok", 6), (2, "fail", 7)]),
    ],
    # The last success is recorded when the record changes: at most once a second.
    "a healthy endpoint's last success, refreshed once a second": [
        (0, [(0, "ok", 0), (0, "ok", 1), (1, "ok", 2)]),
        (500, [(0, "ok", 500), (1, "ok", S - 1 + 2)]),
        (S, [(0, "ok", S - 1), (1, "ok", S + 2), (0, "ok", S - 2)]),
        (S + 1, [(0, "ok", S + 1), (1, "ok", S + 3)]),
    ],
    "a new status code is recorded at once": [
        (0, [(0, "ok", 0), (1, "ok", 0)]),
        (10, [(0, "ok:204", 10), (1, "ok:204", 10), (1, "ok", 11)]),
        (20, [(0, "ok", 20), (1, "ok", 20)]),
    ],
    "successes, then a failure, in one batch": [
        (0, [(0, "ok", 0)]),
        (S * 3, [(0, "ok", S * 3), (0, "ok:201", S * 3 + 1), (0, "fail", S * 3 + 2)]),
        (S * 4, [(1, "ok", 5), (1, "fail:0", 6), (1, "ok:202", 7)]),
    ],
    "count-based disabling": [
        (0, [(0, "fail", 0), (0, "fail", 1), (1, "fail", 1), (1, "ok", 2)]),
        (10, [(0, "fail:0", 10), (0, "fail", 11), (1, "fail", 10), (2, "fail", 10)]),
        (20, [(1, "fail", 20), (1, "ok", 21), (2, "fail", 21), (2, "fail", 22)]),
        (30, [(1, "fail", 30), (1, "fail", 30), (1, "gone", 31)]),
    ],
    "count-based disabling, the window reached too: failing for too long wins": [
        (0, [(0, "fail", 0)]),
        (WINDOW, [(0, "fail", WINDOW), (0, "fail", WINDOW), (1, "fail", 1), (1, "fail", 2)]),
        (WINDOW + 1, [(1, "fail", WINDOW + 1), (1, "fail", WINDOW + 1)]),
    ],
}
GONE = GONE_410
COUNT = 3  # disable_after_failures, for the cases that name it


def _health(ep: Endpoint) -> Health:
    return health_of(ep)


def _result(c: ClaimedDelivery, kind: str, at: int) -> AttemptResult:
    kind, _, code = kind.partition(":")
    status = {"ok": SUCCEEDED, "fail": PENDING}.get(kind, FAILED)
    r = outcome(
        c,
        status,
        at=at,
        retry_at=at + 10 * DAY if kind == "fail" else None,
        reason=GONE if kind == "gone" else None,
    )
    if code:
        r.attempt.response_status_code = int(code)
    elif kind == "gone":
        r.attempt.response_status_code = 410
    return r


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
        reason = GONE_410
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

    async def test_endpoint_health_equals_the_domain_rule(self, store: Store) -> None:
        """After every batch of results, each endpoint's health and the endpoints reported
        disabled are what ``domain.health.replay`` makes of the same results."""
        for case, batches in HEALTH_CASES.items():
            app = await new_app(store)
            endpoints = [await new_endpoint(store, app.id) for _ in range(3)]
            expected = {ep.id: _health(ep) for ep in endpoints}
            for now, items in batches:
                sent = []
                for i, _, _ in items:
                    msg = mk_message(app.id, at=T0 + now)
                    created = await store.create_message(msg, T0 + now, [endpoints[i].id])
                    assert created.deliveries == 1, case
                    sent.append(msg.id)
                claimed = {c.message_id: c for c in await claim(store, T0 + now)}
                assert set(claimed) == set(sent), case
                results = [
                    _result(claimed[msg_id], kind, T0 + at)
                    for msg_id, (_, kind, at) in zip(sent, items, strict=True)
                ]
                count = COUNT if "count" in case else 0
                out = await store.finish_attempts(results, T0 + now, WINDOW, count)
                changed, disabled = replay(expected, results, T0 + now, WINDOW, count)
                expected.update(changed)
                assert out == FinishOutcome(disabled_endpoints=disabled, stale=0), (case, now)
                got = {ep.id: _health(await store.get_endpoint(app.id, ep.id)) for ep in endpoints}
                assert got == expected, (case, now)
