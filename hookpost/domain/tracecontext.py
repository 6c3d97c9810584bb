"""A W3C trace context (https://www.w3.org/TR/trace-context/) as stored with a message: the
``traceparent`` of the request that created it, and its ``tracestate`` if any.

Only written while tracing is on (docs/decisions/0035-tracing.md); an attempt's span links to
it. Kept as the header text: the store needs nothing more, and the SDK parses it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# version 00: 2 hex, trace id 32 hex (not all zero), span id 16 hex (not all zero), 2 hex flags
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
MAX_TRACESTATE = 512  # the spec lets a receiver drop a longer one


@dataclass(frozen=True, slots=True)
class TraceContext:
    traceparent: str
    tracestate: str | None = None


def traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def parse_traceparent(text: str) -> tuple[int, int, bool] | None:
    """(trace id, span id, sampled) of a version-00 ``traceparent``; None if it is not one."""
    found = _TRACEPARENT.fullmatch(text)
    if found is None:
        return None
    trace_id, span_id = int(found[1], 16), int(found[2], 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, bool(int(found[3], 16) & 1)
