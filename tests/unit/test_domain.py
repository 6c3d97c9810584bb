"""The pure domain: signatures, retry decisions, matching, ids."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from hookpost.domain import ids
from hookpost.domain.disabled import (
    CONSECUTIVE_FAILURES,
    DISABLED_REASONS,
    FAILING_TOO_LONG,
    GONE_410,
    MANUAL,
)
from hookpost.domain.errors import InvalidInput
from hookpost.domain.health import (
    Health,
    HealthState,
    disabled_reason,
    replay,
    state,
)
from hookpost.domain.matching import endpoint_matches, filters_match
from hookpost.domain.models import (
    Attempt,
    AttemptResult,
    AttemptStatus,
    DeliveryStatus,
    Endpoint,
    Trigger,
)
from hookpost.domain.retry import (
    DEFAULT_SCHEDULE,
    MAX_RETRY_AFTER_S,
    Outcome,
    decide,
    parse_retry_after,
    parse_schedule,
)
from hookpost.domain.signing import (
    StandardWebhooksV1,
    generate_secret,
    normalize_secret,
    scheme_for,
    secret_bytes,
)

# A copy of shared/reference/signing-vectors.json, so the tests run from any checkout.
VECTORS = json.loads((Path(__file__).parents[1] / "data/signing-vectors.json").read_text())
SW = VECTORS["standard_webhooks_v1"]


class TestStandardWebhooksSigning:
    def test_published_vector(self):
        sig = StandardWebhooksV1().signature(
            SW["secret"], SW["msg_id"], SW["timestamp"], SW["payload"].encode()
        )
        assert sig == SW["expected_signature"]
        assert sig not in SW["must_not_verify"]

    def test_headers_verify_with_the_standardwebhooks_library(self):
        body = SW["payload"].encode()
        headers = StandardWebhooksV1().sign_headers(
            SW["msg_id"], SW["timestamp"], body, [SW["secret"]]
        )
        assert headers == {
            "webhook-id": SW["msg_id"],
            "webhook-timestamp": str(SW["timestamp"]),
            "webhook-signature": SW["expected_signature"],
        }

    def test_each_active_key_signs(self):
        old, new = generate_secret(), generate_secret()
        body = b'{"a":1}'
        import time

        ts = int(time.time())
        headers = StandardWebhooksV1().sign_headers("msg_1", ts, body, [new, old])
        assert len(headers["webhook-signature"].split(" ")) == 2
        Webhook(old).verify(body, headers)
        Webhook(new).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(generate_secret()).verify(body, headers)

    def test_svix_header_names(self):
        headers = scheme_for("standard-webhooks", None, "svix").sign_headers(
            "msg_1", 1, b"{}", [SW["secret"]]
        )
        assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}

    def test_secret_generation_and_normalisation(self):
        secret = generate_secret()
        assert secret.startswith("whsec_") and len(secret_bytes(secret)) == 24
        bare = secret.removeprefix("whsec_")
        assert normalize_secret(bare) == secret
        with pytest.raises(InvalidInput) as err:
            normalize_secret("whsec_c2hvcnQ=")  # 5 bytes
        assert err.value.field == "secret"
        with pytest.raises(InvalidInput):
            normalize_secret("not base64 !!")


class TestRetryDecision:
    rng = random.Random(7)

    def test_success_is_final(self):
        d = decide(Outcome(204), 1, DEFAULT_SCHEDULE, 1000, self.rng)
        assert d.status == DeliveryStatus.SUCCEEDED and d.next_attempt_at is None

    @pytest.mark.parametrize(
        "outcome",
        [
            Outcome(500),
            Outcome(302),
            Outcome(404),
            Outcome(0, error="timeout"),
            Outcome(200, error="reset"),
        ],
    )
    def test_failures_retry_on_schedule_with_jitter(self, outcome: Outcome):
        for attempt, delay in enumerate(DEFAULT_SCHEDULE, start=1):
            d = decide(outcome, attempt, DEFAULT_SCHEDULE, 0, self.rng)
            assert d.status == DeliveryStatus.PENDING
            assert delay * 800 <= d.next_attempt_at <= delay * 1200

    def test_exhausted_schedule_fails(self):
        d = decide(Outcome(500), len(DEFAULT_SCHEDULE) + 1, DEFAULT_SCHEDULE, 0, self.rng)
        assert d.status == DeliveryStatus.FAILED

    def test_410_is_final_and_disables(self):
        d = decide(Outcome(410), 1, DEFAULT_SCHEDULE, 0, self.rng)
        assert d.status == DeliveryStatus.FAILED and d.disable_endpoint_reason

    def test_retry_after_is_honoured_within_bounds(self):
        d = decide(Outcome(429, retry_after_s=120), 1, (1,), 0, self.rng)
        assert d.next_attempt_at == 120_000
        d = decide(Outcome(503, retry_after_s=10**9), 1, (1,), 0, self.rng)
        assert d.next_attempt_at == MAX_RETRY_AFTER_S * 1000
        d = decide(Outcome(503, retry_after_s=0), 1, (100,), 0, self.rng)
        assert d.next_attempt_at >= 80_000  # never sooner than the schedule

    def test_parse_helpers(self):
        assert parse_schedule("1, 1,2") == (1, 1, 2)
        with pytest.raises(ValueError, match="'x'"):
            parse_schedule("1,x")
        with pytest.raises(ValueError, match="negative"):
            parse_schedule("-1")
        assert parse_retry_after("30") == 30
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
        assert parse_retry_after("-5") is None


def _result(endpoint_id: str, *, ok: bool, at: int, reason: str | None = None) -> AttemptResult:
    attempt = Attempt(
        id=ids.new_id(ids.ATTEMPT, at),
        app_id="app_1",
        message_id="msg_1",
        endpoint_id=endpoint_id,
        url="https://receiver.example/",
        response_status_code=200 if ok else 500,
        response="",
        duration_ms=1,
        status=AttemptStatus.SUCCESS if ok else AttemptStatus.FAIL,
        trigger=Trigger.SCHEDULED,
        created_at=at,
    )
    status = DeliveryStatus.SUCCEEDED if ok else DeliveryStatus.FAILED
    return AttemptResult(attempt, 1, "lease", status, None, disable_endpoint_reason=reason)


HEALTHY = Health(0, None, False, None, 0)
DAY_MS = 86_400_000


class TestHealth:
    def test_auto_disable_period(self):
        def disabled_by_a_failure_at(first_failure_at: int | None, now: int, period: int) -> bool:
            state = {"ep": Health(1 if first_failure_at else 0, first_failure_at, False, None, 0)}
            _, disabled = replay(state, [_result("ep", ok=False, at=now)], now, period)
            return bool(disabled)

        assert not disabled_by_a_failure_at(None, 10, 5)
        assert not disabled_by_a_failure_at(8, 10, 5)
        assert disabled_by_a_failure_at(5, 10, 5)

    def test_failures_extend_the_streak_from_its_first_attempt_and_a_success_ends_it(self):
        changed, disabled = replay(
            {"ep": HEALTHY},
            [_result("ep", ok=False, at=10), _result("ep", ok=False, at=20)],
            30,
            1_000,
        )
        assert (changed, disabled) == ({"ep": Health(2, 10, False, None, 0, None, 20, 500)}, [])
        changed, _ = replay(changed, [_result("ep", ok=True, at=40)], 40, 1_000)
        assert changed == {"ep": Health(0, None, False, None, 0, 40, 20, 200)}

    def test_a_result_that_asks_for_it_disables_at_once_and_once(self):
        reason = GONE_410
        changed, disabled = replay(
            {"ep": Health(0, None, False, None, 50)},
            [_result("ep", ok=False, at=10, reason=reason), _result("ep", ok=False, at=11)],
            50,
            1_000,
        )
        # updated_at moves strictly past the last write, even within its millisecond
        assert changed == {"ep": Health(2, 10, True, reason, 51, None, 11, 500)}
        assert disabled == [("app_1", "ep", reason)]

    def test_failing_too_long_disables_with_its_reason(self):
        changed, disabled = replay(
            {"ep": Health(3, 100, False, None, 0)},
            [_result("ep", ok=False, at=1_100)],
            1_100,
            1_000,
        )
        assert changed["ep"].disabled_reason == FAILING_TOO_LONG
        assert disabled == [("app_1", "ep", FAILING_TOO_LONG)]

    def test_unknown_endpoints_and_unchanged_health_are_left_out(self):
        recorded = Health(0, None, False, None, 0, 1, None, 200)
        changed, disabled = replay(
            {"ok": recorded},
            [_result("ok", ok=True, at=2), _result("gone", ok=False, at=1)],
            2,
            5,
        )
        assert (changed, disabled) == ({}, [])

    def test_consecutive_failures_disable_once_when_the_rule_is_on(self):
        failures = [_result("ep", ok=False, at=t) for t in (10, 11, 12, 13)]
        changed, disabled = replay({"ep": HEALTHY}, failures, 20, DAY_MS)
        assert (changed["ep"].consecutive_failures, disabled) == (4, [])  # 0: off
        changed, disabled = replay({"ep": HEALTHY}, failures, 20, DAY_MS, 3)
        assert changed["ep"] == Health(4, 10, True, CONSECUTIVE_FAILURES, 20, None, 13, 500)
        assert disabled == [("app_1", "ep", CONSECUTIVE_FAILURES)]
        # a success in between restarts the count
        mixed = [*failures[:2], _result("ep", ok=True, at=12), failures[3]]
        changed, disabled = replay({"ep": HEALTHY}, mixed, 20, DAY_MS, 3)
        assert (changed["ep"].consecutive_failures, changed["ep"].disabled, disabled) == (
            1,
            False,
            [],
        )

    def test_the_other_reasons_come_first(self):
        h = Health(2, 0, False, None, 0)
        late = _result("ep", ok=False, at=DAY_MS)
        _, disabled = replay({"ep": h}, [late], DAY_MS, DAY_MS, 3)
        assert disabled == [("app_1", "ep", FAILING_TOO_LONG)]
        gone = _result("ep", ok=False, at=5, reason=GONE_410)
        _, disabled = replay({"ep": h}, [gone], 5, DAY_MS, 3)
        assert disabled == [("app_1", "ep", GONE_410)]

    def test_a_run_of_successes_is_recorded_once_a_second_unless_something_changes(self):
        rec = Health(0, None, False, None, 0, 1_000, None, 200)

        def after(h: Health, *ats: int, code: int = 200) -> Health | None:
            results = [_result("ep", ok=True, at=at) for at in ats]
            for r in results:
                r.attempt.response_status_code = code
            return replay({"ep": h}, results, max(ats), DAY_MS)[0].get("ep")

        assert after(rec, 1_500, 1_999) is None, "within the second: nothing to write"
        assert after(rec, 1_500, 2_000) == replace(rec, last_success_at=2_000)
        assert after(rec, 1_001, code=204) == replace(
            rec, last_success_at=1_001, last_status_code=204
        )
        assert after(HEALTHY, 5) == replace(HEALTHY, last_success_at=5, last_status_code=200)
        streak = Health(2, 900, False, None, 0, 800, 950, 500)
        assert after(streak, 960) == Health(0, None, False, None, 0, 960, 950, 200)

    def test_a_failure_after_successes_in_a_batch_keeps_both_records(self):
        rec = Health(0, None, False, None, 0, 1_000, None, 200)
        results = [_result("ep", ok=True, at=5_000), _result("ep", ok=False, at=5_001)]
        changed, _ = replay({"ep": rec}, results, 5_001, DAY_MS)
        assert changed["ep"] == Health(1, 5_001, False, None, 0, 5_000, 5_001, 500)


HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("h", "expected"),
    [
        (HEALTHY, HealthState.HEALTHY),
        (Health(0, None, False, None, 0, 10, 5, 200), HealthState.HEALTHY),
        (Health(0, None, True, GONE_410, 0, 10, 5, 410), HealthState.DISABLED),
        (Health(3, 50, True, MANUAL, 0, 10, 60, 500), HealthState.DISABLED),
        # the last attempt failed: a success within the hour makes it degraded
        (
            Health(1, 2 * HOUR_MS, False, None, 0, HOUR_MS + 1, 2 * HOUR_MS, 503),
            HealthState.DEGRADED,
        ),
        (Health(9, 2 * HOUR_MS, False, None, 0, HOUR_MS, 2 * HOUR_MS, 503), HealthState.FAILING),
        (Health(1, 2 * HOUR_MS, False, None, 0, None, 2 * HOUR_MS, 0), HealthState.FAILING),
    ],
)
def test_health_states(h: Health, expected: HealthState) -> None:
    assert state(h, now_ms=2 * HOUR_MS) == expected


def test_the_disabled_reason_shown() -> None:
    assert disabled_reason(Health(0, None, False, None, 0)) is None
    assert disabled_reason(Health(0, None, True, None, 0)) == MANUAL  # created disabled
    for reason in DISABLED_REASONS:
        assert disabled_reason(Health(0, None, True, reason, 0)) == reason


class TestMatching:
    @pytest.mark.parametrize(
        ("types", "chans", "event", "msg_chans", "expected"),
        [
            (None, None, "a", None, True),
            ([], [], "a", ["x"], True),
            (["a"], None, "a", None, True),
            (["a"], None, "b", None, False),
            (None, ["eu"], "a", ["eu", "us"], True),
            (None, ["eu"], "a", ["us"], False),
            (None, ["eu"], "a", None, False),
            (["a"], ["eu"], "a", ["eu"], True),
            (["a"], ["eu"], "b", ["eu"], False),
        ],
    )
    def test_filters(self, types, chans, event, msg_chans, expected):
        assert filters_match(types, chans, event, msg_chans) is expected

    def test_disabled_endpoint_never_matches(self):
        ep = Endpoint(id="ep_1", app_id="app_1", url="http://x", disabled=True)
        assert not endpoint_matches(ep, "a", None)


class TestIds:
    def test_prefixed_and_time_sortable(self):
        a = ids.new_id("msg", 1_000)
        b = ids.new_id("msg", 1_001)
        assert a.startswith("msg_") and len(a) == 4 + 22
        assert a < b
        assert ids.id_time_ms(a) == 1_000
        assert ids.id_floor("msg", 1_001) <= b
        assert ids.id_floor("msg", 1_001) > a
