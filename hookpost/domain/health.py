"""Endpoint health: the failure streak, and when it disables the endpoint.

Per attempt result, in order: a success resets the streak of an endpoint that has one; a
failure extends it (``first_failure_at`` keeps the streak's first attempt time) and disables
the endpoint when the result asks for it (HTTP 410 Gone) or the streak began
``disable_after_ms`` or more before now. Disabling makes ``updated_at`` strictly later than the
endpoint's last write, which endpoint updates compare against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from hookpost.domain.models import AttemptResult, AttemptStatus

FAILING_TOO_LONG = "failing for too long"


@dataclass(frozen=True, slots=True)
class Health:
    consecutive_failures: int
    first_failure_at: int | None
    disabled: bool
    disabled_reason: str | None
    updated_at: int


def replay(
    states: Mapping[str, Health],
    results: Iterable[AttemptResult],
    now_ms: int,
    disable_after_ms: int,
) -> tuple[dict[str, Health], list[tuple[str, str, str]]]:
    """(the endpoints whose health changed -> new health, newly disabled endpoints in order,
    as (app id, endpoint id, reason)).

    Results of endpoints missing from ``states`` change nothing: they are successes of
    endpoints without failures on record, or of endpoints deleted meanwhile.
    """
    current = dict(states)
    disabled: list[tuple[str, str, str]] = []
    threshold = now_ms - disable_after_ms
    for r in results:
        ep_id = r.attempt.endpoint_id
        h = current.get(ep_id)
        if h is None:
            continue
        if r.attempt.status == AttemptStatus.SUCCESS:
            if h.consecutive_failures > 0:
                current[ep_id] = replace(h, consecutive_failures=0, first_failure_at=None)
            continue
        first = h.first_failure_at if h.first_failure_at is not None else r.attempt.created_at
        h = replace(h, consecutive_failures=h.consecutive_failures + 1, first_failure_at=first)
        reason = r.disable_endpoint_reason
        if not h.disabled and (reason is not None or first <= threshold):
            why = reason or FAILING_TOO_LONG
            updated = max(now_ms, h.updated_at + 1)
            h = replace(h, disabled=True, disabled_reason=why, updated_at=updated)
            disabled.append((r.attempt.app_id, ep_id, why))
        current[ep_id] = h
    changed = {ep_id: h for ep_id, h in current.items() if h != states[ep_id]}
    return changed, disabled
