"""PostgreSQL's Traces: the trace context each message was created in, while tracing is on."""

from __future__ import annotations

from collections.abc import Sequence

from hookpost.domain.tracecontext import TraceContext
from hookpost.store.postgres.core import PostgresBase
from hookpost.store.postgres.errors import wrap_exceptions

TRACE_PUT = (
    "INSERT INTO message_traces (id, app_id, traceparent, tracestate) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (id) DO NOTHING"
)
TRACE_DELETE = "DELETE FROM message_traces WHERE id = $1"
TRACES_GET = "SELECT id, traceparent, tracestate FROM message_traces WHERE id = ANY($1::text[])"


class PostgresTraces(PostgresBase):
    @wrap_exceptions
    async def save_trace_context(self, app_id: str, message_id: str, ctx: TraceContext) -> None:
        await self._db.execute(TRACE_PUT, message_id, app_id, ctx.traceparent, ctx.tracestate)

    @wrap_exceptions
    async def delete_trace_context(self, message_id: str) -> None:
        await self._db.execute(TRACE_DELETE, message_id)

    @wrap_exceptions
    async def trace_contexts(self, message_ids: Sequence[str]) -> dict[str, TraceContext]:
        rows = await self._db.fetch(TRACES_GET, list(message_ids))
        return {r["id"]: TraceContext(r["traceparent"], r["tracestate"]) for r in rows}
