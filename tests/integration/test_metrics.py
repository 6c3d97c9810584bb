"""``/metrics``: the optional bearer token, the optional port of its own, and queue gauges
that come from a snapshot refreshed in the background, not from a count on every scrape."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServedApi
from tests.integration.test_api_errors import assert_error
from tests.support.polling import eventually

pytestmark = pytest.mark.timeout(60)

METRICS_TOKEN = "metrics-" + "m" * 32

Serve = Callable[..., AbstractAsyncContextManager[ServedApi]]


async def test_the_metrics_token_is_required_when_set(
    fresh_sqlite_url: str, serve_api: Serve
) -> None:
    async with serve_api(fresh_sqlite_url, metrics_token=METRICS_TOKEN) as api:
        async with api.http(token=None) as anonymous:
            r = await anonymous.get("/metrics")
            assert_error(r, 401, "authentication_failed")
            assert r.headers["www-authenticate"] == "Bearer"
        for token in ("wrong", api.admin_token):  # an API token is not the metrics token
            async with api.http(token=token) as http:
                assert_error(await http.get("/metrics"), 401, "authentication_failed")
        async with api.http(token=METRICS_TOKEN) as http:
            r = await http.get("/metrics")
            assert r.status_code == 200, r.text
            assert "\nhookpost_queue_due 0.0\n" in r.text


async def test_a_metrics_port_serves_metrics_there_only(
    fresh_sqlite_url: str, serve_api: Serve
) -> None:
    async with serve_api(
        fresh_sqlite_url, metrics_port=1, metrics_token=METRICS_TOKEN
    ) as api:  # the port is only read by who starts the server: here, the test below
        async with api.http() as http:
            assert_error(await http.get("/metrics"), 404, "not_found")
        from hookpost.api.metrics import MetricsServer

        server = MetricsServer(api.hp, "127.0.0.1", 0)
        await server.start()
        try:
            assert server.address is not None
            base = f"http://127.0.0.1:{server.address[1]}"
            async with httpx.AsyncClient(base_url=base) as scraper:
                r = await scraper.get("/metrics")
                assert_error(r, 401, "authentication_failed")
                r = await scraper.get(
                    "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
                )
                assert r.status_code == 200, r.text
                assert r.headers["content-type"].startswith("text/plain")
                for name in ("hookpost_queue_due", "hookpost_messages_accepted_total"):
                    assert f"# TYPE {name} " in r.text, name
                assert (await scraper.get("/api/v1/health")).status_code == 404
        finally:
            await server.stop()


async def test_scrapes_share_one_background_count(
    fresh_sqlite_url: str, serve_api: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve_api(fresh_sqlite_url) as api, api.http() as http:
        counts: list[int] = []
        depth = api.hp.store.queue_depth

        async def counted(*args: Any) -> Any:
            counts.append(1)
            return await depth(*args)

        monkeypatch.setattr(api.hp.store, "queue_depth", counted)
        for _ in range(10):
            assert "\nhookpost_queue_due 0.0\n" in (await http.get("/metrics")).text
        assert len(counts) == 1  # the first scrape's: every other one read the snapshot
        gauges = api.app.state.metrics_page.gauges
        now = [time.monotonic()]
        gauges._clock = lambda: now[0]

        # A message later, the snapshot is stale: scrapes answer at once, and one count in
        # the background, whichever scrapes come meanwhile, brings the gauge up to date.
        app_id = (await http.post("/api/v1/app", json={"name": "A"})).json()["id"]
        ep = {"url": "https://example.com/hook"}
        assert (await http.post(f"/api/v1/app/{app_id}/endpoint", json=ep)).status_code == 201
        msg = {"eventType": "a.b", "payload": {}}
        assert (await http.post(f"/api/v1/app/{app_id}/msg", json=msg)).status_code == 202
        now[0] += gauges.refresh_s
        scrapes = await asyncio.gather(*(http.get("/metrics") for _ in range(5)))
        assert all(r.status_code == 200 for r in scrapes)

        async def due() -> str:
            return (await http.get("/metrics")).text

        await eventually(due, lambda text: "\nhookpost_queue_due 1.0\n" in text)
        assert len(counts) == 2


async def test_the_self_contained_asgi_app_starts_its_metrics_server(
    fresh_sqlite_url: str,
) -> None:
    import socket

    import uvicorn

    from hookpost.settings import Settings
    from hookpost.wiring import asgi_app
    from tests.support.polling import until_serving

    with socket.socket() as probe:  # a free port for the metrics server
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    settings = Settings(database_url=fresh_sqlite_url, host="127.0.0.1", metrics_port=metrics_port)
    config = uvicorn.Config(
        asgi_app(settings, worker=False), port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until_serving(server, task)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert r.status_code == 200 and "hookpost_queue_due" in r.text, r.text
            r = await http.get(f"http://127.0.0.1:{port}/metrics")
            assert_error(r, 404, "not_found")
    finally:
        server.should_exit = True
        await task
    with socket.socket() as probe:  # stopped with the app: nothing listens there any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        probe.bind(("127.0.0.1", metrics_port))
