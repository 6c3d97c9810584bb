"""The role ports of the operations data: alert rules (``Alerts``), the trace contexts of
messages (``Traces``) and attempt statistics (``Stats``); ``store.base.Store`` unites them with
the others."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from hookpost.domain.alert_eval import Aggregate
from hookpost.domain.alerts import AlertRule, RuleState
from hookpost.domain.models import (
    Page,
    PageRequest,
)
from hookpost.domain.stats import Canceled, Cell, Marginals, Scope
from hookpost.domain.tracecontext import TraceContext


class Alerts(Protocol):
    """Alert rules (domain.alerts) and what their evaluator keeps: per application a cursor
    over its messages and a lease, bucketed aggregates per series, pushed-metric samples.

    Every write of an evaluation run is made only if the run's lease still holds the
    application (checked in the write's transaction): a run that lost it writes nothing.
    Leases are on the callers' clock, as background tasks' (docs/decisions/0038).
    """

    async def create_alert_rule(self, rule: AlertRule, state: RuleState, now_ms: int) -> None:
        """NotFound for an unknown application. The application's cursor is created (at
        ``now_ms``: earlier messages are never counted) or made due now."""
        ...

    async def get_alert_rule(self, app_id: str, rule_id: str) -> tuple[AlertRule, RuleState]: ...
    async def list_alert_rules(
        self, app_id: str, page: PageRequest
    ) -> Page[tuple[AlertRule, RuleState]]: ...
    async def alert_rules_of(self, app_id: str) -> list[tuple[AlertRule, RuleState]]:
        """Every rule of the application, in id order."""
        ...

    async def update_alert_rule(self, rule: AlertRule, state: RuleState, now_ms: int) -> None:
        """Its spec and state (NotFound if gone); the application's cursor is made due now."""
        ...

    async def delete_alert_rule(self, app_id: str, rule_id: str) -> None: ...
    async def add_alert_samples(
        self, app_id: str, samples: Sequence[tuple[str, int, float]]
    ) -> None:
        """Pushed-metric samples (name, at, value)."""
        ...

    async def claim_alert_app(
        self, lease: str, lease_ms: int, now_ms: int
    ) -> tuple[str, str] | None:
        """(app id, cursor) of an application whose run is due and whose lease is free or
        expired (its deleted ones never): ``lease``'s until ``now_ms + lease_ms``. One claimer
        at a time gets it, across processes (PostgreSQL: SKIP LOCKED)."""
        ...

    async def renew_alert_app(self, app_id: str, lease: str, lease_ms: int, now_ms: int) -> bool:
        """If ``lease`` holds the application: hold it until ``now_ms + lease_ms`` (a long run
        renews it as it goes). A rule written meanwhile still makes the next run due at once."""
        ...

    async def scan_messages(
        self, app_id: str, after_id: str, before_id: str, limit: int, with_payload: bool
    ) -> list[tuple[str, str, bytes, int]]:
        """(id, event type, payload, created_at) of up to ``limit`` messages of the application
        with after_id < id < before_id, in id order (payloads ``b""`` unless ``with_payload``)."""
        ...

    async def add_alert_buckets(
        self,
        app_id: str,
        lease: str,
        cursor: str,
        deltas: Mapping[tuple[str, int], Aggregate],
    ) -> bool:
        """If ``lease`` holds the application: merge each (series, bucket start) aggregate into
        its bucket and move the cursor to ``cursor``, in one transaction."""
        ...

    async def alert_buckets(
        self, app_id: str, series: Sequence[str], since_ms: int
    ) -> dict[str, dict[int, Aggregate]]:
        """The buckets of these series starting at or after ``since_ms``."""
        ...

    async def alert_samples(self, app_id: str, name: str, since_ms: int) -> list[tuple[int, float]]:
        """(at, value) of the samples of metric ``name`` after ``since_ms``."""
        ...

    async def alert_digest(
        self, app_id: str, since_ms: int, until_ms: int
    ) -> tuple[dict[str, int], list[tuple[str, int]]]:
        """Of the messages created in [since, until): their counts by event type (the
        reserved ``hookpost.`` types left out), and per endpoint its deliveries of them that
        failed, most first."""
        ...

    async def finish_alert_run(
        self,
        app_id: str,
        lease: str,
        states: Mapping[str, RuleState],
        next_run_at: int,
        now_ms: int,
        keep_series: Mapping[str, int],
        keep_samples: Mapping[str, int],
    ) -> bool:
        """If ``lease`` holds the application, in one transaction: the rules' states, the next
        run (``now_ms`` instead if a rule was written during the run), the lease freed; buckets
        of series not in ``keep_series`` or older than its cutoff deleted, samples likewise
        (``keep_samples``: name -> cutoff). False, and nothing written, otherwise."""
        ...

    async def release_alert_app(self, app_id: str, lease: str) -> None: ...


