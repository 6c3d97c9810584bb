"""Horizontal scale-out on one PostgreSQL: several ``hookpost api`` and ``hookpost worker``
processes share the database, the queue and the work, without faults."""

from __future__ import annotations

import resource
import time
from collections.abc import Awaitable, Callable

import pytest
from alembic.script import ScriptDirectory

from hookpost.domain.models import DeliveryStatus
from hookpost.store.migrate import alembic_config
from tests.support.cluster import (
    Cluster,
    CountingReceiver,
    LoadGenerator,
    create_app_and_endpoints,
    db_fetch,
    delivery_status_counts,
    wait_delivered,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.slow

SUCCEEDED = int(DeliveryStatus.SUCCEEDED)
MESSAGES = 5_000
ENDPOINTS = 3


@pytest.mark.timeout(180)
async def test_many_processes_start_at_once_on_an_empty_database(
    fresh_postgres_url: str,
    make_cluster: Callable[..., Cluster],
    make_receiver: Callable[..., Awaitable[CountingReceiver]],
) -> None:
    """Every process migrates at start-up; the advisory lock serialises them, so starting
    five at once against an empty database leaves one schema at head and all of them up."""
    receiver = await make_receiver()
    cluster = make_cluster(fresh_postgres_url)
    apis, _workers = await cluster.start(apis=2, workers=3)

    head = ScriptDirectory.from_config(alembic_config(fresh_postgres_url)).get_current_head()
    rows = await db_fetch(fresh_postgres_url, "SELECT version_num FROM alembic_version")
    versions = [r["version_num"] for r in rows]
    assert versions == [head], cluster.logs()
    tokens = await db_fetch(fresh_postgres_url, "SELECT count(*) AS n FROM api_tokens")
    assert tokens[0]["n"] == 1, f"the admin token was registered more than once\n{cluster.logs()}"

    # ... and they work together: messages through either API reach every endpoint.
    app_id, paths = await create_app_and_endpoints(
        apis[1].port or 0, cluster.admin_token, receiver, endpoints=2
    )
    result = await LoadGenerator(cluster.api_ports, cluster.admin_token, app_id, 100).run()
    assert not result.failed, f"{result.errors}\n{cluster.logs()}"
    await wait_delivered(receiver, result.expected(paths.values()), 60, cluster.logs)
    assert all(p.alive for p in cluster.procs), cluster.logs()


@pytest.mark.timeout(240)
async def test_two_apis_three_workers_deliver_every_message_exactly_once(
    fresh_postgres_url: str,
    make_cluster: Callable[..., Cluster],
    make_receiver: Callable[..., Awaitable[CountingReceiver]],
    report_throughput: Callable[[str], None],
) -> None:
    """5,000 messages x 3 endpoints, sent concurrently through two API processes and
    delivered by three workers: all arrive, and without faults none arrives twice."""
    receiver = await make_receiver()
    # A lease far longer than any delivery takes here: a duplicate would be a real bug, not
    # an expired lease on a busy machine.
    cluster = make_cluster(fresh_postgres_url, lease_s="60")
    cluster.migrate()
    apis, workers = await cluster.start(apis=2, workers=3)
    app_id, paths = await create_app_and_endpoints(
        apis[0].port or 0, cluster.admin_token, receiver, ENDPOINTS
    )
    total = MESSAGES * ENDPOINTS

    load = LoadGenerator(cluster.api_ports, cluster.admin_token, app_id, MESSAGES)
    cpu_test_before = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    started = time.monotonic()
    result = await load.run()
    assert not result.failed, f"requests failed: {result.errors}\n{cluster.logs()}"
    assert len(result.accepted) == MESSAGES
    expected = result.expected(paths.values())
    assert len(expected) == total

    await wait_delivered(receiver, expected, timeout=150, explain=cluster.logs)
    drained = (receiver.last_new_at or started) - started

    async def statuses() -> dict[int, int]:
        return await delivery_status_counts(fresh_postgres_url)

    # Every delivery is recorded as succeeded (the last results are written just after the
    # receipts, so poll for it), and exactly one attempt was made per delivery.
    await eventually(statuses, lambda c: c == {SUCCEEDED: total}, timeout=30)
    attempts = await db_fetch(fresh_postgres_url, "SELECT count(*) AS n FROM attempts")
    duplicates = receiver.duplicates()
    assert not duplicates, (
        f"{len(duplicates)} deliveries arrived more than once without any fault, e.g. "
        f"{sorted(duplicates.items())[:5]}\n{cluster.logs()}"
    )
    assert receiver.total == total
    assert attempts[0]["n"] == total, cluster.logs()
    assert all(p.alive for p in [*apis, *workers]), cluster.logs()

    cpu_api = sum(p.cpu_seconds() for p in apis)
    cpu_workers = sum(p.cpu_seconds() for p in workers)
    cpu_test = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_test_before
    report_throughput(
        f"{MESSAGES} msgs x {ENDPOINTS} endpoints, 2 api + 3 workers: "
        f"ingest {result.rate:,.0f} msg/s ({result.seconds:.1f}s), "
        f"end-to-end {total / drained:,.0f} deliveries/s "
        f"({total} in {drained:.1f}s from the first send); CPU s: api {cpu_api:.1f}, "
        f"workers {cpu_workers:.1f}, load generator + receiver {cpu_test:.1f} "
        f"(processes' CPU includes start-up)"
    )
