"""Per-endpoint retry policies, event-type retry schedules and per-endpoint timeouts, observed
in the attempts the engine records against real receivers on 127.0.0.1."""

from __future__ import annotations

import itertools

import pytest

from hookpost.domain.errors import InvalidInput
from hookpost.domain.inputs import EndpointChanges, NewEndpoint, NewEventType
from hookpost.domain.models import AttemptStatus, DeliveryStatus, PageRequest
from hookpost.domain.queries import AttemptFilter
from hookpost.domain.retry import RetryPolicy, policy_from_dict
from hookpost.wiring import Hookpost
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always

LATENCY_S = 0.9  # claim polling, the request and the write, on a busy 2-core machine
JITTER = 0.2


async def _attempt_times(hp: Hookpost, app_id: str, msg_id: str, ep_id: str) -> list[int]:
    page = await hp.store.list_attempts(
        app_id, PageRequest(limit=100), AttemptFilter(message_id=msg_id, endpoint_id=ep_id)
    )
    return sorted(a.created_at for a in page.items)


def _gaps_match(times: list[int], delays: list[float]) -> bool:
    """Each gap between attempts is its delay ± jitter, plus at most LATENCY_S."""
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(times)]
    assert len(gaps) == len(delays), (gaps, delays)
    return all(
        d * (1 - JITTER) - 0.05 <= g <= d * (1 + JITTER) + LATENCY_S
        for g, d in zip(gaps, delays, strict=True)
    )


async def test_schedules_observed_in_attempt_timestamps(fresh_sqlite_url: str, receiver):
    # Global schedule: two immediate retries. Each endpoint below shows its own.
    async with Hookpost.open(
        fresh_sqlite_url, allow_subnets="127.0.0.0/8", retry_schedule=(0, 0), poll_interval_s=0.05
    ) as hp:
        app = await hp.apps.create("Acme")
        await hp.services.event_types.create(NewEventType("slow.type"))
        await hp.services.event_types.set_retry_schedule("slow.type", [2])

        async def endpoint(path: str, policy: dict[str, object] | None, types: list[str]) -> str:
            receiver.respond(path, always(500))
            new = NewEndpoint(
                url=receiver.url(path),
                event_types=types,
                retry_policy=None if policy is None else policy_from_dict(policy),
            )
            return (await hp.endpoints.create(app.id, new)).id

        fast = ["fast.type"]
        cases = {
            # path: (endpoint, event type, the delays expected between its attempts)
            "list": (await endpoint("/list", {"schedule": [1, 0]}, fast), [1, 0]),
            "exponential": (
                await endpoint(
                    "/exp",
                    {
                        "strategy": "exponential",
                        "initialDelaySeconds": 1,
                        "multiplier": 4,
                        "maxAttempts": 3,
                    },
                    fast,
                ),
                [1, 4],
            ),
            "linear": (
                await endpoint(
                    "/lin", {"strategy": "linear", "initialDelaySeconds": 1, "maxAttempts": 3}, fast
                ),
                [1, 2],
            ),
            "global": (await endpoint("/global", None, fast), [0, 0]),
        }
        # Precedence on a slow.type message: the endpoint's policy, then the event type's
        # schedule ([2]), then the global one.
        typed = await endpoint("/typed", None, ["slow.type"])
        policy_wins = await endpoint("/policy", {"schedule": [0, 0, 0]}, ["slow.type"])

        await hp.start_worker()
        fast_msg = (await hp.messages.send(app.id, "fast.type", {"n": 1})).message.id
        slow_msg = (await hp.messages.send(app.id, "slow.type", {"n": 2})).message.id
        expected = [(fast_msg, ep, delays) for ep, delays in cases.values()]
        expected += [(slow_msg, typed, [2]), (slow_msg, policy_wins, [0, 0, 0])]

        for msg_id, ep_id, _ in expected:
            await eventually(
                lambda m=msg_id, e=ep_id: hp.store.get_delivery(m, e),
                lambda d: d.status == DeliveryStatus.FAILED,
                timeout=20,
            )
        for msg_id, ep_id, delays in expected:
            times = await _attempt_times(hp, app.id, msg_id, ep_id)
            assert len(times) == len(delays) + 1, (ep_id, times)
            assert _gaps_match(times, delays), (ep_id, delays, times)


async def test_endpoint_timeout_cuts_a_slow_request(fresh_sqlite_url: str):
    slow = await Receiver().start()
    slow.delay_s = 3.0
    try:
        async with Hookpost.open(
            fresh_sqlite_url,
            allow_subnets="127.0.0.1/32",
            retry_schedule=(),
            request_timeout_s=10.0,
            poll_interval_s=0.05,
        ) as hp:
            app = await hp.apps.create("Acme")
            short = await hp.endpoints.create(
                app.id, NewEndpoint(url=slow.url("/short"), timeout_s=1)
            )
            default = await hp.endpoints.create(app.id, NewEndpoint(url=slow.url("/default")))
            await hp.start_worker()  # it reads the endpoints' timeouts before claiming
            sent = await hp.messages.send(app.id, "a.b", {"n": 1})

            for ep, status in ((short, DeliveryStatus.FAILED), (default, DeliveryStatus.SUCCEEDED)):
                await eventually(
                    lambda e=ep: hp.store.get_delivery(sent.message.id, e.id),
                    lambda d, s=status: d.status == s,
                    timeout=15,
                )
            page = await hp.store.list_attempts(
                app.id, PageRequest(), AttemptFilter(message_id=sent.message.id)
            )
            by_endpoint = {a.endpoint_id: a for a in page.items}
            cut = by_endpoint[short.id]
            assert cut.status == AttemptStatus.FAIL and cut.response_status_code == 0
            assert cut.error == "timeout: no complete response within 1s", cut.error
            assert 900 <= cut.duration_ms < 2500, cut.duration_ms  # 1 s, not the receiver's 3
            assert by_endpoint[default.id].duration_ms >= 2900  # the global 10 s let it finish
    finally:
        await slow.stop()


async def test_the_library_path_checks_the_same_rules(fresh_sqlite_url: str) -> None:
    """Services called directly refuse the policies and timeouts the API refuses."""
    async with Hookpost.open(fresh_sqlite_url, allow_subnets="127.0.0.0/8") as hp:
        app = await hp.apps.create("Acme")
        url = "http://127.0.0.1:9/"
        for bad in (
            NewEndpoint(url=url, retry_policy=RetryPolicy(schedule=(1, 10**7))),
            NewEndpoint(url=url, retry_policy=RetryPolicy(strategy="linear", max_attempts=99)),
            NewEndpoint(url=url, timeout_s=0),
        ):
            with pytest.raises(InvalidInput):
                await hp.endpoints.create(app.id, bad)
        ep = await hp.endpoints.create(app.id, NewEndpoint(url=url))
        with pytest.raises(InvalidInput):
            await hp.endpoints.patch(
                app.id, ep.id, EndpointChanges(retry_policy=RetryPolicy(strategy="cubic"))
            )
        with pytest.raises(InvalidInput):
            await hp.event_types.set_retry_schedule("a.b", [-1])
