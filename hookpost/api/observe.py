"""What every API request leaves behind: the HTTP metrics, and an access log line when on.

* ``hookpost_http_requests_total`` and ``hookpost_http_request_duration_seconds``, labelled
  by the route's template (``/api/v1/app/{app_id}/msg``), never the raw path: ids would make
  a series per application. A path no route matches is ``unmatched``.
* ``HOOKPOST_ACCESS_LOG=1``: one INFO line per request on the ``hookpost.access`` logger, with
  the method, route, path, status and duration. Never the query string nor a header (the
  token is in ``Authorization``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from hookpost.services.metrics import Metrics

if TYPE_CHECKING:
    from hookpost.services.tracing import Tracing

access_log = logging.getLogger("hookpost.access")

UNMATCHED = "unmatched"


class RequestObserver:
    """Times a request and counts it (see the module docstring). ``routes`` resolves the
    template of a request answered before routing (a 401, a 429); ``taken_route`` is the
    template of the requests the message front door answers."""

    def __init__(
        self,
        metrics: Metrics,
        routes: Sequence[BaseRoute],
        taken_route: str,
        log_access: bool,
        clock: Callable[[], float] = time.perf_counter,
        tracing: Tracing | None = None,
    ) -> None:
        self._tracing = tracing  # a span per request when OTEL_* asks for traces
        self._metrics = metrics
        self._routes = routes
        self._taken_route = taken_route
        self._log_access = log_access
        self._clock = clock
        # label values -> the counter's and the histogram's children: a labels() lookup per
        # request would cost more than the counting
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def observe(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        call: Callable[[Scope, Receive, Send], Awaitable[bool]],
    ) -> None:
        """Run ``call`` (which says whether the front door took the request) and record it."""
        started = self._clock()
        status = 500  # unless a response starts: an exception escaped

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        taken = False
        span = None if self._tracing is None else self._tracing.start_request(scope)
        try:
            taken = await call(scope, receive, sending)
        finally:
            route = self._record(scope, taken, status, self._clock() - started)
            if span is not None:
                span.end(scope["method"], None if route == UNMATCHED else route, status)

    def _record(self, scope: Scope, taken: bool, status: int, seconds: float) -> str:
        route = self._taken_route if taken else self.template(scope)
        method = scope["method"]
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            labels = (route, method, str(status))
            children = (
                self._metrics.http_requests.labels(*labels),
                self._metrics.http_seconds.labels(*labels),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if self._log_access:
            duration_ms = round(seconds * 1000, 1)
            access_log.info(
                "%s %s %d %.1fms",
                method,
                scope["path"],
                status,
                duration_ms,
                extra={
                    "method": method,
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
        return route

    def template(self, scope: Scope) -> str:
        route: Any = scope.get("route")
        if route is None:  # answered before routing (401, 429, 413): find the route it was for
            for candidate in self._routes:
                match, _ = candidate.matches(scope)
                if match is not Match.NONE:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED
