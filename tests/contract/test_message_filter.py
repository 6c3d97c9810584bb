"""``MessageFilter.matches`` (the services filter pages of deliveries with it) selects exactly
the messages the stores' ``list_messages`` selects with the same filter."""

from __future__ import annotations

import itertools

from hookpost.domain.models import PageRequest
from hookpost.domain.queries import MessageFilter
from hookpost.store.base import Store

from .support import T0, ids, new_app, send

EVENT_TYPES = (None, ["a.one"], ["a.one", "c.three"], ["nothing"])
CHANNELS = (None, "eu", "us", "nowhere")
TIMES = (None, T0, T0 + 10, T0 + 20, T0 + 30)


async def test_matches_is_what_list_messages_selects(store: Store) -> None:
    app = await new_app(store)
    messages = [
        await send(store, app.id, at=T0, event_type="a.one", channels=["eu"]),
        await send(store, app.id, at=T0 + 10, event_type="b.two", channels=["us", "eu"]),
        await send(store, app.id, at=T0 + 20, event_type="a.one"),
        await send(store, app.id, at=T0 + 30, event_type="c.three", channels=["us"]),
    ]
    every = PageRequest(limit=100)
    for types, channel, before, after in itertools.product(EVENT_TYPES, CHANNELS, TIMES, TIMES):
        filt = MessageFilter(event_types=types, channel=channel, before=before, after=after)
        listed = await store.list_messages(app.id, every, filt)
        assert ids(listed.items) == ids([m for m in messages if filt.matches(m)]), filt
