"""SQLite claim and finish batches: keys opened once per endpoint and claim, deliveries
updated in one statement, endpoint health still applied result by result in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hookpost.domain.ids import APP, ATTEMPT, ENDPOINT, MESSAGE, new_id
from hookpost.domain.models import (
    Application,
    Attempt,
    AttemptResult,
    AttemptStatus,
    ClaimedDelivery,
    DeliveryStatus,
    Endpoint,
    Message,
    SigningKey,
)
from hookpost.store.rows import PlainBox
from hookpost.store.sqlite.store import SqliteStore

T0 = 1_700_000_000_000
LEASE = 30_000


class CountingBox(PlainBox):
    def __init__(self) -> None:
        self.opened = 0

    def open(self, sealed: str, context: bytes = b"") -> bytes:
        self.opened += 1
        return super().open(sealed, context)


@pytest.fixture
async def store(migrated_sqlite_url: str) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(migrated_sqlite_url.removeprefix("sqlite:///"), CountingBox())
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def endpoint_with_messages(store: SqliteStore, n: int, keys: int = 2) -> Endpoint:
    app = await store.create_app(Application(id=new_id(APP, T0), name="a", created_at=T0))
    ep = await store.create_endpoint(
        Endpoint(
            id=new_id(ENDPOINT, T0),
            app_id=app.id,
            url="https://receiver.example/hook",
            keys=[SigningKey(f"whsec_{i}", None if i == 0 else T0 + i) for i in range(keys)],
            created_at=T0,
            updated_at=T0,
        )
    )
    for _ in range(n):
        msg = Message(
            id=new_id(MESSAGE, T0), app_id=app.id, event_type="e", payload=b"{}", created_at=T0
        )
        await store.create_message(msg, T0)
    return ep


def result(c: ClaimedDelivery, ok: bool, at: int, lease: str | None = None) -> AttemptResult:
    status = AttemptStatus.SUCCESS if ok else AttemptStatus.FAIL
    return AttemptResult(
        attempt=Attempt(
            id=new_id(ATTEMPT, at),
            app_id=c.app_id,
            message_id=c.message_id,
            endpoint_id=c.endpoint_id,
            url=c.url,
            status=status,
            trigger=c.trigger,
            response_status_code=200 if ok else 500,
            response="ok" if ok else "error",
            duration_ms=1,
            created_at=at,
        ),
        delivery_id=c.delivery_id,
        lease=c.lease if lease is None else lease,
        next_status=DeliveryStatus.SUCCEEDED if ok else DeliveryStatus.PENDING,
        next_attempt_at=None if ok else at + 60_000,
        attempts=c.attempts + 1,
    )


async def test_keys_are_opened_once_per_endpoint_per_claim(store: SqliteStore) -> None:
    a = await endpoint_with_messages(store, 5)
    b = await endpoint_with_messages(store, 3, keys=1)
    box = store._box
    assert isinstance(box, CountingBox)
    box.opened = 0
    claimed = await store.claim_due(100, LEASE, T0)
    assert len(claimed) == 8 and box.opened == 2
    for c in claimed:
        ep = a if c.endpoint_id == a.id else b
        assert c.keys == ep.keys
    # every delivery owns its list of keys
    lists = [c.keys for c in claimed]
    assert len({id(k) for k in lists}) == len(lists)


@pytest.mark.parametrize(
    ("outcomes", "failures"),
    [
        ((True, True, True), 0),
        ((False, True, True), 0),
        ((True, False), 1),
        ((True, True, False, True, True), 0),
        ((False, True, False, False), 2),
    ],
)
async def test_health_follows_the_results_in_order(
    store: SqliteStore, outcomes: tuple[bool, ...], failures: int
) -> None:
    ep = await endpoint_with_messages(store, len(outcomes))
    claimed = sorted(await store.claim_due(100, LEASE, T0), key=lambda c: c.delivery_id)
    pairs = zip(claimed, outcomes, strict=True)
    results = [result(c, ok, T0 + 10 + i) for i, (c, ok) in enumerate(pairs)]
    out = await store.finish_attempts(results, T0 + 100, 5 * 24 * 3_600_000)
    assert out.stale == 0 and out.disabled_endpoints == []
    health = await store.get_endpoint(ep.app_id, ep.id)
    assert health.consecutive_failures == failures
    assert (health.first_failure_at is None) == (failures == 0)


async def test_stale_results_are_counted_in_a_batch(store: SqliteStore) -> None:
    await endpoint_with_messages(store, 4)
    c1, c2, c3, c4 = await store.claim_due(100, LEASE, T0)
    results = [
        result(c1, True, T0 + 1),
        result(c2, True, T0 + 1, lease="lost"),
        result(c3, False, T0 + 1, lease="lost"),
        result(c4, True, T0 + 1),
    ]
    out = await store.finish_attempts(results, T0 + 2, 5 * 24 * 3_600_000)
    assert out.stale == 2
    for c, status in ((c1, "SUCCEEDED"), (c2, "SENDING"), (c3, "SENDING"), (c4, "SUCCEEDED")):
        d = await store.get_delivery(c.message_id, c.endpoint_id)
        assert d.status == DeliveryStatus[status]
