"""Alert rules of an application (create, read, change, delete) and pushed-metric samples
(docs/decisions/0038-alert-rules.md). The evaluator is ``services.alert_evaluator``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hookpost.domain import ids
from hookpost.domain.alert_catalog import reserved_event_types
from hookpost.domain.alerts import ALERT_RULE_ID, AlertRule, RuleState, merged_spec, validate_spec
from hookpost.domain.errors import Conflict, InvalidInput
from hookpost.domain.models import Page, PageRequest
from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Store

MAX_SAMPLES = 1000  # per request
MAX_SAMPLE_AGE_MS = 7 * 86_400_000


class AlertRuleService:
    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock
        self._catalog_written = False

    async def _write_catalog(self) -> None:
        """The reserved event types, with their schemas and examples, in the catalog (once)."""
        if self._catalog_written:
            return
        for event_type in reserved_event_types(self._clock()):
            try:
                await self._store.create_event_type(event_type)
            except Conflict:
                pass  # there already (another process, an earlier rule)
        self._catalog_written = True

    async def create(self, app_id: str, given: Mapping[str, Any]) -> tuple[AlertRule, RuleState]:
        spec = validate_spec(given)
        now = self._clock()
        await self._write_catalog()
        rule = AlertRule(ids.new_id(ALERT_RULE_ID, now), app_id, spec, now, now)
        state = RuleState(next_eval_at=now)
        await self._store.create_alert_rule(rule, state, now)
        return rule, state

    async def get(self, app_id: str, rule_id: str) -> tuple[AlertRule, RuleState]:
        return await self._store.get_alert_rule(app_id, rule_id)

    async def list(self, app_id: str, page: PageRequest) -> Page[tuple[AlertRule, RuleState]]:
        return await self._store.list_alert_rules(app_id, page)

    async def patch(
        self, app_id: str, rule_id: str, patch: Mapping[str, Any]
    ) -> tuple[AlertRule, RuleState]:
        """The given fields over the rule's (null removes an optional one). A rule whose metric
        changes starts over: a firing rule is quietly reset (no resolve is sent)."""
        rule, state = await self._store.get_alert_rule(app_id, rule_id)
        spec = validate_spec(merged_spec(rule.spec, patch))
        now = self._clock()
        changed = AlertRule(rule.id, rule.app_id, spec, rule.created_at, now)
        if changed.series != rule.series or changed.kind != rule.kind:
            changed = AlertRule(rule.id, rule.app_id, spec, now, now)  # history starts now
            state = RuleState(fired=state.fired, last_fired_at=state.last_fired_at)
        state.next_eval_at = now
        await self._store.update_alert_rule(changed, state, now)
        return changed, state

    async def delete(self, app_id: str, rule_id: str) -> None:
        await self._store.delete_alert_rule(app_id, rule_id)

    async def push(self, app_id: str, samples: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Record samples ``{name, value, timestamp?}`` (timestamp: epoch ms, default now) of
        the metrics the application's rules use: (recorded, ignored). A sample of a metric
        no rule uses is not kept (it would be deleted at the next evaluation anyway)."""
        if not samples or len(samples) > MAX_SAMPLES:
            raise InvalidInput("samples", f"must hold 1 to {MAX_SAMPLES} samples")
        now = self._clock()
        rows: list[tuple[str, int, float]] = []
        for i, s in enumerate(samples):
            value = s.get("value")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput("value", "must be a finite number", (i,))
            if not math.isfinite(value):
                raise InvalidInput("value", "must be a finite number", (i,))
            at = s.get("timestamp")
            at = now if at is None else int(at)
            if not now - MAX_SAMPLE_AGE_MS <= at <= now + 60_000:
                raise InvalidInput("timestamp", "must be within the last 7 days", (i,))
            rows.append((str(s["name"]), at, float(value)))
        used = {
            r.spec["pushedMetric"]
            for r, _ in await self._store.alert_rules_of(app_id)
            if "pushedMetric" in r.spec
        }
        kept = [row for row in rows if row[0] in used]
        if kept:
            await self._store.add_alert_samples(app_id, kept)
        return len(kept), len(rows) - len(kept)


def rule_out(rule: AlertRule, state: RuleState) -> dict[str, Any]:
    """A rule as the API and the CLI show it: its fields, then its id, times and state."""
    from hookpost.domain.operational import iso

    return {
        **rule.spec,
        "id": rule.id,
        "appId": rule.app_id,
        "createdAt": iso(rule.created_at),
        "updatedAt": iso(rule.updated_at),
        "firing": state.firing,
        "timesFired": state.fired,
        "lastFiredAt": None if state.last_fired_at is None else iso(state.last_fired_at),
        "lastEvaluation": state.last or None,
    }
