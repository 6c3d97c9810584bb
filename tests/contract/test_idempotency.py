"""The Idempotency port: what idempotency keys hold (an answer, or a send's message).

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

import asyncio

from hookpost.domain.models import PageRequest
from hookpost.domain.queries import IdempotencyKey, MessageFilter, SentMessage, StoredAnswer
from hookpost.store.base import Store

from .support import T0, app_with_endpoint, mk_message


class TestIdempotency:
    async def test_idempotency_keys(self, store: Store) -> None:
        assert await store.get_idempotent("app_1", "key-1", T0) is None
        stored = await store.put_idempotent("app_1", "key-1", 201, b'{"id":"msg_1"}', T0 + 1000, T0)
        assert stored is None
        first = StoredAnswer(201, b'{"id":"msg_1"}')
        assert await store.get_idempotent("app_1", "key-1", T0) == first
        assert await store.get_idempotent("app_1", "key-1", T0 + 999) == first
        assert await store.get_idempotent("app_1", "key-1", T0 + 1001) is None  # expired
        assert await store.get_idempotent("app_2", "key-1", T0) is None  # scoped
        assert await store.get_idempotent("app_1", "key-2", T0) is None
        # put again before expiry: the first answer wins, and comes back
        second = await store.put_idempotent("app_1", "key-1", 422, b"later", T0 + 3000, T0 + 10)
        assert second == first
        assert await store.get_idempotent("app_1", "key-1", T0 + 20) == first
        # put again after expiry: replaced
        again = await store.put_idempotent(
            "app_1", "key-1", 409, b"\x00\xffraw", T0 + 5000, T0 + 1000
        )
        assert again is None
        assert await store.get_idempotent("app_1", "key-1", T0 + 2000) == StoredAnswer(
            409, b"\x00\xffraw"
        )

    async def test_expired_keys_are_purged_in_batches(self, store: Store) -> None:
        for i in range(5):
            await store.put_idempotent("tok", f"old-{i}", 200, b"{}", T0 + i, T0 - 1)
        await store.put_idempotent("tok", "live", 200, b"{}", T0 + 1000, T0 - 1)
        assert await store.purge_expired_keys(T0 + 4, 3) == 3
        assert await store.purge_expired_keys(T0 + 4, 3) == 2
        assert await store.purge_expired_keys(T0 + 4, 3) == 0
        assert await store.get_idempotent("tok", "live", T0) == StoredAnswer(200, b"{}")

    async def test_an_apps_stored_answers_go_with_it(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        other, _ = await app_with_endpoint(store)
        for i in range(3):
            await store.put_idempotent("tok", f"a-{i}", 201, b"{}", T0 + 1000, T0, app.id)
        await store.put_idempotent("tok", "o", 201, b"{}", T0 + 1000, T0, other.id)
        await store.delete_app(app.id)
        assert all([await store.get_idempotent("tok", f"a-{i}", T0) is None for i in range(3)])
        assert await store.get_idempotent("tok", "o", T0) == StoredAnswer(201, b"{}")

    async def test_a_created_message_records_its_idempotency_key(self, store: Store) -> None:
        app, _ = await app_with_endpoint(store)
        first = IdempotencyKey("tok_1", "POST /msg k1", T0 + 1000)
        created = await store.create_message(mk_message(app.id, event_id="e1"), T0, None, first)
        assert created.created and created.deliveries == 1
        sent = SentMessage(created.message.id)
        assert await store.get_idempotent("tok_1", "POST /msg k1", T0) == sent
        assert await store.get_idempotent("tok_1", "POST /msg k1", T0 + 1001) is None  # expires
        # Not created (its eventId is taken): the key is not recorded; the caller answers 409.
        second = IdempotencyKey("tok_1", "POST /msg k2", T0 + 1000)
        again = await store.create_message(mk_message(app.id, event_id="e1"), T0, None, second)
        assert not again.created
        assert await store.get_idempotent("tok_1", "POST /msg k2", T0) is None
        # A key holding a send's message wins over a later answer, as any answer does.
        later = await store.put_idempotent("tok_1", "POST /msg k1", 422, b"no", T0 + 2000, T0)
        assert later == sent
        # Concurrent creates, each with its own key (one group or batch on the backends
        # that make them together).
        keys = [IdempotencyKey("tok_1", f"POST /msg c{i}", T0 + 1000) for i in range(20)]
        made = await asyncio.gather(
            *(store.create_message(mk_message(app.id), T0, None, k) for k in keys)
        )
        assert all(m.created for m in made)
        for k, m in zip(keys, made, strict=True):
            assert await store.get_idempotent(k.scope, k.key, T0) == SentMessage(m.message.id)

    async def test_an_answered_key_is_replayed_and_nothing_created(self, store: Store) -> None:
        """A key answered before (by a message or by put_idempotent, say a 422) wins over the
        message given with it: nothing is created, what the key holds comes back. An expired
        key does not count."""
        app, _ = await app_with_endpoint(store)
        first = IdempotencyKey("tok_1", "POST /msg k1", T0 + 1000)
        made = await store.create_message(mk_message(app.id), T0, None, first)
        assert made.created and made.replayed is None
        repeat = IdempotencyKey("tok_1", "POST /msg k1", T0 + 2000)
        again = await store.create_message(mk_message(app.id, event_id="e9"), T0 + 1, None, repeat)
        assert not again.created and again.deliveries == 0
        assert again.replayed == SentMessage(made.message.id)
        await store.put_idempotent("tok_1", "POST /msg k2", 422, b"invalid", T0 + 1000, T0)
        keys = [
            IdempotencyKey("tok_1", "POST /msg k2", T0 + 1000),
            *(IdempotencyKey("tok_1", f"POST /msg f{i}", T0 + 1000) for i in range(5)),
        ]
        results = await asyncio.gather(
            *(store.create_message(mk_message(app.id), T0 + 1, None, k) for k in keys)
        )  # one group or batch on the backends that make them together
        assert results[0].replayed == StoredAnswer(422, b"invalid") and not results[0].created
        assert all(r.created and r.replayed is None for r in results[1:])
        page = await store.list_messages(app.id, PageRequest(limit=50), MessageFilter())
        assert {m.id for m in page.items} == {made.message.id} | {
            r.message.id for r in results[1:]
        }  # neither repeat was stored, and their eventIds are free
        expired = await store.create_message(mk_message(app.id), T0 + 1000, None, repeat)
        assert expired.created and expired.replayed is None
        assert await store.get_idempotent(repeat.scope, repeat.key, T0 + 1000) == SentMessage(
            expired.message.id
        )
