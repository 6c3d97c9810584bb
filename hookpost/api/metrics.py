"""``/metrics``: Prometheus text, the runtime's registry plus the delivery queue's gauges.

* ``HOOKPOST_METRICS_TOKEN`` set: a scrape needs ``Authorization: Bearer <it>`` (401 otherwise).
* ``HOOKPOST_METRICS_PORT`` set: ``/metrics`` is served on that port only, by a small server in
  the same process (:class:`MetricsServer`), and not on the API's port.
* The queue gauges count rows, so they come from a snapshot taken at most every
  ``QUEUE_REFRESH_S`` seconds, in the background: a scrape never waits for the count, except
  the first, or when refreshing has failed for ``QUEUE_MAX_STALE_S`` (then it answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

from hookpost.api.auth import parse_bearer
from hookpost.api.errors import error_response, response_for
from hookpost.api.routes.common import Runtime
from hookpost.services.status import QueueStatus

log = logging.getLogger("hookpost.api")

QUEUE_REFRESH_S = 5.0
QUEUE_MAX_STALE_S = 60.0
PATH = "/metrics"


class QueueGauges:
    """The queue's gauges from the latest snapshot of ``queue()`` (see the module docstring)."""

    def __init__(
        self,
        queue: Callable[[], Awaitable[QueueStatus]],
        refresh_s: float = QUEUE_REFRESH_S,
        max_stale_s: float = QUEUE_MAX_STALE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self.refresh_s = refresh_s
        self.max_stale_s = max_stale_s
        self._clock = clock
        self._value: QueueStatus | None = None
        self._taken_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def update(self) -> None:
        """Make the snapshot fresh enough for a scrape (see the module docstring)."""
        age = self._clock() - self._taken_at
        if self._value is None or age > self.max_stale_s:
            await asyncio.shield(self._refresh())
        elif age >= self.refresh_s:
            self._refresh()

    def _refresh(self) -> asyncio.Task[None]:
        """The refresh under way, or a new one: concurrent scrapes share one count."""
        task = self._refreshing
        if task is None or task.done():
            task = self._refreshing = asyncio.create_task(self._take())
            task.add_done_callback(_log_failure)
        return task

    async def _take(self) -> None:
        value = await self._queue()
        self._value, self._taken_at = value, self._clock()

    async def close(self) -> None:
        task = self._refreshing
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def collect(self) -> Iterator[Metric]:
        queue = self._value
        if queue is None:
            return
        due = GaugeMetricFamily("hookpost_queue_due", "Deliveries due now (incl. lost leases)")
        due.add_metric([], queue.due)
        yield due
        scheduled = GaugeMetricFamily(
            "hookpost_queue_scheduled", "Pending deliveries scheduled for later (retries)"
        )
        scheduled.add_metric([], queue.scheduled)
        yield scheduled
        age = GaugeMetricFamily(
            "hookpost_oldest_due_age_seconds",
            "How long the oldest due delivery has been waiting (0 when none is due)",
        )
        age.add_metric([], queue.oldest_due_age_s)
        yield age


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("refreshing the queue gauges failed: %s", exc)


class MetricsPage:
    """What ``/metrics`` answers, wherever it is served; one per API app or metrics server."""

    def __init__(self, hp: Runtime) -> None:
        self._hp = hp
        self._token = hp.settings.metrics_token.encode()
        self.gauges = QueueGauges(hp.services.status.queue)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self.gauges)

    def allows(self, authorization: str | None) -> bool:
        """Whether a request with this ``Authorization`` header may scrape."""
        if not self._token:
            return True
        token = parse_bearer(authorization)
        return token is not None and hmac.compare_digest(token.encode(), self._token)

    async def render(self) -> bytes:
        """The runtime's registry, the worker's wherever it runs, and the queue gauges."""
        await self.gauges.update()
        runtime = await self._hp.services.metrics.exposition()
        return runtime + generate_latest(self._registry)

    async def answer(self, authorization: str | None) -> Response:
        if not self.allows(authorization):
            return error_response(
                401,
                "authentication_failed",
                "metrics need Authorization: Bearer <HOOKPOST_METRICS_TOKEN>",
                {"WWW-Authenticate": "Bearer"},
            )
        return Response(await self.render(), media_type=CONTENT_TYPE_LATEST)


async def metrics_route(request: Request) -> Response:
    """``/metrics`` on the API's port (when ``HOOKPOST_METRICS_PORT`` is not set)."""
    page: MetricsPage = request.app.state.metrics_page
    return await page.answer(request.headers.get("authorization"))


class MetricsServer:
    """``/metrics`` alone on its own address, in this process (``HOOKPOST_METRICS_PORT``)."""

    def __init__(self, hp: Runtime, host: str, port: int) -> None:
        self.page = MetricsPage(hp)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None  # once started: where it listens

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"cannot listen on {self._host}:{self._port} for metrics: {exc}"
            ) from None
        app = web.Application()
        app.router.add_get(PATH, self._scrape)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        host, port = sock.getsockname()[:2]
        self.address = (host, port)

    async def _scrape(self, request: web.Request) -> web.Response:
        try:
            answer = await self.page.answer(request.headers.get("Authorization"))
        except Exception as exc:  # the database away: 503, as on the API's port
            known = response_for(exc)
            if known is None:
                raise
            answer = known
        headers = {k: v for k, v in answer.headers.items() if k != "content-length"}
        return web.Response(body=answer.body, status=answer.status_code, headers=headers)

    async def stop(self) -> None:
        await self.page.gauges.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
