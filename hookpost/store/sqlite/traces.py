"""SQLite's Traces: the trace context each message was created in, while tracing is on."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from hookpost.domain.tracecontext import TraceContext
from hookpost.store.sqlite.core import Conn, SqliteBase

TRACE_PUT = (
    "INSERT INTO message_traces (id, app_id, traceparent, tracestate) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)
TRACE_DELETE = "DELETE FROM message_traces WHERE id = ?"
TRACES_GET = (
    "SELECT id, traceparent, tracestate FROM message_traces"
    " WHERE id IN (SELECT value FROM json_each(?))"
)


class SqliteTraces(SqliteBase):
    async def save_trace_context(self, app_id: str, message_id: str, ctx: TraceContext) -> None:
        args = (message_id, app_id, ctx.traceparent, ctx.tracestate)
        await self._db.write(lambda c: c.execute(TRACE_PUT, args))

    async def delete_trace_context(self, message_id: str) -> None:
        await self._db.write(lambda c: c.execute(TRACE_DELETE, (message_id,)))

    async def trace_contexts(self, message_ids: Sequence[str]) -> dict[str, TraceContext]:
        wanted = orjson.dumps(list(message_ids)).decode()

        def run(c: Conn) -> dict[str, TraceContext]:
            return {r[0]: TraceContext(r[1], r[2]) for r in c.execute(TRACES_GET, (wanted,))}

        return await self._db.read(run)
