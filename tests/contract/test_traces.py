"""The ``Traces`` role (docs/decisions/0035-tracing.md), once per backend: a message's trace
context is read back by id, a second write keeps the first, and it goes when its message goes
(retention's horizon, the application's deletion)."""

from __future__ import annotations

from hookpost.domain.tracecontext import TraceContext
from hookpost.store.base import Store

from .support import DAY, SUCCEEDED, T0, app_with_endpoint, claim, finish, new_app, outcome, send

A = TraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "k=v")
B = TraceContext("00-11111111111111111111111111111111-2222222222222222-01")


async def test_contexts_are_read_back_by_message_id(store: Store) -> None:
    app = await new_app(store)
    await store.save_trace_context(app.id, "msg_a", A)
    await store.save_trace_context(app.id, "msg_b", B)
    await store.save_trace_context(app.id, "msg_a", B)  # the first write stays
    got = await store.trace_contexts(["msg_a", "msg_b", "msg_none"])
    assert got == {"msg_a": A, "msg_b": B}
    assert await store.trace_contexts([]) == {}
    await store.delete_trace_context("msg_a")
    assert await store.trace_contexts(["msg_a", "msg_b"]) == {"msg_b": B}


async def test_a_context_is_deleted_with_its_message(store: Store) -> None:
    app, _ = await app_with_endpoint(store)
    old = await send(store, app.id, now=T0)
    kept = await send(store, app.id, now=T0 + 10 * DAY)
    await store.save_trace_context(app.id, old.id, A)
    await store.save_trace_context(app.id, kept.id, B)
    for c in await claim(store, T0 + 10 * DAY):
        await finish(store, outcome(c, SUCCEEDED, at=T0 + 10 * DAY), now=T0 + 10 * DAY)
    counts, _ = await store.delete_old_messages(T0 + 5 * DAY, 100)
    assert counts.messages == 1
    assert await store.trace_contexts([old.id, kept.id]) == {kept.id: B}

    await store.delete_app(app.id)
    assert await store.trace_contexts([kept.id]) == {}
