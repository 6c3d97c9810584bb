"""The endpoint's tracing extension field (docs/decisions/0035-tracing.md), kept apart from
``schemas`` so that module does not grow."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

SendTraceparent = Annotated[
    StrictBool | None,
    Field(
        description=(
            "hookpost extension: with OpenTelemetry tracing on (`OTEL_*` variables), send "
            "each attempt's W3C `traceparent` header to this endpoint (true) or not (false); "
            "null: as `HOOKPOST_SEND_TRACEPARENT` says (default off). Absent on a PUT: "
            "unchanged. Not covered by the signature."
        )
    ),
]
