"""The strict catalog through the services (the library's surface): HOOKPOST_STRICT_EVENT_TYPES,
payload schemas, the catalog cache (no database read per message), subscription patterns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from hookpost.domain.errors import InvalidInput, SecretNotShown
from hookpost.domain.inputs import EndpointChanges, EventTypeChanges, NewEndpoint, NewEventType
from hookpost.domain.models import EventType
from hookpost.services.catalog import CatalogCache
from hookpost.wiring import Hookpost

SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "integer"}},
    "required": ["amount"],
}


@pytest.fixture
async def hp(fresh_sqlite_url: str) -> AsyncIterator[Hookpost]:
    async with Hookpost.open(fresh_sqlite_url, strict_event_types=True) as hp:
        yield hp


class CountingReads:
    """Counts the catalog reads the services make through the store."""

    def __init__(self, hp: Hookpost) -> None:
        self.gets = 0
        self.lists = 0
        store: Any = hp.store
        get, listing = store.get_event_type, store.list_event_types

        async def counted_get(name: str) -> EventType:
            self.gets += 1
            return await get(name)

        async def counted_list(*args: Any) -> Any:
            self.lists += 1
            return await listing(*args)

        store.get_event_type = counted_get
        store.list_event_types = counted_list


async def test_library_send_is_checked_against_the_catalog(hp: Hookpost) -> None:
    app = await hp.apps.create("Acme")
    with pytest.raises(InvalidInput) as caught:
        await hp.messages.send(app.id, "invoice.paid", {"amount": 1})
    assert caught.value.field == "eventType" and "'invoice.paid'" in caught.value.message

    await hp.event_types.create(NewEventType("invoice.paid", "paid", schemas={"1": SCHEMA}))
    sent = await hp.messages.send(app.id, "invoice.paid", {"amount": 1})
    assert sent.created

    with pytest.raises(InvalidInput) as caught:
        await hp.messages.send(app.id, "invoice.paid", {"amount": "1"})
    assert (caught.value.field, caught.value.path) == ("payload", ("amount",))

    await hp.event_types.delete("invoice.paid")  # archived
    with pytest.raises(InvalidInput) as caught:
        await hp.messages.send(app.id, "invoice.paid", {"amount": 1})
    assert "archived" in caught.value.message


async def test_messages_read_the_catalog_once_per_type_not_per_message(hp: Hookpost) -> None:
    app = await hp.apps.create("Acme")
    await hp.event_types.create(NewEventType("a.b", "ab", schemas={"1": SCHEMA}))
    reads = CountingReads(hp)
    for i in range(50):
        await hp.messages.send(app.id, "a.b", {"amount": i})
    assert reads.gets == 1

    # A write in this process is seen at once: the cache is dropped.
    await hp.event_types.patch("a.b", EventTypeChanges(archived=True))
    with pytest.raises(InvalidInput):
        await hp.messages.send(app.id, "a.b", {"amount": 1})
    await hp.event_types.patch("a.b", EventTypeChanges(archived=False, schemas=None))
    await hp.messages.send(app.id, "a.b", {"amount": "now anything"})


async def test_without_strict_mode_the_create_path_reads_no_catalog(fresh_sqlite_url: str) -> None:
    async with Hookpost.open(fresh_sqlite_url) as hp:
        app = await hp.apps.create("Acme")
        reads = CountingReads(hp)
        for i in range(5):
            await hp.messages.send(app.id, "never.declared", {"i": i})
        assert (reads.gets, reads.lists) == (0, 0)


async def test_another_process_write_is_seen_within_the_ttl(hp: Hookpost) -> None:
    now = [100.0]
    cache = CatalogCache(hp.store, ttl_s=2.0, clock=lambda: now[0])
    await hp.event_types.create(NewEventType("x.y", "xy"))
    await cache.check_message("x.y", {})
    # Written by "another process": straight to the store, this cache is not told.
    current = await hp.store.get_event_type("x.y")
    current.archived = True
    current.updated_at += 1
    await hp.store.update_event_type(current)
    now[0] += 1.9
    await cache.check_message("x.y", {})  # still the cached (live) entry
    now[0] += 0.2
    with pytest.raises(InvalidInput):
        await cache.check_message("x.y", {})


async def test_validators_are_compiled_once_per_event_type_version(
    hp: Hookpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hookpost.services.catalog as catalog_module

    compiled: list[object] = []
    real = catalog_module.compile_schemas

    def counting(schemas: Any) -> Any:
        compiled.append(schemas)
        return real(schemas)

    monkeypatch.setattr(catalog_module, "compile_schemas", counting)
    now = [0.0]
    cache = CatalogCache(hp.store, ttl_s=2.0, clock=lambda: now[0])
    await hp.event_types.create(NewEventType("v.s", "vs", schemas={"1": SCHEMA}))
    for i in range(20):
        await cache.check_message("v.s", {"amount": i})
        now[0] += 0.5  # entries expire and are read again: the unchanged type keeps them
    assert len(compiled) == 1
    current = await hp.store.get_event_type("v.s")
    current.schemas = {"1": {"type": "object"}}
    current.updated_at += 1
    await hp.store.update_event_type(current)
    now[0] += 3
    await cache.check_message("v.s", {"amount": "any"})
    assert len(compiled) == 2


async def test_subscriptions_exact_names_and_patterns(hp: Hookpost) -> None:
    app = await hp.apps.create("Acme")
    for name in ("invoice.paid", "invoice.voided", "user.created"):
        await hp.event_types.create(NewEventType(name, name))
    await hp.event_types.create(NewEventType("legacy.x", "old", archived=True))

    ok = await hp.endpoints.create(
        app.id,
        NewEndpoint(url="https://example.com/a", event_types=["invoice.*", "user.created"]),
    )
    assert ok.event_types == ["invoice.*", "user.created"]
    await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/b", event_types=["*"]))

    for bad, index in (
        (["invoice.paid", "nope.x"], 1),
        (["legacy.x"], 0),
        (["user.created", "legacy.*"], 1),
        (["order.*"], 0),
    ):
        with pytest.raises(InvalidInput) as caught:
            await hp.endpoints.create(
                app.id, NewEndpoint(url="https://example.com/c", event_types=bad)
            )
        assert (caught.value.field, caught.value.path) == ("eventTypes", (index,))
        with pytest.raises(InvalidInput):
            await hp.endpoints.patch(app.id, ok.id, EndpointChanges(event_types=bad))
    assert (await hp.endpoints.get(app.id, ok.id)).event_types == ["invoice.*", "user.created"]
    # Strict mode refuses instead of warning.
    assert await hp.endpoints.subscription_warnings(ok) == []


async def test_without_strict_mode_subscriptions_are_kept_with_warnings(
    fresh_sqlite_url: str,
) -> None:
    async with Hookpost.open(fresh_sqlite_url) as hp:
        app = await hp.apps.create("Acme")
        await hp.event_types.create(NewEventType("invoice.paid", "paid"))
        ep = await hp.endpoints.create(
            app.id,
            NewEndpoint(
                url="https://example.com/a",
                event_types=["invoice.paid", "invoice.*", "nope.x", "order.*"],
            ),
        )
        warnings = await hp.endpoints.subscription_warnings(ep)
        assert [w.field for w in warnings] == ["eventTypes", "eventTypes"]
        assert "'nope.x'" in warnings[0].message and "'order.*'" in warnings[1].message
        # The catalog catches up: a type created in this process clears its warning at once.
        await hp.event_types.create(NewEventType("nope.x", "now known"))
        assert len(await hp.endpoints.subscription_warnings(ep)) == 1


async def test_secret_once_in_the_library(fresh_sqlite_url: str) -> None:
    async with Hookpost.open(fresh_sqlite_url, reveal_secrets=False) as hp:
        app = await hp.apps.create("Acme")
        ep = await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/a"))
        with pytest.raises(SecretNotShown) as caught:
            await hp.endpoints.get_secret(app.id, ep.id)
        assert f"/endpoint/{ep.id}/secret/rotate" in str(caught.value)
        rotated = await hp.endpoints.rotate_secret(app.id, ep.id)
        assert rotated.secret != ep.secret and rotated.secret.startswith("whsec_")


async def test_a_read_that_raced_a_write_here_is_not_cached(hp: Hookpost) -> None:
    """A lookup that started before this process archived the type must not keep the live
    copy it read for the next 2 s."""
    await hp.event_types.create(NewEventType("r.w", "rw"))
    cache = CatalogCache(hp.store)
    store: Any = hp.store
    real_get = store.get_event_type

    async def read_then_write(name: str) -> EventType:
        found = await real_get(name)  # the live copy...
        archived = await real_get(name)
        archived.archived, archived.updated_at = True, archived.updated_at + 1
        await hp.store.update_event_type(archived)  # ...then archived by this process,
        cache.invalidate()  # which drops its cache (as EventTypeService does)
        return found

    store.get_event_type = read_then_write
    await cache.check_message("r.w", {})  # answered from the read it made
    store.get_event_type = real_get
    with pytest.raises(InvalidInput):
        await cache.check_message("r.w", {})


async def test_send_example_follows_strict_mode(hp: Hookpost) -> None:
    app = await hp.apps.create("Acme")
    ep = await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/a"))
    with pytest.raises(InvalidInput) as caught:
        await hp.messages.send_example(app.id, ep.id, "not.declared")
    assert caught.value.field == "eventType"
    example = {"1": {**SCHEMA, "examples": [{"amount": 7}]}}
    await hp.event_types.create(NewEventType("declared.one", "d", schemas=example))
    sent = await hp.messages.send_example(app.id, ep.id, "declared.one")
    assert sent.payload == b'{"amount":7}'
