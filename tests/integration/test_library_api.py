"""The library's typed API (``hookpost.Hookpost``, docs/library.md): the REST request models
or their dicts in (camelCase or snake_case), lists that page without internal imports, and
the inputs that predate it still accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from hookpost import (
    ApplicationIn,
    EndpointIn,
    EndpointPatch,
    EventTypeIn,
    Hookpost,
    ListPage,
    MessageIn,
    NewEndpoint,
)
from hookpost.domain.errors import Conflict, InvalidInput, NotFound

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def hp(fresh_sqlite_url: str) -> AsyncIterator[Hookpost]:
    async with Hookpost.open(fresh_sqlite_url) as runtime:
        yield runtime


async def test_inputs_mirror_the_rest_fields_in_any_spelling(hp: Hookpost) -> None:
    app = await hp.apps.create(ApplicationIn(name="Acme", uid="acme", metadata={"k": "v"}))
    assert (app.name, app.uid, app.metadata) == ("Acme", "acme", {"k": "v"})
    policy = {"strategy": "linear", "initialDelaySeconds": 2, "maxAttempts": 3}
    camel = await hp.endpoints.create(
        "acme",
        {
            "url": "https://a.example/hook",
            "uid": "camel",
            "eventTypes": ["a.b"],
            "timeoutSeconds": 5,
            "retryPolicy": policy,
            "throttleRate": 7,
        },
    )
    snake = await hp.endpoints.create(
        app.id,
        {
            "url": "https://a.example/hook",
            "event_types": ["a.b"],
            "timeout_seconds": 5,
            "retry_policy": policy,
            "throttle_rate": 7,
        },
    )
    typed = await hp.endpoints.create(
        "acme", EndpointIn(url="https://a.example/hook", event_types=["a.b"], timeout_seconds=5)
    )
    for ep in (camel, snake):
        assert (ep.event_types, ep.timeout_s, ep.throttle_rate) == (["a.b"], 5, 7)
        assert ep.retry_policy is not None and ep.retry_policy.delays() == (2, 4)
    assert (typed.event_types, typed.timeout_s) == (["a.b"], 5)
    assert (await hp.endpoints.get("acme", "camel")).id == camel.id  # uids, as in REST paths

    patched = await hp.endpoints.patch("acme", "camel", EndpointPatch(disabled=True))
    assert patched.disabled and patched.event_types == ["a.b"]  # only what was set
    cleared = await hp.endpoints.patch("acme", "camel", {"eventTypes": []})
    assert cleared.event_types is None and cleared.disabled
    assert (await hp.endpoints.get_secret("acme", "camel")).startswith("whsec_")


async def test_bad_input_names_the_field(hp: Hookpost) -> None:
    await hp.apps.create({"name": "Acme", "uid": "acme"})
    with pytest.raises(ValidationError) as caught:
        await hp.endpoints.create("acme", {"url": "ftp://a.example"})
    assert caught.value.errors()[0]["loc"] == ("url",)
    with pytest.raises(InvalidInput) as invalid:
        await hp.endpoints.create(
            "acme", {"url": "https://a.example", "retryPolicy": {"schedule": [-1]}}
        )
    assert invalid.value.field == "retryPolicy"
    with pytest.raises(NotFound):
        await hp.endpoints.create("nobody", {"url": "https://a.example"})
    with pytest.raises(InvalidInput, match="limit"):
        await hp.endpoints.list("acme", limit=251)


async def test_lists_page_and_iterate(hp: Hookpost) -> None:
    await hp.apps.create(ApplicationIn(name="Acme", uid="acme"))
    # Lists are in id order; ids made within one millisecond are in random order.
    made = sorted(
        [
            (await hp.endpoints.create("acme", {"url": f"https://a.example/{n}"})).id
            for n in range(5)
        ]
    )
    pages: list[ListPage[object]] = []
    iterator = None
    while not pages or not pages[-1].done:
        pages.append(await hp.endpoints.list("acme", limit=2, iterator=iterator))
        iterator = pages[-1].iterator
    assert [len(p.data) for p in pages] == [2, 2, 1]
    assert [e.id for p in pages for e in p.data] == made  # type: ignore[attr-defined]
    back = await hp.endpoints.list("acme", limit=2, iterator=pages[1].prev_iterator)
    assert [e.id for e in back.data] == made[:2]
    assert [e.id async for e in hp.endpoints.iterate("acme", page_size=2)] == made

    sent = [
        await hp.messages.create("acme", MessageIn(event_type="a.b", payload={"n": n}))
        for n in range(3)
    ]
    newest_first = [m.id async for m in hp.messages.iterate("acme", page_size=2)]
    assert newest_first == sorted((m.id for m in sent), reverse=True)
    only = await hp.messages.list("acme", event_types=["x.y"])
    assert only.data == [] and only.done

    for name in ("b.one", "b.two"):
        await hp.event_types.create(EventTypeIn(name=name, description=name))
    await hp.event_types.patch("b.two", {"archived": True})
    assert [e.name async for e in hp.event_types.iterate()] == ["b.one"]
    archived = await hp.event_types.list(include_archived=True)
    assert [e.name for e in archived.data] == ["b.one", "b.two"]
    assert [a.uid async for a in hp.apps.iterate()] == ["acme"]


async def test_messages_create_like_the_rest_api(hp: Hookpost) -> None:
    await hp.apps.get_or_create(ApplicationIn(name="Acme", uid="acme"))
    again = await hp.apps.get_or_create({"name": "Other name", "uid": "acme"})
    assert again.name == "Acme"  # runs twice without a conflict
    first = await hp.messages.create(
        "acme", {"eventType": "a.b", "payload": {"x": 1}, "eventId": "evt-1"}
    )
    assert (await hp.messages.get("acme", first.id)).event_type == "a.b"
    with pytest.raises(Conflict, match=first.id):
        await hp.messages.create("acme", MessageIn(event_type="a.b", payload={}, event_id="evt-1"))
    with pytest.raises(ValueError, match="application"):
        await hp.messages.create(
            "acme", {"eventType": "a.b", "payload": {}, "application": {"name": "x"}}
        )


async def test_the_inputs_that_predate_it_still_work(hp: Hookpost) -> None:
    app = await hp.apps.create("Acme", uid="acme")  # the service's own signature
    ep = await hp.endpoints.create(app.id, NewEndpoint(url="https://a.example/hook"))
    rotated = await hp.endpoints.rotate_secret(app.id, ep.id)  # reached through the resource
    assert rotated is not None
    created = await hp.messages.send(app.id, "a.b", {"n": 1})  # the service's send
    assert created.created and created.message.app_id == app.id
