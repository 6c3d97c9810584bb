"""Creating messages on SQLite: a whole group of messages in a fixed number of statements.

The API's concurrent sends land in the writer's group together (see ``executor``). Made one by
one, each costs three statements, and each statement hands the GIL to the busy event loop and
waits to get it back with the cross-process write lock held. Made as one :class:`Shared` write,
the group's messages go in by one multi-row INSERT, the endpoints of all their apps come back
as one row per app, and all their deliveries go in by one INSERT over a JSON array (and the
idempotency keys of those that carry one, by one more, after one statement that finds the keys
answered before).

A send that repeats an earlier send's eventId in the same group gets that send's message. Anything
else unusual (an unknown app, a taken id) makes the multi-row statements fail; the executor then
runs each message alone, which answers each exactly as :meth:`Store.create_message` promises.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from hookpost.domain import ids
from hookpost.domain.errors import NotFound
from hookpost.domain.filters import Payload
from hookpost.domain.matching import filters_match
from hookpost.domain.models import Message, Page, PageRequest
from hookpost.domain.queries import (
    CreatedMessage,
    IdempotencyKey,
    KeyAnswer,
    MessageFilter,
    SentMessage,
)
from hookpost.store.paging import finish_page
from hookpost.store.rows import SEALED, dumps_opt, key_answer, message_from_row, opened
from hookpost.store.sqlite.core import (
    Conn,
    SqliteBase,
    id_range,
    page_messages,
    paged,
    snapshot,
)
from hookpost.store.sqlite.errors import conflict
from hookpost.store.sqlite.executor import Shared
from hookpost.store.sqlite.multirow import execute_values
from hookpost.store.sqlite.ordering import park_new, settle_endpoints
from hookpost.store.sqlite.sql import (
    APPS_ENDPOINTS,
    DELIVERIES_CREATE,
    KEYS_FOUND,
    KEYS_PUT,
    MESSAGE_BY_EVENT_ID,
    MESSAGE_EXPUNGE,
    MESSAGE_GET,
    MESSAGES_INSERT,
    MESSAGES_LIST,
)


@dataclass(frozen=True, slots=True)
class NewMessage:
    message: Message
    now_ms: int
    only: frozenset[str] | None  # explicit endpoint ids; None: every endpoint whose filter matches
    key: IdempotencyKey | None = None  # recorded if the message is created (see _replayed)


def _create_messages(c: sqlite3.Connection, items: list[NewMessage]) -> list[CreatedMessage]:
    answers: list[CreatedMessage | None] = [None] * len(items)
    fresh: list[int] = []  # indexes of the items to insert
    # A client retrying a send with the same eventId may land twice in one group: the later
    # one gets the earlier one's message, as it would one by one (the unique index would
    # otherwise fail the group's INSERT and make every send of the group run alone).
    first_of: dict[tuple[str, str], int] = {}
    repeats: list[tuple[int, int]] = []  # (item, the earlier item of the group it repeats)
    # Likewise one idempotency key held by two sends of the group (their in-flight slots can
    # differ: a send that created its application re-targets its key): the later one replays.
    first_with_key: dict[tuple[str, str], int] = {}
    key_repeats: list[tuple[int, int]] = []
    replayed = _replayed(c, items)
    for i, item in enumerate(items):
        m = item.message
        if i in replayed:  # its idempotency key was answered before: that answer wins
            answers[i] = CreatedMessage(m, created=False, deliveries=0, replayed=replayed[i])
            continue
        k = item.key
        if k is not None and (k.scope, k.key) in first_with_key:
            key_repeats.append((i, first_with_key[(k.scope, k.key)]))
            continue
        if m.event_id is not None:
            key = (m.app_id, m.event_id)
            if key in first_of:
                repeats.append((i, first_of[key]))
                continue
            row = c.execute(MESSAGE_BY_EVENT_ID, key).fetchone()
            if row is not None:
                answers[i] = CreatedMessage(message_from_row(row), created=False, deliveries=0)
                continue
            first_of[key] = i
        if k is not None:
            first_with_key[(k.scope, k.key)] = i
        fresh.append(i)
    if fresh:
        _insert(c, [items[i] for i in fresh])
        endpoints = _endpoints_by_app(c, {items[i].message.app_id for i in fresh})
        deliveries: list[tuple[str, str, int, list[str]]] = []
        # An ordered endpoint's new rows, by endpoint: parked, then settled (domain.ordering).
        ordered: dict[str, list[str]] = {}
        now_ms = items[fresh[0]].now_ms
        for i in fresh:
            item = items[i]
            m = item.message
            payload = Payload(m.payload)  # parsed once, if an endpoint has a payload filter
            targets = []
            for ep_id, types, chans, payload_filter, in_order in endpoints.get(m.app_id, ()):
                if (
                    ep_id in item.only
                    if item.only is not None
                    else filters_match(
                        types, chans, m.event_type, m.channels, payload_filter, payload
                    )
                ):
                    targets.append(ep_id)
                    if in_order:
                        ordered.setdefault(ep_id, []).append(m.id)
            if targets:
                deliveries.append((m.app_id, m.id, item.now_ms, targets))
            answers[i] = CreatedMessage(m, created=True, deliveries=len(targets))
        if deliveries:
            c.execute(DELIVERIES_CREATE, (orjson.dumps(deliveries).decode(),))
        if ordered:
            for ep_id, message_ids in ordered.items():
                park_new(c, ep_id, message_ids, now_ms)
            settle_endpoints(c, ordered, now_ms)
        keys = [
            (k.scope, k.key, None, None, items[i].message.id, k.expires_at)
            for i in fresh
            if (k := items[i].key) is not None
        ]
        if keys:
            execute_values(c, KEYS_PUT, keys)
    for i, first in repeats:
        answers[i] = CreatedMessage(items[first].message, created=False, deliveries=0)
    for i, first in key_repeats:
        sent = SentMessage(items[first].message.id)
        answers[i] = CreatedMessage(items[i].message, created=False, deliveries=0, replayed=sent)
    return answers  # type: ignore[return-value]  # every index answered above


def _replayed(c: sqlite3.Connection, items: list[NewMessage]) -> dict[int, KeyAnswer]:
    """What the items' idempotency keys hold already, by item index (a key held twice in the
    group is answered by ``_create_messages``)."""
    keyed = [
        (i, (k.scope, k.key, item.now_ms))
        for i, item in enumerate(items)
        if (k := item.key) is not None
    ]
    if not keyed:
        return {}
    rows = c.execute(KEYS_FOUND, (orjson.dumps([k for _, k in keyed]).decode(),))
    return {keyed[j][0]: key_answer(SEALED, *answer) for j, *answer in rows}


def _insert(c: sqlite3.Connection, items: list[NewMessage]) -> None:
    rows = [
        (
            m.id,
            m.app_id,
            m.event_type,
            m.event_id,
            dumps_opt(m.channels),
            m.payload,
            0,
            m.created_at,
            m.payload_sha256,
            m.payload_expires_at,
        )
        for m in (item.message for item in items)
    ]
    try:
        execute_values(c, MESSAGES_INSERT, rows)
    except sqlite3.IntegrityError as exc:
        if len(items) > 1:
            raise  # which one is to blame: the executor runs each alone to find out
        if "FOREIGN KEY" in str(exc):
            raise NotFound("application", items[0].message.app_id) from None
        raise conflict(exc, "a message with this id") from None


def _endpoints_by_app(
    c: sqlite3.Connection, app_ids: set[str]
) -> dict[str, list[tuple[str, list[str] | None, list[str] | None, str | None, int]]]:
    """Each app's enabled endpoints: (id, event types, channels, payload filter's JSON,
    ordered)."""
    rows = c.execute(APPS_ENDPOINTS, (orjson.dumps(sorted(app_ids)).decode(),)).fetchall()
    return {app_id: orjson.loads(endpoints) for app_id, endpoints in rows}


CREATE_MESSAGES = Shared(_create_messages)


class SqliteMessages(SqliteBase):
    async def create_message(
        self,
        message: Message,
        now_ms: int,
        endpoint_ids: Sequence[str] | None = None,
        key: IdempotencyKey | None = None,
    ) -> CreatedMessage:
        only = None if endpoint_ids is None else frozenset(endpoint_ids)
        created: CreatedMessage = await self._db.write_shared(
            CREATE_MESSAGES, NewMessage(message, now_ms, only, key)
        )
        if created.deliveries:
            self._new_work()
        if created.replayed is not None:
            return opened(created, self._box)
        return created

    async def get_message(self, app_id: str, msg_id_or_event_id: str) -> Message:
        def run(c: Conn) -> Message:
            row = c.execute(
                MESSAGE_GET, (app_id, msg_id_or_event_id, msg_id_or_event_id)
            ).fetchone()
            if row is None:
                raise NotFound("message", msg_id_or_event_id)
            return message_from_row(row)

        return await self._db.read(run)

    async def list_messages(
        self,
        app_id: str,
        page: PageRequest,
        filt: MessageFilter,
        *,
        with_content: bool = True,
        max_content_bytes: int | None = None,
    ) -> Page[Message]:
        def run(c: Conn) -> Page[Message]:
            where, params = ["app_id = ?"], [app_id]
            if filt.event_types:
                where.append(f"event_type IN ({', '.join('?' * len(filt.event_types))})")
                params.extend(filt.event_types)
            if filt.channel is not None:
                where.append("EXISTS (SELECT 1 FROM json_each(channels) WHERE value = ?)")
                params.append(filt.channel)
            id_range(where, params, "id", ids.MESSAGE, filt.before, filt.after)
            with snapshot(c):
                rows = paged(c, MESSAGES_LIST, where, params, page, "id")
                found, keep = page_messages(c, rows, page, with_content, max_content_bytes)
            return finish_page(found, page, keep)

        return await self._db.read(run)

    async def expunge_message(self, app_id: str, msg_id: str) -> None:
        def run(c: Conn) -> None:
            cur = c.execute(MESSAGE_EXPUNGE, (b"{}", app_id, msg_id))
            if cur.rowcount == 0:
                raise NotFound("message", msg_id)

        await self._db.write(run)
