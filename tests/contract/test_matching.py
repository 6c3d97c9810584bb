"""Who receives a message: event type patterns and payload filters, on every backend.

A matching table: endpoints with wildcards, and with each payload filter operator under its
type rules and missing fields, receive exactly what the domain's rules say
(``domain.matching.filters_match``, ``domain.filters``), whichever path the store takes
(PostgreSQL matches patterns in SQL and payload filters in Python; SQLite in Python)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import orjson

from hookpost.domain.filters import Payload, stored_filter
from hookpost.domain.matching import filters_match
from hookpost.domain.models import Endpoint, PageRequest
from hookpost.domain.queries import CreatedMessage
from hookpost.store.base import Store

from .support import T0, mk_message, new_app, new_endpoint

# Event type filters with patterns, and what each must match among EVENTS.
_PATTERNS: list[list[str] | None] = [
    None,
    ["*"],
    ["invoice.*"],
    ["invoice.paid.*"],
    ["invoice.paid", "user.*"],
    ["user.created", "*"],
    ["a_b.*"],  # `_` and `%` are no wildcards here (a LIKE would take them for some)
    ["100%.*"],
    ["Zoë.*"],
    ["inv*"],  # not a pattern (the API refuses it): an exact name that nothing is called
    ["invoice"],
]
_EVENTS = [
    "invoice.paid",
    "invoice.paid.late",
    "invoice",
    "invoices.paid",
    "user.created",
    "aXb.c",
    "a_b.c",
    "1000.x",
    "100%.x",
    "Zoë.🎉",
    "Zoe\u0308.🎉",
    "inv",
]
# The same as explicit answers (event type -> indexes of _PATTERNS that match it).
_EXPECTED_PATTERN_MATCHES = {
    "invoice.paid": {0, 1, 2, 4, 5},
    "invoice.paid.late": {0, 1, 2, 3, 5},
    "invoice": {0, 1, 5, 10},
    "invoices.paid": {0, 1, 5},
    "user.created": {0, 1, 4, 5},
    "aXb.c": {0, 1, 5},
    "a_b.c": {0, 1, 5, 6},
    "1000.x": {0, 1, 5},
    "100%.x": {0, 1, 5, 7},
    "Zoë.🎉": {0, 1, 5, 8},
    "Zoe\u0308.🎉": {0, 1, 5},
    "inv": {0, 1, 5},
}
_CHANNELS: list[list[str] | None] = [None, ["eu"]]

# Payload filters: each operator, with its type rules and missing fields.
_FILTERS: list[dict[str, Any] | None] = [
    None,
    {"amount": 1000},
    {"amount": {"$eq": 1000}},
    {"amount": {"$neq": 1000}},
    {"amount": {"$gt": 999}},
    {"amount": {"$gte": 1000}},
    {"amount": {"$lt": 1000}},
    {"amount": {"$lte": 1000}},
    {"currency": {"$gt": "EUR"}},
    {"currency": {"$in": ["EUR", "USD"]}},
    {"currency": {"$nin": ["EUR", "USD"]}},
    {"note": {"$contains": "rush"}},
    {"tags": {"$contains": "vip"}},
    {"tags": {"$contains": 1}},
    {"flagged": {"$exists": True}},
    {"flagged": {"$exists": False}},
    {"flagged": True},
    {"customer.tier": "gold"},
    {"customer": {"tier": "gold"}},
    {"$or": [{"customer.tier": "gold"}, {"flagged": True}]},
    {"$and": [{"amount": {"$gte": 10}}, {"amount": {"$lt": 2000}}]},
    {"$not": {"currency": "EUR"}},
    {
        "amount": {"$gte": 1000},
        "currency": {"$in": ["EUR", "USD"]},
        "$or": [{"customer.tier": "gold"}, {"flagged": True}],
    },
]
_PAYLOADS: list[dict[str, Any]] = [
    {"amount": 1000, "currency": "EUR", "customer": {"tier": "gold"}},
    {"amount": 1000.0, "currency": "USD", "flagged": True, "tags": ["vip", 1.0]},
    {"amount": "1000", "currency": "GBP", "note": "rush order", "flagged": 1},
    {"amount": True, "currency": "eur", "tags": [True, "VIP"], "note": 7},
    {"amount": 20, "customer": "gold", "flagged": None},
    {},
]
# Explicit answers for a few rows (payload index -> filter indexes that match it).
_EXPECTED_FILTER_MATCHES = {
    2: {0, 3, 8, 10, 11, 14, 21},
    4: {0, 3, 6, 7, 14, 20, 21},  # 20 < 1000, null exists, `customer` is no object
    5: {0, 3, 15, 21},  # nothing present: $neq, $exists: false and $not
}


def _expected(ep: Endpoint, event_type: str, channels: list[str] | None, payload: bytes) -> bool:
    return filters_match(
        ep.event_types,
        ep.channels,
        event_type,
        channels,
        stored_filter(ep.payload_filter),
        Payload(payload),
    )


async def _receivers(store: Store, app_id: str, msg_id: str) -> set[str]:
    page = await store.list_deliveries_for_message(app_id, msg_id, PageRequest(limit=250))
    return {ep.id for _, ep in page.items}


class TestMatching:
    async def test_event_type_patterns(self, store: Store) -> None:
        app = await new_app(store)
        endpoints = {
            (i, j): await new_endpoint(store, app.id, event_types=types, channels=chans)
            for i, types in enumerate(_PATTERNS)
            for j, chans in enumerate(_CHANNELS)
        }
        for event_type in _EVENTS:
            for channels in (None, ["eu", "us"]):
                msg = mk_message(app.id, event_type=event_type, channels=channels)
                created = await store.create_message(msg, T0)
                got = await _receivers(store, app.id, msg.id)
                want = {
                    ep.id for ep in endpoints.values() if _expected(ep, event_type, channels, b"{}")
                }
                assert got == want, (event_type, channels)
                assert created.deliveries == len(want)
                explicit = {
                    endpoints[(i, j)].id
                    for i in _EXPECTED_PATTERN_MATCHES[event_type]
                    for j in range(len(_CHANNELS))
                    if j == 0 or channels
                }
                assert got == explicit, (event_type, channels)

    async def test_payload_filters(self, store: Store) -> None:
        app = await new_app(store)
        endpoints = [await new_endpoint(store, app.id, payload_filter=f) for f in _FILTERS]
        # combined with a pattern and a channel: all three must match
        combined = await new_endpoint(
            store,
            app.id,
            event_types=["invoice.*"],
            channels=["eu"],
            payload_filter={"amount": {"$gte": 1000}},
        )
        stored = await store.get_endpoint(app.id, endpoints[-1].id)
        assert stored.payload_filter == _FILTERS[-1]
        for p, payload in enumerate(_PAYLOADS):
            body = orjson.dumps(payload)
            msg = mk_message(app.id, payload=body, channels=["eu"])
            created = await store.create_message(msg, T0)
            got = await _receivers(store, app.id, msg.id)
            want = {ep.id for ep in endpoints if _expected(ep, msg.event_type, ["eu"], body)}
            assert got - {combined.id} == want, payload
            assert (combined.id in got) == (p in (0, 1)), payload
            assert created.deliveries == len(got)
            if p in _EXPECTED_FILTER_MATCHES:
                assert got == {endpoints[i].id for i in _EXPECTED_FILTER_MATCHES[p]}, payload
        # the pattern and the channel still apply to a filtered endpoint
        for event_type, channels in (("user.created", ["eu"]), ("invoice.paid", ["us"])):
            msg = mk_message(
                app.id, event_type=event_type, channels=channels, payload=orjson.dumps(_PAYLOADS[0])
            )
            await store.create_message(msg, T0)
            assert combined.id not in await _receivers(store, app.id, msg.id)

    async def test_concurrent_creates_with_filters(self, store: Store) -> None:
        """Creates issued together (PostgreSQL batches them into one statement, and an app
        with payload filters takes the Python path) each get their own endpoints."""
        filtered = await new_app(store)
        f_eps = [await new_endpoint(store, filtered.id, payload_filter=f) for f in _FILTERS]
        patterned = await new_app(store)
        p_eps = [await new_endpoint(store, patterned.id, event_types=t) for t in _PATTERNS]
        batch = [
            mk_message(filtered.id, payload=orjson.dumps(payload), event_id=f"evt-{i}")
            for i, payload in enumerate(_PAYLOADS)
        ] + [mk_message(patterned.id, event_type=t) for t in _EVENTS]
        results = await asyncio.gather(*(store.create_message(m, T0) for m in batch))
        for msg, result in zip(batch, results, strict=True):
            assert isinstance(result, CreatedMessage) and result.created
            eps = f_eps if msg.app_id == filtered.id else p_eps
            want = {ep.id for ep in eps if _expected(ep, msg.event_type, None, msg.payload)}
            assert await _receivers(store, msg.app_id, msg.id) == want, msg
            assert result.deliveries == len(want)
        again = await store.create_message(
            mk_message(filtered.id, payload=b'{"amount":1000}', event_id="evt-0"), T0
        )
        assert (again.created, again.deliveries, again.message) == (False, 0, batch[0])

    async def test_explicit_endpoints_ignore_payload_filters(self, store: Store) -> None:
        """A test event (``endpoint_ids``) goes to the endpoints named, whatever their filters."""
        app = await new_app(store)
        picky = await new_endpoint(store, app.id, payload_filter={"never": {"$exists": True}})
        created = await store.create_message(mk_message(app.id), T0, [picky.id])
        assert created.deliveries == 1

    async def test_payload_filter_changes_apply_to_the_next_message(self, store: Store) -> None:
        app = await new_app(store)
        ep = await new_endpoint(store, app.id, payload_filter={"amount": {"$gt": 100}})
        first = mk_message(app.id, payload=b'{"amount": 42}')
        assert (await store.create_message(first, T0)).deliveries == 0
        await store.update_endpoint(
            _replaced(ep, payload_filter={"amount": {"$lt": 100}}), ep.updated_at
        )
        second = mk_message(app.id, payload=b'{"amount": 42}')
        assert (await store.create_message(second, T0)).deliveries == 1
        got = await store.get_endpoint(app.id, ep.id)
        await store.update_endpoint(_replaced(got, payload_filter=None), got.updated_at)
        assert (await store.get_endpoint(app.id, ep.id)).payload_filter is None
        third = mk_message(app.id, payload=b'{"amount": 420}')
        assert (await store.create_message(third, T0)).deliveries == 1


def _replaced(ep: Endpoint, **changes: Any) -> Endpoint:
    return replace(ep, updated_at=ep.updated_at + 1, **changes)
