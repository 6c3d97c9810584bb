"""Endpoint health: the failure streak, when it disables the endpoint, and the state shown.

Per attempt result, in order: a failure extends the streak (``first_failure_at`` keeps the
streak's first attempt time, ``last_failure_at`` and ``last_status_code`` record it) and
disables the endpoint when the result asks for it (HTTP 410 Gone), when the streak began
``disable_after_ms`` or more before now, or when it reaches ``disable_after_failures`` failed
attempts (0: that rule is off). Disabling makes ``updated_at`` strictly later than the
endpoint's last write, which endpoint updates compare against.

A run of successes (those of one endpoint with no failure of it in between) counts as its last
success: it ends the streak, and records its time and status code unless the record already
says the same (no streak, the same status code, a success less than ``SUCCESS_REFRESH_MS``
older). So ``last_status_code`` is always the last attempt's, ``last_success_at`` is at most
``SUCCESS_REFRESH_MS`` behind, and a steadily healthy endpoint's row is written at most once a
second whatever its rate (docs/decisions/0028-endpoint-health.md). The stores apply this rule
in SQL to endpoints with only successes in a batch; tests/contract/test_endpoint_health.py
holds them to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from hookpost.domain.disabled import (
    CONSECUTIVE_FAILURES,
    DISABLED_REASONS,
    FAILING_TOO_LONG,
    MANUAL,
)
from hookpost.domain.models import Attempt, AttemptResult, AttemptStatus, Endpoint

SUCCESS_REFRESH_MS = 1000
# A failing endpoint that succeeded this recently is degraded, not failing.
DEGRADED_WINDOW_MS = 3_600_000


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Health:
    consecutive_failures: int
    first_failure_at: int | None
    disabled: bool
    disabled_reason: str | None
    updated_at: int
    last_success_at: int | None = None
    last_failure_at: int | None = None
    last_status_code: int | None = None


def health_of(ep: Endpoint) -> Health:
    return Health(
        ep.consecutive_failures,
        ep.first_failure_at,
        ep.disabled,
        ep.disabled_reason,
        ep.updated_at,
        ep.last_success_at,
        ep.last_failure_at,
        ep.last_status_code,
    )


def state(h: Health, now_ms: int) -> HealthState:
    """disabled; healthy: the last attempt succeeded (or none was made since the endpoint was
    created or re-enabled); degraded: the last attempt failed but one succeeded less than
    ``DEGRADED_WINDOW_MS`` ago; failing: the last attempt failed and none succeeded lately."""
    if h.disabled:
        return HealthState.DISABLED
    if h.consecutive_failures == 0:
        return HealthState.HEALTHY
    if h.last_success_at is not None and now_ms - h.last_success_at < DEGRADED_WINDOW_MS:
        return HealthState.DEGRADED
    return HealthState.FAILING


def disabled_reason(h: Health) -> str | None:
    """The reason shown: None unless disabled; an endpoint disabled without a recorded
    reason (created disabled) was disabled by hand."""
    if not h.disabled:
        return None
    return h.disabled_reason if h.disabled_reason in DISABLED_REASONS else MANUAL


def succeeded(h: Health, at: int, status_code: int | None) -> Health:
    """``h`` after a run of successes whose last was attempted at ``at``."""
    if (
        h.consecutive_failures == 0
        and h.last_success_at is not None
        and at - h.last_success_at < SUCCESS_REFRESH_MS
        and h.last_status_code == status_code
    ):
        return h
    return replace(
        h,
        consecutive_failures=0,
        first_failure_at=None,
        last_success_at=at,
        last_status_code=status_code,
    )


def last_successes(results: Iterable[AttemptResult]) -> dict[str, Attempt]:
    """Each endpoint's last successful attempt among ``results`` (for the stores' SQL, used
    only for endpoints without a failure among them)."""
    return {
        r.attempt.endpoint_id: r.attempt
        for r in results
        if r.attempt.status == AttemptStatus.SUCCESS
    }


def replay(
    states: Mapping[str, Health],
    results: Iterable[AttemptResult],
    now_ms: int,
    disable_after_ms: int,
    disable_after_failures: int = 0,
) -> tuple[dict[str, Health], list[tuple[str, str, str]]]:
    """(the endpoints whose health changed -> new health, newly disabled endpoints in order,
    as (app id, endpoint id, reason)).

    Results of endpoints missing from ``states`` change nothing (endpoints deleted meanwhile,
    or whose successes the store records in SQL).
    """
    current = dict(states)
    disabled: list[tuple[str, str, str]] = []
    threshold = now_ms - disable_after_ms
    run: dict[str, Attempt] = {}  # per endpoint, the last success since its last failure
    for r in results:
        ep_id = r.attempt.endpoint_id
        h = current.get(ep_id)
        if h is None:
            continue
        if r.attempt.status == AttemptStatus.SUCCESS:
            run[ep_id] = r.attempt
            continue
        if ep_id in run:
            ok = run.pop(ep_id)
            h = succeeded(h, ok.created_at, ok.response_status_code)
        first = h.first_failure_at if h.first_failure_at is not None else r.attempt.created_at
        h = replace(
            h,
            consecutive_failures=h.consecutive_failures + 1,
            first_failure_at=first,
            last_failure_at=r.attempt.created_at,
            last_status_code=r.attempt.response_status_code,
        )
        why = r.disable_endpoint_reason
        if why is None and first <= threshold:
            why = FAILING_TOO_LONG
        if why is None and 0 < disable_after_failures <= h.consecutive_failures:
            why = CONSECUTIVE_FAILURES
        if not h.disabled and why is not None:
            updated = max(now_ms, h.updated_at + 1)
            h = replace(h, disabled=True, disabled_reason=why, updated_at=updated)
            disabled.append((r.attempt.app_id, ep_id, why))
        current[ep_id] = h
    for ep_id, ok in run.items():
        current[ep_id] = succeeded(current[ep_id], ok.created_at, ok.response_status_code)
    changed = {ep_id: h for ep_id, h in current.items() if h != states[ep_id]}
    return changed, disabled
