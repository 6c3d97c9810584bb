"""The HTTP server the ``hookpost`` CLI runs the API in: uvicorn, bounded against slow clients.

uvicorn bounds concurrent connections and requests (``limit_concurrency``: a 503 beyond it)
and the idle time between requests (``timeout_keep_alive``), but not the time a client takes
to send a request: a connection that sends half a request head, or a body that never ends,
stays open forever. :class:`ApiServer` closes such connections. On each sweep (several times a
second, on uvicorn's own tick) it looks at every connection's request: one waiting for a
request head for longer than ``HOOKPOST_REQUEST_HEAD_TIMEOUT_S``, or for the rest of a body for
longer than ``HOOKPOST_REQUEST_BODY_TIMEOUT_S``, is closed. A request the API is working on is
never timed: its time is the API's. Nothing is added to a request's own path: the sweep reads
the state uvicorn keeps on each connection anyway.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from typing import Any

import uvicorn

from hookpost.api.transport import CoalescingHttpToolsProtocol
from hookpost.logs import uvicorn_level
from hookpost.settings import Settings

TICK_S = 0.1  # uvicorn.Server.main_loop calls on_tick this often
MAX_SWEEP_S = 1.0


class Phase(enum.Enum):
    HEAD = "head"  # waiting for a request head (or the rest of one), or idle between requests
    BODY = "body"  # the head is in, the rest of the body is not
    BUSY = "busy"  # the API has the whole request, or is answering it


def phase(connection: Any) -> tuple[Phase, Any]:
    """The phase of an uvicorn HTTP connection (httptools or h11 protocol), and the request
    cycle it is in (None before the first request head is complete)."""
    cycle = getattr(connection, "cycle", None)
    if cycle is None or cycle.response_complete:
        return Phase.HEAD, cycle
    return (Phase.BODY if cycle.more_body else Phase.BUSY), cycle


class SlowClients:
    """Closes the connections that take too long to send a request (see the module docstring).

    A connection's phase is timed from the first sweep that saw it in that phase, for the
    same request: so it is closed between ``timeout`` and ``timeout`` + one sweep interval.
    """

    def __init__(
        self,
        head_timeout_s: float,
        body_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {Phase.HEAD: head_timeout_s, Phase.BODY: body_timeout_s}
        self._clock = clock
        self._since: dict[Any, tuple[Phase, Any, float]] = {}

    @property
    def interval_s(self) -> float:
        """How often to sweep: a quarter of the shortest timeout, within [TICK_S, MAX_SWEEP_S]."""
        shortest = min((t for t in self._limits.values() if t > 0), default=MAX_SWEEP_S * 4)
        return min(max(shortest / 4, TICK_S), MAX_SWEEP_S)

    def sweep(self, connections: Iterable[Any]) -> int:
        """Close the connections past their phase's timeout; returns how many."""
        now = self._clock()
        since: dict[Any, tuple[Phase, Any, float]] = {}
        closed = 0
        for connection in connections:
            current, cycle = phase(connection)
            limit = self._limits.get(current, 0.0)
            if limit <= 0:
                continue
            started = now
            seen = self._since.get(connection)
            if seen is not None and seen[0] is current and seen[1] is cycle:
                started = seen[2]
            if now - started < limit:
                since[connection] = (current, cycle, started)
                continue
            transport = getattr(connection, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()
                closed += 1
        self._since = since
        return closed


class ApiServer(uvicorn.Server):
    """``uvicorn.Server`` that sweeps slow clients (:class:`SlowClients`) on its tick."""

    def __init__(self, config: uvicorn.Config, slow_clients: SlowClients) -> None:
        super().__init__(config)
        self.slow_clients = slow_clients
        self._sweep_ticks = max(1, round(slow_clients.interval_s / TICK_S))

    async def on_tick(self, counter: int) -> bool:
        if counter % self._sweep_ticks == 0:
            self.slow_clients.sweep(self.server_state.connections)
        return await super().on_tick(counter)


def build_server(
    app: Any, settings: Settings, server_class: type[ApiServer] = ApiServer, **config: Any
) -> ApiServer:
    """The server ``hookpost serve``/``api`` run ``app`` in, bounded by ``settings``.
    ``config``: more ``uvicorn.Config`` arguments (a test's host and port, say)."""
    options: dict[str, Any] = {
        "http": CoalescingHttpToolsProtocol,
        # uvicorn's loggers propagate to the root handler (hookpost.logs): one format per
        # process. Its access log stays off: hookpost's (HOOKPOST_ACCESS_LOG) names the route.
        "log_config": None,
        "log_level": uvicorn_level(settings),
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": settings.max_connections or None,
    }
    uvicorn_config = uvicorn.Config(app, **{**options, **config})
    slow = SlowClients(settings.request_head_timeout_s, settings.request_body_timeout_s)
    return server_class(uvicorn_config, slow)
