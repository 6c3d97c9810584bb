"""A message's payload_sha256 is stored and read back by every way a backend creates a message
(PostgreSQL: the batch statement, the one-message statement, explicit endpoints, the
Python-matching transaction) and survives an expunge. Run once per backend (``store``)."""

from __future__ import annotations

import asyncio

from hookpost.domain.models import PageRequest
from hookpost.domain.provenance import payload_sha256
from hookpost.domain.queries import MessageFilter
from hookpost.store.base import Store

from .support import T0, mk_message, new_app, new_endpoint


def _hashed(app_id: str, n: int, **kw: object):  # type: ignore[no-untyped-def]
    payload = b'{"n":%d,"s":"\xc3\xa9"}' % n
    return mk_message(
        app_id, at=T0 + n, payload=payload, payload_sha256=payload_sha256(payload), **kw
    )


async def _read_back(store: Store, app_id: str, msg_id: str) -> str | None:
    return (await store.get_message(app_id, msg_id)).payload_sha256


async def test_every_create_path_stores_the_hash(store: Store) -> None:
    plain = await new_app(store)
    await new_endpoint(store, plain.id)
    # Concurrent creates: PostgreSQL batches them into one statement.
    batch = [_hashed(plain.id, i) for i in range(20)]
    created = await asyncio.gather(*(store.create_message(m, T0) for m in batch))
    assert all(c.created for c in created)

    # A filter PostgreSQL leaves to Python: the create takes the two-statement transaction.
    odd = await new_app(store)
    await new_endpoint(store, odd.id, channels=['q"uote'])
    fallback = _hashed(odd.id, 100, channels=['q"uote'])
    assert (await store.create_message(fallback, T0)).created

    # A NUL in a channel (Python matching too), and explicit endpoints (a test event).
    nul = _hashed(plain.id, 101, channels=["nul\x00"])
    assert (await store.create_message(nul, T0)).created
    ep = await new_endpoint(store, plain.id)
    example = _hashed(plain.id, 102)
    assert (await store.create_message(example, T0, [ep.id])).deliveries == 1

    for m in [*batch, fallback, nul, example]:
        assert m.payload_sha256 is not None
        assert await _read_back(store, m.app_id, m.id) == m.payload_sha256


async def test_the_hash_is_kept_after_expunge_and_in_lists(store: Store) -> None:
    app = await new_app(store)
    ep = await new_endpoint(store, app.id)
    m = _hashed(app.id, 1)
    assert (await store.create_message(m, T0)).created
    await store.expunge_message(app.id, m.id)
    got = await store.get_message(app.id, m.id)
    assert got.expunged and got.payload == b"{}" and got.payload_sha256 == m.payload_sha256

    for with_content in (True, False):
        page = await store.list_messages(
            app.id, PageRequest(), MessageFilter(), with_content=with_content
        )
        assert [x.payload_sha256 for x in page.items] == [m.payload_sha256]
        deliveries = await store.list_deliveries_for_endpoint(
            app.id, ep.id, PageRequest(), None, with_content=with_content
        )
        assert [x.payload_sha256 for _, x in deliveries.items] == [m.payload_sha256]


async def test_a_message_without_a_hash_reads_null(store: Store) -> None:
    app = await new_app(store)
    m = mk_message(app.id)  # as rows written before migration 0009
    assert (await store.create_message(m, T0)).created
    assert await _read_back(store, app.id, m.id) is None
