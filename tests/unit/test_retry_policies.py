"""Retry policies (domain.retry): expansion, bounds, precedence; and endpoint timeouts."""

from __future__ import annotations

import random

import pytest

from hookpost.domain.errors import InvalidInput
from hookpost.domain.limits import check_timeout
from hookpost.domain.models import DeliveryStatus
from hookpost.domain.retry import (
    MAX_ATTEMPTS,
    MAX_DELAY_S,
    Outcome,
    RetryPolicy,
    check_schedule,
    decide,
    policy_from_dict,
    schedule_for,
)


def test_schedule_policy_is_its_schedule():
    policy = policy_from_dict({"schedule": [5, 300, 1800]})
    assert policy.delays() == (5, 300, 1800)
    assert policy.as_dict() == {"schedule": [5, 300, 1800]}


def test_exponential_multiplies_and_caps():
    policy = policy_from_dict(
        {
            "strategy": "exponential",
            "initialDelaySeconds": 10,
            "multiplier": 3,
            "maxDelaySeconds": 200,
            "maxAttempts": 6,
        }
    )
    assert policy.delays() == (10, 30, 90, 200, 200)  # 5 delays: 6 attempts


def test_linear_steps_by_the_initial_delay():
    policy = policy_from_dict(
        {"strategy": "linear", "initialDelaySeconds": 60, "maxDelaySeconds": 150, "maxAttempts": 5}
    )
    assert policy.delays() == (60, 120, 150, 150)


def test_strategy_defaults():
    policy = policy_from_dict({"strategy": "exponential"})
    assert policy.delays() == (5, 10, 20, 40, 80, 160, 320)  # 8 attempts, doubling from 5 s
    assert policy.as_dict() == {
        "strategy": "exponential",
        "initialDelaySeconds": 5,
        "multiplier": 2.0,
        "maxDelaySeconds": 86400,
        "maxAttempts": 8,
    }
    assert policy_from_dict(policy.as_dict()) == policy  # the stored form reads back


def test_one_attempt_means_no_retry():
    assert policy_from_dict({"strategy": "linear", "maxAttempts": 1}).delays() == ()
    assert policy_from_dict({"schedule": []}).delays() == ()


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"strategy": "linear", "maxAttempts": MAX_ATTEMPTS + 1}, ("maxAttempts",)),
        ({"strategy": "linear", "maxAttempts": 0}, ("maxAttempts",)),
        ({"strategy": "exponential", "initialDelaySeconds": -1}, ("initialDelaySeconds",)),
        (
            {"strategy": "exponential", "initialDelaySeconds": 10, "maxDelaySeconds": 5},
            ("maxDelaySeconds",),
        ),
        ({"strategy": "exponential", "maxDelaySeconds": MAX_DELAY_S + 1}, ("maxDelaySeconds",)),
        ({"strategy": "exponential", "multiplier": 0.5}, ("multiplier",)),
        ({"strategy": "linear", "multiplier": 2}, ("multiplier",)),
        ({"strategy": "fibonacci"}, ("strategy",)),
        ({}, ("strategy",)),
        ({"schedule": [5, MAX_DELAY_S + 1]}, ("schedule", 1)),
        ({"schedule": [5, -1]}, ("schedule", 1)),
        ({"schedule": [1] * MAX_ATTEMPTS}, ("schedule",)),
        ({"schedule": [1], "maxAttempts": 3}, ("maxAttempts",)),
    ],
)
def test_bad_policies_name_the_field(raw, path):
    with pytest.raises(InvalidInput) as caught:
        policy_from_dict(raw)
    assert caught.value.field == "retryPolicy"
    assert caught.value.path == path


def test_bounds_are_inclusive():
    assert len(check_schedule([MAX_DELAY_S] * (MAX_ATTEMPTS - 1))) == MAX_ATTEMPTS - 1
    policy = policy_from_dict({"strategy": "exponential", "maxAttempts": MAX_ATTEMPTS})
    assert len(policy.delays()) == MAX_ATTEMPTS - 1
    assert max(policy.delays()) == 86400  # the default cap


def test_precedence_endpoint_then_event_type_then_global():
    by_type = {"invoice.paid": (7,)}
    assert schedule_for([1, 2], by_type, "invoice.paid", (9,)) == [1, 2]
    assert schedule_for([], by_type, "invoice.paid", (9,)) == []  # an empty policy still wins
    assert schedule_for(None, by_type, "invoice.paid", (9,)) == (7,)
    assert schedule_for(None, by_type, "other", (9,)) == (9,)
    assert schedule_for(None, {}, "invoice.paid", (9,)) == (9,)


def test_policy_delays_feed_decide_with_jitter():
    delays = RetryPolicy(strategy="linear", initial_delay_s=100, max_attempts=3).delays()
    rng = random.Random(1)
    failed = Outcome(500)
    second = decide(failed, 2, delays, 0, rng)
    assert second.status == DeliveryStatus.PENDING
    assert 160_000 <= (second.next_attempt_at or 0) <= 240_000  # 200 s ± 20 %
    assert decide(failed, 3, delays, 0, rng).status == DeliveryStatus.FAILED


@pytest.mark.parametrize("bad", [0, 61, -5, 1.5, True])
def test_timeout_bounds(bad):
    with pytest.raises(InvalidInput) as caught:
        check_timeout(bad)
    assert caught.value.field == "timeoutSeconds"


def test_timeout_accepts_1_to_60():
    assert [check_timeout(t) for t in (1, 30, 60, None)] == [1, 30, 60, None]
