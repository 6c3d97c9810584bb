"""Retention (``hookpost.domain.retention``), mirrored in SQL by each backend's ``Retention``.

Run once per backend: what the store erases and deletes equals what the domain rule says, for
messages of every age, expiry and delivery state; a pending or sending delivery is never
deleted; a dry run counts exactly what a run then does; one cleanup runs at a time. Times are
the test's (``now_ms``): nothing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hookpost.domain import tasks as t
from hookpost.domain.errors import NotFound
from hookpost.domain.ids import TASK, TOKEN, new_id
from hookpost.domain.models import ApiToken, BackgroundTask, DeliveryStatus, PageRequest
from hookpost.domain.queries import AttemptFilter
from hookpost.domain.retention import (
    EXPIRED_TOKEN_KEPT_MS,
    CleanupCounts,
    RetentionPolicy,
    deletable,
    payload_expired,
    task_deletable,
    token_deletable,
)
from hookpost.services.retention import RetentionService
from hookpost.store.base import Store

from .conftest import StoreFactory
from .support import (
    DAY,
    FAILED,
    HOUR,
    PENDING,
    SENDING,
    SUCCEEDED,
    T0,
    app_with_endpoint,
    claim,
    finish,
    mk_message,
    new_app,
    outcome,
)

NOW = T0 + 120 * DAY
HORIZON = 30 * DAY
PAYLOAD = b'{"card":"4242"}'


@dataclass
class Case:
    age: int  # ms before NOW that the message was created
    keep: int | None  # ms its payload is kept (None: no expiry recorded)
    status: DeliveryStatus  # its delivery's state at NOW


# Every combination that matters: old and recent, expired and not, each delivery state.
# Created oldest first; the sending ones and the never-claimed pending ones last (a claim at a
# later time would take an expired lease again).
CASES = [
    Case(100 * DAY, 90 * DAY, SUCCEEDED),  # expired, beyond the horizon: erased and deleted
    Case(100 * DAY, None, FAILED),  # no expiry, beyond the horizon: deleted
    Case(95 * DAY, 1 * HOUR, FAILED),
    Case(90 * DAY, 30 * DAY, PENDING),  # a retry still due: erased, never deleted
    Case(60 * DAY, 90 * DAY, SUCCEEDED),  # beyond the horizon, payload not yet expired
    Case(30 * DAY + 1, 5 * DAY, FAILED),  # just beyond the horizon
    Case(30 * DAY, 30 * DAY, SUCCEEDED),  # created exactly at the horizon: kept; expired now
    Case(29 * DAY, 30 * DAY, SUCCEEDED),  # expires a day later: kept whole
    Case(2 * DAY, 2 * DAY - 1, FAILED),  # a short period: erased
    Case(1 * HOUR, 90 * DAY, SUCCEEDED),
    Case(80 * DAY, 10 * DAY, SENDING),  # in flight: erased, never deleted
    Case(70 * DAY, 90 * DAY, PENDING),  # never tried yet
]


async def _populate(store: Store) -> tuple[str, list[str]]:
    """One message per case, its delivery brought to the case's state (with an attempt whose
    response body is kept unless it is erased)."""
    app, _ = await app_with_endpoint(store)
    ids = []
    for case in CASES:
        at = NOW - case.age
        expires = None if case.keep is None else at + case.keep
        msg = mk_message(app.id, at=at, payload=PAYLOAD, payload_expires_at=expires)
        msg.payload_sha256 = "sha-" + msg.id
        created = await store.create_message(msg, at)
        assert created.created and created.deliveries == 1
        ids.append(msg.id)
        if case.status == PENDING and case.age == 70 * DAY:
            continue  # never claimed
        (c,) = await claim(store, at)
        if case.status == SENDING:
            continue
        retry = at + 365 * DAY if case.status == PENDING else None
        # (failures months apart must not disable the endpoint)
        result = outcome(c, case.status, at=at, retry_at=retry)
        await finish(store, result, now=at, disable_after_ms=1000 * DAY)
    return app.id, ids


def _expected(ids: list[str]) -> tuple[set[str], set[str]]:
    erased = {
        i
        for i, c in zip(ids, CASES, strict=True)
        if payload_expired(None if c.keep is None else NOW - c.age + c.keep, False, NOW)
    }
    deleted = {
        i
        for i, c in zip(ids, CASES, strict=True)
        if deletable(NOW - c.age, [c.status], NOW - HORIZON)
    }
    return erased, deleted


async def _attempt_responses(store: Store, app_id: str, msg_id: str) -> list[str]:
    page = await store.list_attempts(
        app_id, PageRequest(limit=50), AttemptFilter(message_id=msg_id)
    )
    return [a.response for a in page.items]


async def test_the_store_erases_and_deletes_what_the_domain_rule_says(store: Store) -> None:
    app_id, ids = await _populate(store)
    erased, deleted = _expected(ids)
    # The rule's own sanity: each kind is there, and no unfinished delivery is deleted.
    assert erased - deleted and deleted - erased and erased & deleted
    unfinished = {i for i, c in zip(ids, CASES, strict=True) if c.status in (PENDING, SENDING)}
    assert not deleted & unfinished

    before = NOW - HORIZON
    # small batches, so that the batching itself is exercised
    total = 0
    while (n := await store.erase_expired_payloads(NOW, 2)) > 0:
        total += n
    assert total == len(erased)
    counts, after = CleanupCounts(), None
    while True:
        got, after = await store.delete_old_messages(before, 2, after)
        counts.add(got)
        if after is None:
            break
    assert counts.messages == len(deleted)
    assert counts.deliveries == len(deleted)

    for msg_id in ids:
        if msg_id in deleted:
            with pytest.raises(NotFound):
                await store.get_message(app_id, msg_id)
            assert await _attempt_responses(store, app_id, msg_id) == []
            continue
        msg = await store.get_message(app_id, msg_id)
        assert msg.payload_sha256 == "sha-" + msg_id  # kept, erased or not
        responses = await _attempt_responses(store, app_id, msg_id)
        if msg_id in erased:
            assert msg.expunged and msg.payload == b"{}"
            assert msg.payload_expires_at is None
            assert all(r == "" for r in responses)
        else:
            assert not msg.expunged and msg.payload == PAYLOAD
            assert all(r != "" for r in responses)
    # A second pass finds nothing more.
    assert await store.erase_expired_payloads(NOW, 100) == 0
    got, _ = await store.delete_old_messages(before, 100)
    assert got.messages == 0


async def test_a_dry_run_counts_what_a_run_then_does(store: Store) -> None:
    await _populate(store)
    service = RetentionService(
        store, RetentionPolicy(horizon_days=30), clock=lambda: NOW, batch=3, pause_s=0
    )
    dry = await service.cleanup(dry_run=True)
    assert dry == await service.cleanup(dry_run=True)  # counting changes nothing
    done = await service.cleanup()
    assert done == dry
    assert done.messages > 0 and done.attempts > 0 and done.payloads > 0
    assert await service.cleanup(dry_run=True) == CleanupCounts()
    # --older-than in place of the horizon; no horizon at all deletes nothing
    assert (await service.cleanup(older_than_ms=1, dry_run=True)).messages > 0
    unset = RetentionService(store, RetentionPolicy(), clock=lambda: NOW, pause_s=0)
    assert (await unset.cleanup(dry_run=True)).messages == 0


async def test_one_cleanup_at_a_time(store: Store, store_factory: StoreFactory) -> None:
    async with store_factory() as other:
        # SQLite: a process's own turn (one worker process writes there); PostgreSQL: every
        # process's, through an advisory lock.
        peer = store if type(store).__name__.startswith("Sqlite") else other
        async with store.cleanup_turn() as mine:
            assert mine
            async with peer.cleanup_turn() as theirs:
                assert not theirs
            service = RetentionService(peer, RetentionPolicy(horizon_days=1), clock=lambda: NOW)
            assert await service.cleanup() == CleanupCounts()  # skipped, not waited for
        async with peer.cleanup_turn() as theirs:
            assert theirs  # free again


async def test_a_horizon_before_the_epoch_deletes_nothing(store: Store) -> None:
    await _populate(store)
    service = RetentionService(store, RetentionPolicy(), clock=lambda: NOW, pause_s=0)
    huge = NOW + 1000 * DAY  # --older-than longer than time itself
    assert (await service.cleanup(older_than_ms=huge, dry_run=True)).messages == 0
    assert (await service.cleanup(older_than_ms=huge)).messages == 0


async def test_finished_tasks_beyond_the_horizon_go_as_the_domain_rule_says(
    store: Store,
) -> None:
    old, recent = NOW - HORIZON - HOUR, NOW - HORIZON + HOUR
    tasks = [
        BackgroundTask(new_id(TASK, at), t.RECOVER, status, at, {}, {}, at)
        for status in (t.RUNNING, t.FINISHED, t.FAILED)
        for at in (old, recent)
    ]
    for task in tasks:
        await store.create_task(task)
    service = RetentionService(
        store, RetentionPolicy(horizon_days=30), clock=lambda: NOW, pause_s=0
    )
    before = NOW - HORIZON
    expected = [x.id for x in tasks if task_deletable(x.status, x.updated_at, before)]
    assert len(expected) == 2  # the old finished and failed ones; a running one never
    assert (await service.cleanup(dry_run=True)).tasks == 2
    assert (await service.cleanup()).tasks == 2
    for task in tasks:
        if task.id in expected:
            with pytest.raises(NotFound):
                await store.get_task(task.id)
        else:
            assert (await store.get_task(task.id)).status == task.status
    assert (await service.cleanup()).tasks == 0


async def test_long_expired_tokens_go_as_the_domain_rule_says(store: Store) -> None:
    # Around the rule's edge, and never a token without an expiry; no horizon is needed.
    edge = NOW - EXPIRED_TOKEN_KEPT_MS
    app_id = (await new_app(store)).id
    tokens = [
        ApiToken(new_id(TOKEN), f"hash-{i}", app, "t", T0, expires_at)
        for i, (app, expires_at) in enumerate(
            (app, at)
            for app in (None, app_id)
            for at in (None, edge - 1, edge, edge + 1, NOW + HOUR)
        )
    ]
    for token in tokens:
        await store.create_token(token)
    expected = {x.token_hash for x in tokens if token_deletable(x.expires_at, NOW)}
    assert len(expected) == 4  # expired at or before the edge, admin and app tokens alike
    service = RetentionService(store, RetentionPolicy(), clock=lambda: NOW, pause_s=0)
    assert (await service.cleanup(dry_run=True)).tokens == 4
    assert (await service.cleanup()).tokens == 4
    for token in tokens:
        found = await store.find_token(token.token_hash)
        assert (found is None) == (token.token_hash in expected)
    assert (await service.cleanup()).tokens == 0
