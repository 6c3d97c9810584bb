"""Attempt statistics for an application or an endpoint over [since, until): the API's routes and
the dashboard read them here. Closed hours come from the rollups, the rest from the attempts
(domain.stats.split_range); the rollup pass runs in every worker process, one at a time
(docs/decisions/0033-stats.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hookpost.domain.stats import (
    SUCCESS,
    Scope,
    StatsReport,
    Tally,
    check_range,
    split_range,
)
from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Store

log = logging.getLogger("hookpost.stats")

ROLLUP_EVERY_S = 60.0  # how often a worker process looks for closed hours to roll up
ROLLUP_PAUSE_S = 0.01  # between two hours of a catch-up: the write lock (SQLite) is free
REROLL_MAX = 1_000  # dirty (application, hour)s rolled up again per pass, at most


@dataclass(frozen=True)
class TypeCounts:
    success: int
    failure: int
    canceled: int


@dataclass(frozen=True)
class AppAttemptStats:
    """Svix's AppAttemptStatsOut: attempts that succeeded or failed in the range, and
    deliveries canceled in it, per event type."""

    since: int
    until: int
    by_event_type: dict[str, TypeCounts]

    def total(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.by_event_type.values())


class StatsService:
    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock

    async def _tally(self, scope: Scope, since_ms: int, until_ms: int) -> Tally:
        check_range(since_ms, until_ms)
        split = split_range(since_ms, until_ms, await self._store.rolled_until())
        tally = Tally()
        if split.rolled_to > split.rolled_from:
            tally.add_marginals(
                await self._store.stats_rollups(scope, split.rolled_from, split.rolled_to)
            )
        for start, end in split.raw:
            tally.add_cells(await self._store.stats_cells(scope, start, end))
        return tally

    async def _report(self, scope: Scope, since_ms: int, until_ms: int) -> StatsReport:
        tally = await self._tally(scope, since_ms, until_ms)
        pending, sending = await self._store.stats_live(scope, since_ms, until_ms)
        return tally.report(since_ms, until_ms, pending, sending)

    async def app(self, app_id: str, since_ms: int, until_ms: int) -> StatsReport:
        """The application's attempts of [since, until) (an id or uid; NotFound if none)."""
        app = await self._store.get_app(app_id)
        return await self._report(Scope(app.id), since_ms, until_ms)

    async def endpoint(
        self, app_id: str, endpoint_id: str, since_ms: int, until_ms: int
    ) -> StatsReport:
        endpoint = await self._store.get_endpoint(app_id, endpoint_id)
        return await self._report(Scope(endpoint.app_id, endpoint.id), since_ms, until_ms)

    async def app_attempts(
        self,
        app_id: str,
        since_ms: int,
        until_ms: int,
        event_types: Sequence[str] | None = None,
    ) -> AppAttemptStats:
        """Svix's app attempt stats, of ``event_types`` only if given: the rollups for the
        closed hours, the attempts and cancellations for the rest (no latency or breakdowns
        but by type: the report's other queries are not needed)."""
        app = await self._store.get_app(app_id)
        scope = Scope(app.id)
        check_range(since_ms, until_ms)
        split = split_range(since_ms, until_ms, await self._store.rolled_until())
        counts: dict[str, list[int]] = {}
        if split.rolled_to > split.rolled_from:
            for name, *values in await self._store.stats_types(
                scope, split.rolled_from, split.rolled_to
            ):
                _add_counts(counts, name, *values)
        for start, end in split.raw:
            for c in await self._store.stats_cells(scope, start, end):
                _add_counts(
                    counts, c.event_type, *((c.n, 0) if c.status == SUCCESS else (0, c.n)), 0
                )
            for x in await self._store.stats_canceled(scope, start, end):
                _add_counts(counts, x.event_type, 0, 0, x.n)
        wanted = None if event_types is None else set(event_types)
        return AppAttemptStats(
            since_ms,
            until_ms,
            {k: TypeCounts(*v) for k, v in sorted(counts.items()) if wanted is None or k in wanted},
        )

    # -- the rollup pass ----------------------------------------------------------------------
    async def roll_up(self, pause_s: float = ROLLUP_PAUSE_S) -> int:
        """Roll up every closed hour not rolled up yet, then again the hours that late
        attempts made dirty: how many steps it took (0: nothing to do, or another process's
        pass is at it)."""
        steps = 0
        while await self._store.roll_up_next(self._clock()) is not None:
            steps += 1
            if pause_s:
                await asyncio.sleep(pause_s)
        for _ in range(REROLL_MAX):  # a mark written again meanwhile stays for the next pass
            if await self._store.reroll_next() is None:
                break
            steps += 1
            if pause_s:
                await asyncio.sleep(pause_s)
        return steps

    async def roll_up_forever(self, every_s: float = ROLLUP_EVERY_S) -> None:
        """``roll_up`` every ``every_s`` seconds until cancelled (a worker's task)."""
        while True:
            try:
                steps = await self.roll_up()
            except Exception:  # tried again next time; the queries read the attempts meanwhile
                log.warning("stats rollup failed", exc_info=True)
            else:
                if steps:
                    log.debug("stats rollup: %d steps", steps)
            await asyncio.sleep(every_s)


def _add_counts(into: dict[str, list[int]], name: str, s: int, f: int, c: int) -> None:
    row = into.setdefault(name, [0, 0, 0])
    row[0] += s
    row[1] += f
    row[2] += c
