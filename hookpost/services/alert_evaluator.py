"""The alert evaluator, run by the workers: per application, under a lease, it counts the new
messages into the rules' buckets (reading from a cursor, never the message history), then
evaluates the rules that are due and sends their alerts as messages of the reserved types
(docs/decisions/0038-alert-rules.md).

Exactly once per crossing: the alert's eventId is the rule's id and the crossing's number, and
the store creates a message once per eventId; the rule's state is written only while the lease
holds, and a long run renews it as it goes. A run that crashes (or loses its lease) after
sending is run again by the next holder, which reaches the same crossing and the same eventId:
nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from hookpost.domain import ids
from hookpost.domain.alert_eval import (
    Aggregate,
    Reading,
    SeriesCounter,
    alert_payload,
    apply,
    decide,
    digest_payload,
    event_id,
    has_history,
    read_anomaly,
    read_threshold,
    samples_aggregate,
    window_aggregate,
    windows_for,
)
from hookpost.domain.alerts import (
    DIGEST_RULE,
    AlertRule,
    RuleState,
    bucket_ms,
    next_run_ms,
    runs_between,
)
from hookpost.domain.errors import InvalidInput, NotFound
from hookpost.domain.filters import Payload
from hookpost.domain.operational import iso
from hookpost.services.common import Clock, now_ms
from hookpost.services.messages import MessageService
from hookpost.services.poller import Poller
from hookpost.store.base import Store

log = logging.getLogger("hookpost.alerts")

LEASE_MS = 15_000  # renewed at a run's steps once a third of it has passed
# Messages are counted once their id's time is this far behind: a message whose transaction
# commits later than that after its id was made is not counted (PostgreSQL's concurrent
# writers commit out of id order; the decision record bounds it).
SETTLE_MS = 2_000
SCAN_ROWS = 1_000
FLUSH_PAGES = 20  # a long catch-up writes its counts and moves the cursor this often
IDLE_RUN_MS = 60_000  # an application with no enabled rule is looked at again after this
TOP_FAILING = 5
# A digest rule back from a long outage sends the digests of at most this many missed periods
# (the latest); the older ones are skipped, with a warning.
MAX_MISSED_DIGESTS = 24


class LeaseLost(Exception):
    """Another evaluator holds the application now (this run's lease expired between two
    steps): it redoes the run, so this one stops."""


class Hold:
    """A run's lease on its application, renewed (on the evaluator's clock) at each step of
    the run (a page of messages, a rule) once a third of it has passed."""

    def __init__(
        self, store: Store, app_id: str, lease: str, lease_ms: int, clock: Clock, now: int
    ) -> None:
        self.store = store
        self.app_id = app_id
        self.lease = lease
        self._lease_ms = lease_ms
        self._clock = clock
        self._renewed = now

    async def keep(self) -> None:
        now = self._clock()
        if now - self._renewed < self._lease_ms // 3:
            return
        if not await self.store.renew_alert_app(self.app_id, self.lease, self._lease_ms, now):
            raise LeaseLost
        self._renewed = now


class AlertEvaluator:
    def __init__(
        self,
        store: Store,
        messages: MessageService,
        clock: Clock = now_ms,
        lease_ms: int = LEASE_MS,
        settle_ms: int = SETTLE_MS,
        scan_rows: int = SCAN_ROWS,
        max_missed_digests: int = MAX_MISSED_DIGESTS,
    ) -> None:
        self._store = store
        self._messages = messages
        self._clock = clock
        self._lease_ms = lease_ms
        self._settle_ms = settle_ms
        self._scan_rows = scan_rows
        self._max_missed_digests = max_missed_digests

    async def run_once(self) -> bool:
        """Claim one application whose run is due and run it: False if none was due."""
        lease = secrets.token_hex(8)
        now = self._clock()
        claimed = await self._store.claim_alert_app(lease, self._lease_ms, now)
        if claimed is None:
            return False
        app_id, cursor = claimed
        hold = Hold(self._store, app_id, lease, self._lease_ms, self._clock, now)
        try:
            await self._run(hold, cursor, now)
        except LeaseLost:
            log.warning("alert run of %s: lease lost before it finished", app_id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # else its lease runs out
                await self._store.release_alert_app(app_id, lease)
            raise
        return True

    async def _run(self, hold: Hold, cursor: str, now: int) -> None:
        app_id = hold.app_id
        rules = [(r, s) for r, s in await self._store.alert_rules_of(app_id) if r.enabled]
        end = now - self._settle_ms  # every message before it is counted by the end of _count
        await self._count(hold, cursor, end, [r for r, _ in rules])
        states: dict[str, RuleState] = {}
        due = [(r, s) for r, s in rules if s.next_eval_at <= now]
        series = sorted({r.series for r, _ in due if _reads_buckets(r)})
        since = min((end - r.span_ms() - bucket_ms(r) for r, _ in due), default=end)
        buckets = await self._store.alert_buckets(app_id, series, since) if series else {}
        for rule, state in due:
            await hold.keep()
            if rule.kind == DIGEST_RULE:
                await self._digest(hold, rule, state, now, end)
            else:
                reading = await self._read(rule, buckets, now, end)
                if reading is not None:
                    await self._decide(rule, state, reading, now)
                state.next_eval_at = now + rule.every_ms
            states[rule.id] = state
        next_run = min((s.next_eval_at for _, s in rules), default=now + IDLE_RUN_MS)
        keep_series: dict[str, int] = {}
        keep_samples: dict[str, int] = {}
        for r, _ in rules:
            if r.kind == DIGEST_RULE:
                continue
            cutoff = end - r.span_ms() - bucket_ms(r)
            if "pushedMetric" in r.spec:
                name = r.spec["pushedMetric"]
                keep_samples[name] = min(keep_samples.get(name, cutoff), cutoff)
            else:
                keep_series[r.series] = min(keep_series.get(r.series, cutoff), cutoff)
        # The time now, not the run's start: a rule written during a long run is still
        # written before it, so the next run is made due at once (Alerts.finish_alert_run).
        if not await self._store.finish_alert_run(
            app_id, hold.lease, states, max(next_run, now + 1), self._clock(), keep_series,
            keep_samples,
        ):  # fmt: skip
            raise LeaseLost

    async def _count(self, hold: Hold, cursor: str, end: int, rules: Sequence[AlertRule]) -> None:
        """Count the messages after the cursor and before ``end`` into the buckets, however
        many pages they take, writing the counts and moving the cursor every FLUSH_PAGES."""
        counter = SeriesCounter(r for r in rules if _reads_buckets(r))
        if not counter:
            return
        before = ids.id_floor(ids.MESSAGE, end)
        with_payload = counter.needs_payload
        deltas: dict[tuple[str, int], Aggregate] = {}
        after = cursor
        pages = 0
        while True:
            await hold.keep()
            rows = await self._store.scan_messages(
                hold.app_id, after, before, self._scan_rows, with_payload
            )
            for _id, event_type, body, created in rows:
                counter.observe(event_type, Payload(body), created)
            counter.drain_into(deltas)
            if rows:
                after = rows[-1][0]
            pages += 1
            last = len(rows) < self._scan_rows
            if after != cursor and (last or pages % FLUSH_PAGES == 0):
                if not await self._store.add_alert_buckets(hold.app_id, hold.lease, after, deltas):
                    raise LeaseLost
                cursor, deltas = after, {}
            if last:
                return

    async def _read(
        self, rule: AlertRule, buckets: dict[str, dict[int, Aggregate]], now: int, end: int
    ) -> Reading | None:
        pushed = rule.spec.get("pushedMetric")
        if pushed is not None:
            end = now  # samples carry their own time: nothing to wait for
            samples = await self._store.alert_samples(rule.app_id, pushed, end - rule.span_ms())
            sketch = rule.spec["metric"] == "p95"
            windows = [samples_aggregate(samples, s, e, sketch) for s, e in windows_for(rule, end)]
        else:
            mine = buckets.get(rule.series, {})
            width = bucket_ms(rule)
            windows = [window_aggregate(mine, s, e, width) for s, e in windows_for(rule, end)]
        if not has_history(rule, end):
            return None
        if rule.kind == "anomaly":
            return read_anomaly(rule, windows)
        return read_threshold(rule, windows[-1])

    async def _decide(self, rule: AlertRule, state: RuleState, reading: Reading, now: int) -> None:
        state.last = {"value": reading.value, "holds": reading.holds, "at": iso(now)}
        transition = decide(rule, state, reading.holds, now)
        if transition is None:
            return
        payload = alert_payload(rule, transition, reading, now)
        kind = transition.event_type.rsplit(".", 1)[-1]
        await self._send(rule, payload, event_id(rule.id, kind, transition.seq))
        apply(state, transition, now)

    async def _digest(
        self, hold: Hold, rule: AlertRule, state: RuleState, now: int, end: int
    ) -> None:
        """A digest per scheduled period ended since the last one (at most the latest
        ``max_missed_digests``), each with its own period's counts and eventId."""
        schedule = rule.spec["schedule"]
        start = rule.created_at if state.period_start is None else state.period_start
        ends = runs_between(schedule, start, end, self._max_missed_digests + 1)
        if len(ends) > self._max_missed_digests:
            log.warning(
                "digest rule %s: the periods from %s to %s are skipped (at most the latest %d"
                " missed periods are sent)",
                rule.id, iso(start), iso(ends[0]), self._max_missed_digests,
            )  # fmt: skip
            start, ends = ends[0], ends[1:]
        for until in ends:
            await hold.keep()
            by_type, failing = await self._store.alert_digest(rule.app_id, start, until)
            failed = sum(n for _, n in failing)
            payload = digest_payload(
                rule, start, until, by_type, failed, failing[:TOP_FAILING], now
            )
            await self._send(rule, payload, event_id(rule.id, "digest", until))
            start = until
        state.period_start = start
        state.next_eval_at = next_run_ms(schedule, start) + self._settle_ms

    async def _send(self, rule: AlertRule, payload: dict[str, Any], eid: str) -> None:
        try:
            await self._messages.send_to_app_id(rule.app_id, payload["type"], payload, event_id=eid)
        except (NotFound, InvalidInput):  # the application deleted, a strict catalog's refusal
            log.warning("alert rule %s: could not send %s", rule.id, eid, exc_info=True)


def _reads_buckets(rule: AlertRule) -> bool:
    return rule.kind != DIGEST_RULE and "pushedMetric" not in rule.spec


class AlertRunner(Poller):
    """A worker's loop over the applications' alert runs, every ``poll_s``."""

    def __init__(self, evaluator: AlertEvaluator, poll_s: float = 1.0) -> None:
        super().__init__(
            "hookpost-alerts", evaluator.run_once, poll_s, log, "could not evaluate alert rules"
        )
