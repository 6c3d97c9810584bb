"""The per-token API rate limit (``Settings.api_rate_limit``, ``hookpost.api.ratelimit``).

A token bucket per API token: ``rate`` requests per second, bursts of ``2 x rate``. Over the
limit: 429 ``{"code": "rate_limited", "detail"}`` with an integer ``Retry-After`` >= 1.
Other tokens, unauthenticated requests (401 as ever), health checks and metrics are not
affected. The server tests swap the buckets' clock for a manual one, so they count exactly
and never sleep; one test uses the real clock and polls.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from hookpost.api.ratelimit import TokenBuckets, retry_after_seconds
from hookpost.domain.models import PageRequest
from hookpost.settings import Settings
from tests.integration.conftest import ServedApi
from tests.integration.test_api_errors import assert_error
from tests.support.polling import eventually

pytestmark = pytest.mark.timeout(30)

RATE = 5  # per second; the burst is 10


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --------------------------------------------------------------------------- the buckets


def test_token_bucket_counts_exactly() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(RATE, clock=clock)
    assert buckets.burst == 2 * RATE
    assert [buckets.take("a") for _ in range(10)] == [0.0] * 10
    wait = buckets.take("a")  # the 11th
    assert wait == pytest.approx(1 / RATE)
    assert buckets.take("a") == pytest.approx(1 / RATE)  # refusals cost nothing
    assert buckets.take("b") == 0.0  # another key has its own bucket
    clock.advance(1 / RATE)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.advance(3600)  # a long pause refills to the burst, not beyond
    assert sum(buckets.take("a") == 0.0 for _ in range(15)) == 10


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_seconds(0.0001) == 1
    assert retry_after_seconds(1.0) == 1
    assert retry_after_seconds(1.01) == 2
    buckets = TokenBuckets(0.5, clock=ManualClock())  # 1 request, then wait 2 s
    assert buckets.take("k") == 0.0
    assert retry_after_seconds(buckets.take("k")) == 2


def test_bucket_table_is_bounded() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(RATE, clock=clock, max_buckets=100)
    for i in range(1000):
        buckets.take(f"k{i}")
        clock.advance(0.001)
    assert len(buckets) <= 100
    with pytest.raises(ValueError):
        TokenBuckets(0)


def test_default_is_generous_and_zero_turns_it_off() -> None:
    assert Settings().api_rate_limit >= 1000
    assert Settings.from_env({"HOOKPOST_API_RATE_LIMIT": "0"}).api_rate_limit == 0
    assert Settings.from_env({"HOOKPOST_API_RATE_LIMIT": "7"}).api_rate_limit == 7


# --------------------------------------------------------------------------- through the API


@pytest.fixture
async def api(
    fresh_sqlite_url: str, serve_api: Callable[..., AbstractAsyncContextManager[ServedApi]]
) -> AsyncIterator[ServedApi]:
    async with serve_api(fresh_sqlite_url, api_rate_limit=RATE) as server:
        yield server


def assert_limited(response: httpx.Response) -> int:
    assert_error(response, 429, "rate_limited")
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
    return int(retry_after)


async def test_the_eleventh_rapid_request_is_429_per_token(api: ServedApi) -> None:
    clock = ManualClock()
    api.app.state.rate_limiter.clock = clock  # time stands still unless advanced
    app = await api.hp.services.apps.create("Acme", None, {}, None)
    app_token, _ = await api.hp.services.tokens.create(app_id=app.id, name="portal")

    async with api.http() as admin, api.http(app_token) as scoped, api.http(None) as anonymous:
        for _ in range(2 * RATE):
            assert (await admin.get("/api/v1/app")).status_code == 200
        assert assert_limited(await admin.get("/api/v1/app")) == 1
        # Every route and method of the token counts, the POST /msg front door included.
        msg = {"eventType": "a.b", "payload": {}}
        assert_limited(await admin.post(f"/api/v1/app/{app.id}/msg", json=msg))
        assert_limited(await admin.post("/api/v1/app", json={"name": "x"}))
        assert_limited(
            await admin.post("/api/v1/app", json={"name": "x"}, headers={"idempotency-key": "k1"})
        )

        # Another token has its own bucket.
        for _ in range(2 * RATE):
            assert (await scoped.get(f"/api/v1/app/{app.id}")).status_code == 200
        assert_limited(await scoped.get(f"/api/v1/app/{app.id}"))

        # Without a valid token: 401, as ever; health and metrics are never limited.
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = await anonymous.get("/api/v1/app", headers=headers)
            assert_error(r, 401, "authentication_failed")
        for _ in range(3 * RATE):
            assert (await admin.get("/api/v1/health")).status_code == 204
            assert (await admin.get("/api/v1/health/ping")).status_code == 204
            assert (await admin.get("/metrics")).status_code == 200

        # The bucket refills at RATE per second.
        clock.advance(1 / RATE)
        assert (await admin.get("/api/v1/app")).status_code == 200
        assert_limited(await admin.get("/api/v1/app"))
        clock.advance(1.0)
        # A 429 is never stored as the idempotent answer: the key executes now.
        created = await admin.post(
            "/api/v1/app", json={"name": "x"}, headers={"idempotency-key": "k1"}
        )
        assert created.status_code == 201, created.text
        assert "idempotent-replayed" not in created.headers
        sent = await admin.post(f"/api/v1/app/{app.id}/msg", json=msg)
        assert sent.status_code == 202, sent.text

    listed = await api.hp.services.apps.list(PageRequest())
    assert len(listed.items) == 2  # Acme and the one created after the refill


async def test_limit_with_the_real_clock_then_retry_after(api: ServedApi) -> None:
    async with api.http() as admin:
        statuses: list[int] = []
        limited: httpx.Response | None = None
        for _ in range(100):  # bounded; the burst is 10
            r = await admin.get("/api/v1/app")
            statuses.append(r.status_code)
            if r.status_code == 429:
                limited = r
                break
        assert limited is not None, statuses
        assert statuses[: 2 * RATE] == [200] * (2 * RATE)
        retry_after = assert_limited(limited)
        started = time.monotonic()

        async def status() -> int:
            return (await admin.get("/api/v1/app")).status_code

        await eventually(status, lambda s: s == 200, timeout=5.0, interval=0.05)
        assert time.monotonic() - started <= retry_after + 0.5


async def test_rate_limit_is_documented_and_off_at_zero(
    fresh_sqlite_url: str, serve_api: Callable[..., AbstractAsyncContextManager[ServedApi]]
) -> None:
    async with serve_api(fresh_sqlite_url, api_rate_limit=0) as api, api.http() as admin:
        assert not hasattr(api.app.state, "rate_limiter")
        for _ in range(50):
            assert (await admin.get("/api/v1/app")).status_code == 200
        doc = (await admin.get("/api/v1/openapi.json")).json()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/api/v1/health"):
                assert "429" in operation["responses"], (method, path)