class Traces(Protocol):
    """The W3C trace context of the request that created each message, written only while
    tracing is on, and read by the worker only then (docs/decisions/0035-tracing.md): no
    statement of the create, the claim or the finish touches it. Deleted with the message
    (retention, the application's purge)."""

    async def save_trace_context(self, app_id: str, message_id: str, ctx: TraceContext) -> None:
        """Written before the message itself, which a worker may claim as soon as it commits;
        a second write for one id keeps the first."""
        ...

    async def delete_trace_context(self, message_id: str) -> None:
        """For a message that was not created after all."""
        ...

    async def trace_contexts(self, message_ids: Sequence[str]) -> dict[str, TraceContext]:
        """The contexts of those of these messages that have one."""


class Stats(Protocol):
    """Attempt statistics (domain.stats): hourly rollups filled from the attempts table by a
    background pass, and the raw reads that answer the hours not rolled up."""

    async def roll_up_next(self, now_ms: int) -> int | None:
        """Roll up the oldest hour not rolled up yet if it is closed at ``now_ms``
        (``domain.stats.closed_until``), in one transaction with the progress mark (hours
        without attempts are stepped over at once). The new mark; None when there was nothing
        to do, or another process's pass has the turn (PostgreSQL: an advisory lock)."""
        ...

    async def rolled_until(self) -> int:
        """Every hour before this is in the rollups (0: no pass has run)."""
        ...

    async def stats_rollups(self, scope: Scope, from_hour: int, to_hour: int) -> Marginals:
        """What the rollups of the scope's hours [from_hour, to_hour) add up to."""
        ...

    async def stats_cells(self, scope: Scope, since_ms: int, until_ms: int) -> list[Cell]:
        """The scope's attempts of [since, until) as ``domain.stats.cells_of`` reduces them."""
        ...

    async def stats_live(self, scope: Scope, since_ms: int, until_ms: int) -> tuple[int, int]:
        """(pending, sending): the scope's deliveries of messages created in [since, until)
        that are pending or sending now (read from the queue's indexes)."""
        ...

    async def stats_canceled(self, scope: Scope, since_ms: int, until_ms: int) -> list[Canceled]:
        """The scope's deliveries canceled in [since, until) (each cancel logs its time), as
        the rollup pass reduces them."""
        ...

    async def stats_types(
        self, scope: Scope, from_hour: int, to_hour: int
    ) -> list[tuple[str, int, int, int]]:
        """(event type, succeeded, failed, canceled) of the rollups of the scope's hours
        [from_hour, to_hour): Svix's app attempt stats."""
        ...

    async def reroll_next(self) -> tuple[str, int] | None:
        """Roll up again the oldest (application, hour) that a late attempt marked dirty
        (``domain.stats.late_hours``; a mark of an hour not rolled up yet just goes), in one
        transaction whose mark goes only if no other late write bumped it meanwhile. That
        (application, hour); None when none is marked, or another process's pass has the
        turn."""
        ...
