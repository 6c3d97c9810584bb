"""The metrics of issue 21: API requests by route template, attempts by status-code class,
rate-limit rejections, the process and GC collectors; and the access log's lines."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import ServedApi
from tests.integration.test_rate_limit import ManualClock
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always

pytestmark = pytest.mark.timeout(60)

Serve = Callable[..., AbstractAsyncContextManager[ServedApi]]


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called ``name`` in a scrape, by their sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def requests(text: str) -> dict[tuple[str, str, str], float]:
    return {
        (labels["route"], labels["method"], labels["status"]): value
        for key, value in samples(text, "hookpost_http_requests_total").items()
        for labels in [dict(key)]
    }


async def scrape(http: httpx.AsyncClient) -> str:
    r = await http.get("/metrics")
    assert r.status_code == 200, r.text
    types = [line.split()[2] for line in r.text.splitlines() if line.startswith("# TYPE")]
    assert len(types) == len(set(types)), "a family appears twice"
    return r.text


async def test_requests_are_counted_by_route_template(
    fresh_sqlite_url: str, serve_api: Serve
) -> None:
    async with serve_api(fresh_sqlite_url) as api, api.http() as http, api.http(None) as anon:
        ids = []
        for name in ("One", "Two"):
            ids.append((await http.post("/api/v1/app", json={"name": name})).json()["id"])
        for app_id in ids:
            assert (await http.get(f"/api/v1/app/{app_id}")).status_code == 200
            msg = {"eventType": "a.b", "payload": {}}
            assert (await http.post(f"/api/v1/app/{app_id}/msg", json=msg)).status_code == 202
        assert (await http.get("/api/v1/app/app_nope")).status_code == 404
        assert (await anon.get(f"/api/v1/app/{ids[0]}/endpoint")).status_code == 401
        assert (await http.get("/no/such/path/123")).status_code == 404
        text = await scrape(http)

    counted = requests(text)
    assert counted[("/api/v1/app/{app_id}", "GET", "200")] == 2
    assert counted[("/api/v1/app/{app_id}", "GET", "404")] == 1
    assert counted[("/api/v1/app/{app_id}/msg", "POST", "202")] == 2  # the front door's
    assert counted[("/api/v1/app", "POST", "201")] == 2
    assert counted[("/api/v1/app/{app_id}/endpoint", "GET", "401")] == 1  # before routing
    assert counted[("unmatched", "GET", "404")] == 1
    assert not any(app_id in text for app_id in ids)  # no raw path, no id in a label
    durations = samples(text, "hookpost_http_request_duration_seconds_count")
    key = (("method", "GET"), ("route", "/api/v1/app/{app_id}"), ("status", "200"))
    assert durations[key] == 2
    # The process's own collectors.
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
        assert f"\n{family} " in text, family
    assert "python_gc_collections_total{" in text


async def test_rate_limited_requests_are_counted(fresh_sqlite_url: str, serve_api: Serve) -> None:
    async with serve_api(fresh_sqlite_url, api_rate_limit=1) as api, api.http() as http:
        api.app.state.rate_limiter.clock = ManualClock()  # no refill while the test runs
        statuses = [(await http.get("/api/v1/app")).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        text = await scrape(http)  # never limited
    assert samples(text, "hookpost_rate_limited_total") == {(): 2.0}
    assert requests(text)[("/api/v1/app", "GET", "429")] == 2


async def test_attempts_are_counted_by_status_class(
    fresh_sqlite_url: str, serve_api: Serve, receiver: Receiver
) -> None:
    for path, status in (("/ok", 204), ("/moved", 302), ("/gone", 404), ("/down", 503)):
        receiver.respond(path, always(status))
    urls = [receiver.url(p) for p in ("/ok", "/moved", "/gone", "/down")]
    urls.append("http://127.0.0.1:9/refused")  # the discard port: nothing listens
    async with (
        serve_api(
            fresh_sqlite_url,
            worker=True,
            allow_subnets="127.0.0.0/8",
            retry_schedule=(),
            poll_interval_s=0.05,
        ) as api,
        api.http() as http,
    ):
        app_id = (await http.post("/api/v1/app", json={"name": "A"})).json()["id"]
        for url in urls:
            r = await http.post(f"/api/v1/app/{app_id}/endpoint", json={"url": url})
            assert r.status_code == 201, r.text
        r = await http.post(f"/api/v1/app/{app_id}/msg", json={"eventType": "a.b", "payload": {}})
        assert r.status_code == 202

        async def counted() -> dict[str, float]:
            found = samples(await scrape(http), "hookpost_attempts_total")
            return {dict(k)["status_class"]: v for k, v in found.items()}

        expected = {"2xx": 1.0, "3xx": 1.0, "4xx": 1.0, "5xx": 1.0, "error": 1.0}
        await eventually(counted, lambda c: c == expected, timeout=20)


@pytest.fixture
async def access_api(
    fresh_sqlite_url: str, serve_api: Serve, request: pytest.FixtureRequest
) -> AsyncIterator[ServedApi]:
    async with serve_api(fresh_sqlite_url, access_log=request.param) as api:
        yield api


@pytest.mark.parametrize("access_api", [True, False], indirect=True)
async def test_the_access_log_when_switched_on(
    access_api: ServedApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookpost.access")
    async with access_api.http() as http:
        r = await http.get("/api/v1/app", params={"token": "hpk_in-a-query-string"})
        assert r.status_code == 200
    lines: list[Any] = [r for r in caplog.records if r.name == "hookpost.access"]
    if not access_api.hp.settings.access_log:
        assert lines == []  # off by default
        return
    (line,) = lines
    assert line.getMessage().startswith("GET /api/v1/app 200 ")
    assert (line.method, line.route, line.path, line.status) == (
        "GET",
        "/api/v1/app",
        "/api/v1/app",
        200,
    )
    assert "hpk_" not in line.getMessage() and access_api.admin_token not in str(vars(line))
