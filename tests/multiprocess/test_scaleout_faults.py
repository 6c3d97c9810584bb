"""Faults under load, with real processes on one PostgreSQL: workers killed with SIGKILL,
the database restarted, workers restarted one by one. Nothing a client was promised (a 2xx
answer) may be lost; duplicates are allowed only where at-least-once delivery needs them."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import pytest

from hookpost.domain.models import DeliveryStatus
from tests.support.cluster import (
    LOOPBACK,
    Cluster,
    CountingReceiver,
    LoadGenerator,
    PrivatePostgres,
    Proc,
    create_app_and_endpoints,
    db_fetch,
    delivery_status_counts,
    sending_now,
    wait_delivered,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.slow
T = TypeVar("T")

SENDING = int(DeliveryStatus.SENDING)
SUCCEEDED = int(DeliveryStatus.SUCCEEDED)
MESSAGES = 1_500
ENDPOINTS = 3
TOTAL = MESSAGES * ENDPOINTS
MAX_IN_FLIGHT = 64  # per worker: what one killed worker can have had in flight
LEASE_S = 4  # short, so crash recovery is quick; long enough that a busy worker keeps it
RECEIVER_DELAY_S = 0.05  # each endpoint takes this long to answer: requests are in flight
ROLLING_RATE = 100.0  # messages/s in the rolling restart
ROLLING_MIN = 1_200  # messages at least, at most ROLLING_MAX: the load stops when the test is
ROLLING_MAX = 6_000  # done with its restarts
ROLLING_STEP = 150  # deliveries between two restarts


async def _eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    what: str,
    explain: Callable[[], str],
    timeout: float = 60.0,
) -> T:
    """``eventually``, failing with what was awaited and the processes' log tails."""
    try:
        return await eventually(probe, accept, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {exc}\n{explain()}") from None


async def _until(check: Callable[[], bool], what: str, explain: Callable[[], str]) -> None:
    """Poll a cheap in-process condition."""

    async def probe() -> bool:
        return check()

    await _eventually(probe, bool, what, explain)


async def _all_final(url: str, expected: int, explain: Callable[[], str]) -> dict[int, int]:
    """Poll until every delivery is recorded as succeeded (the last results are written
    just after their receipts)."""
    return await _eventually(
        lambda: delivery_status_counts(url),
        lambda c: c == {SUCCEEDED: expected},
        f"all {expected} deliveries succeeded",
        explain,
    )


@pytest.mark.timeout(240)
async def test_sigkill_workers_under_load_loses_nothing(
    fresh_postgres_url: str,
    make_cluster: Callable[..., Cluster],
    make_receiver: Callable[..., Awaitable[CountingReceiver]],
    report_throughput: Callable[[str], None],
) -> None:
    """Two workers are killed with SIGKILL mid-load (each replaced at once). Every delivery
    still arrives; the only duplicates are deliveries the killed workers had sent but not
    yet recorded, i.e. in status ``sending`` and already at the receiver at kill time."""
    url = fresh_postgres_url
    receiver = await make_receiver(RECEIVER_DELAY_S)
    cluster = make_cluster(url, lease_s=str(LEASE_S), max_in_flight=str(MAX_IN_FLIGHT))
    cluster.migrate()
    apis, workers = await cluster.start(apis=2, workers=3)
    app_id, paths = await create_app_and_endpoints(
        apis[0].port or 0, cluster.admin_token, receiver, ENDPOINTS
    )
    load = LoadGenerator(cluster.api_ports, cluster.admin_token, app_id, MESSAGES)
    started = time.monotonic()
    sending = asyncio.create_task(load.run())

    candidates: set[tuple[str, str]] = set()  # in flight on some worker at some kill
    at_kill: list[tuple[int, int]] = []  # (in sending, of which received) per kill
    replacements = []
    for victim, share in zip(workers[:2], (0.15, 0.35), strict=True):  # two different workers
        await receiver.wait_unique(int(TOTAL * share), explain=cluster.logs)
        code = await cluster.signal(victim, signal.SIGKILL)
        assert code == -signal.SIGKILL, cluster.logs()
        # The killed worker writes nothing more, so what it had in flight is now frozen:
        # in status `sending`, and (if its request went out) already at the receiver.
        in_sending = await sending_now(url, paths)
        await receiver.barrier()
        in_flight = in_sending & receiver.received()
        candidates |= in_flight
        at_kill.append((len(in_sending), len(in_flight)))
        # Replace it at once; waiting for it to be up would let the load run out first.
        replacements.append(cluster.start_worker(max_in_flight=str(MAX_IN_FLIGHT)))
    await cluster.wait_ready(*replacements)

    result = await sending
    assert not result.failed, f"requests failed: {result.errors}\n{cluster.logs()}"
    expected = result.expected(paths.values())
    await wait_delivered(receiver, expected, timeout=120, explain=cluster.logs)
    drained = (receiver.last_new_at or started) - started
    await _all_final(url, TOTAL, cluster.logs)

    duplicates = receiver.duplicates()
    extra = sum(n - 1 for n in duplicates.values())
    assert extra <= MAX_IN_FLIGHT * 2, (
        f"{extra} duplicate receipts; two killed workers could have had at most "
        f"{MAX_IN_FLIGHT * 2} deliveries in flight\n{cluster.logs()}"
    )
    unexplained = set(duplicates) - candidates
    assert not unexplained, (
        f"{len(unexplained)} duplicates were not in flight at either kill, e.g. "
        f"{sorted(unexplained)[:5]}\n{cluster.logs()}"
    )
    report_throughput(
        f"{MESSAGES} msgs x {ENDPOINTS}, 2 SIGKILLs: {TOTAL / drained:,.0f} deliveries/s "
        f"end-to-end; (sending, of which received) at the kills: {at_kill}; "
        f"duplicate receipts: {extra} (bound {MAX_IN_FLIGHT * 2})"
    )


@dataclass
class Outage:
    unaware: list[str]  # processes that have not noticed yet
    health: list[int]  # what /api/v1/health answers on each API
    failed_requests: int  # by the load generator, since the stop
    leases_expired: bool  # every lease taken before the stop has run out

    def complete(self) -> bool:
        return (
            not self.unaware
            and all(status == 503 for status in self.health)
            and self.failed_requests > 0
            and self.leases_expired
        )


def _store_failures(worker: Proc) -> int:
    """How often the worker has logged a failed claim or a failed write of results."""
    return worker.count_in_log("claim failed") + worker.count_in_log("attempts failed, retrying")


async def _health(port: int) -> int:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            async with http.get(f"http://{LOOPBACK}:{port}/api/v1/health") as r:
                return r.status
    except (aiohttp.ClientError, OSError, TimeoutError):
        return -1


@pytest.mark.postgres
@pytest.mark.timeout(240)
async def test_database_restart_under_load_loses_nothing_accepted(
    private_postgres: PrivatePostgres,
    make_cluster: Callable[..., Cluster],
    make_receiver: Callable[..., Awaitable[CountingReceiver]],
    report_throughput: Callable[[str], None],
) -> None:
    """PostgreSQL (a private server: the shared one is never restarted) is stopped mid-load
    and started again. API requests meanwhile may fail with 503; every message whose create
    request got a 2xx is delivered, and API and workers reconnect by themselves."""
    url = private_postgres.url
    receiver = await make_receiver(RECEIVER_DELAY_S)
    cluster = make_cluster(url, lease_s=str(LEASE_S))
    cluster.migrate()
    apis, workers = await cluster.start(apis=2, workers=3)
    procs = [*apis, *workers]
    app_id, paths = await create_app_and_endpoints(
        apis[0].port or 0, cluster.admin_token, receiver, ENDPOINTS
    )
    # Failed requests are retried for a while (the client's side of a 503 Retry-After).
    load = LoadGenerator(cluster.api_ports, cluster.admin_token, app_id, MESSAGES, retry_for_s=60)
    started = time.monotonic()
    sending = asyncio.create_task(load.run())

    # Stop the database while messages are still being sent and delivered.
    await _until(
        lambda: load.done >= MESSAGES * 0.4 and receiver.unique >= 100,
        "40% of the messages sent and 100 deliveries received",
        cluster.logs,
    )
    lost_before = {p.name: p.count_in_log("LISTEN connection lost") for p in procs}
    failures_before = {p.name: _store_failures(p) for p in workers}
    failed_before = load.failed_requests
    down_at = time.monotonic()
    await asyncio.to_thread(private_postgres.stop, "fast")

    # The outage is real for everyone: each process lost its LISTEN connection, each worker
    # failed to claim or to record results, both APIs report unhealthy, the load generator
    # saw requests fail, and every lease taken before the stop has expired (so results in
    # flight cannot be written in time, and their deliveries may be claimed again).
    def unaware(p: Proc) -> bool:
        if p.count_in_log("LISTEN connection lost") <= lost_before[p.name]:
            return True
        return p.role == "worker" and _store_failures(p) <= failures_before[p.name]

    async def outage() -> Outage:
        return Outage(
            unaware=[p.name for p in procs if unaware(p)],
            health=[await _health(p.port or 0) for p in apis],
            failed_requests=load.failed_requests - failed_before,
            leases_expired=time.monotonic() >= down_at + LEASE_S,
        )

    seen = await _eventually(outage, Outage.complete, "the outage seen", cluster.logs, 30)
    await asyncio.to_thread(private_postgres.start)
    up_at = time.monotonic()

    async def healthy() -> list[int]:
        return [await _health(p.port or 0) for p in apis]

    await _eventually(healthy, lambda h: h == [204, 204], "APIs healthy", cluster.logs, 30)
    result = await sending
    assert not result.failed, (
        f"{len(result.failed)} messages still failed after retrying for 60s: "
        f"{result.errors}\n{cluster.logs()}"
    )
    not_503 = {e for e in result.errors if e.startswith("HTTP 5") and e != "HTTP 503"}
    assert not not_503, f"the outage must answer 503, got {result.errors}\n{cluster.logs()}"
    expected = result.expected(paths.values())
    await wait_delivered(receiver, expected, timeout=120, explain=cluster.logs)
    recovered = (receiver.last_new_at or up_at) - up_at

    # Nothing stuck: the accepted messages' deliveries all succeeded, nothing is `sending`.
    # (A request that failed may still have created its message: those are delivered too.)
    accepted = list(result.accepted.values())

    async def accepted_statuses() -> dict[int, int]:
        rows = await db_fetch(
            url,
            "SELECT status, count(*) AS n FROM deliveries WHERE message_id = ANY($1::text[])"
            " GROUP BY status",
            accepted,
        )
        return {r["status"]: r["n"] for r in rows}

    await _eventually(
        accepted_statuses,
        lambda c: c == {SUCCEEDED: len(expected)},
        "every accepted message's deliveries succeeded",
        cluster.logs,
    )
    await _eventually(
        lambda: delivery_status_counts(url),
        lambda c: set(c) == {SUCCEEDED},
        "every delivery succeeded, none left sending",
        cluster.logs,
    )
    assert all(p.alive for p in procs), cluster.logs()
    extra = sum(n - 1 for n in receiver.duplicates().values())
    report_throughput(
        f"{MESSAGES} msgs x {ENDPOINTS}, database down {up_at - down_at:.1f}s: "
        f"{len(result.accepted)} accepted, failed requests {dict(result.errors)}, "
        f"outage seen as {seen.health}; all delivered {recovered:.1f}s after restart "
        f"({(time.monotonic() - started):.0f}s total); duplicate receipts: {extra}"
    )


@pytest.mark.timeout(240)
async def test_rolling_restart_of_workers_loses_nothing_and_leaves_nothing_sending(
    fresh_postgres_url: str,
    make_cluster: Callable[..., Cluster],
    make_receiver: Callable[..., Awaitable[CountingReceiver]],
    report_throughput: Callable[[str], None],
) -> None:
    """Each worker in turn gets SIGTERM under load and is replaced. A graceful stop
    finishes or hands back its deliveries: nothing is lost, nothing stays `sending`, and no
    delivery is sent twice."""
    url = fresh_postgres_url
    receiver = await make_receiver(RECEIVER_DELAY_S)
    cluster = make_cluster(url, lease_s=str(LEASE_S))
    cluster.migrate()
    apis, workers = await cluster.start(apis=2, workers=3)
    app_id, paths = await create_app_and_endpoints(
        apis[0].port or 0, cluster.admin_token, receiver, ENDPOINTS
    )
    # A steady load that runs until the three stop-and-replace rounds are over, however long
    # the machine takes to start the replacements (bounded by ROLLING_MAX messages).
    load = LoadGenerator(
        cluster.api_ports, cluster.admin_token, app_id, ROLLING_MAX, rate=ROLLING_RATE
    )
    started = time.monotonic()
    sending = asyncio.create_task(load.run())

    stop_seconds = []
    in_sending = []  # deliveries in status `sending` (on any worker) at each SIGTERM
    replacements: list[Proc] = []
    for old in workers:
        # Each round starts after more deliveries have gone through, with the load running.
        await receiver.wait_unique(receiver.unique + ROLLING_STEP, explain=cluster.logs)
        assert not sending.done(), "the load ran out before the restarts were over"
        in_sending.append(len(await sending_now(url, paths)))
        t = time.monotonic()
        code = await cluster.signal(old, signal.SIGTERM)
        stop_seconds.append(time.monotonic() - t)
        assert code == 0, f"{old.name} exited {code}\n{cluster.logs()}"
        assert "hookpost stopped" in old.log_text(), cluster.logs()
        # Replace it at once, without waiting for the replacement to be up (start-up takes
        # seconds on a busy machine, and the next round must still find work under way).
        replacements.append(cluster.start_worker())
    await cluster.wait_ready(*replacements)
    # Only replacements are left: they must carry on.
    await receiver.wait_unique(receiver.unique + ROLLING_STEP, explain=cluster.logs)
    await _until(lambda: load.done >= ROLLING_MIN, f"{ROLLING_MIN} messages sent", cluster.logs)
    load.stop()

    result = await sending
    assert not result.failed, f"requests failed: {result.errors}\n{cluster.logs()}"
    expected = result.expected(paths.values())
    total = len(expected)
    await wait_delivered(receiver, expected, timeout=120, explain=cluster.logs)
    drained = (receiver.last_new_at or started) - started
    statuses = await _all_final(url, total, cluster.logs)
    assert statuses.get(SENDING, 0) == 0
    duplicates = receiver.duplicates()
    assert not duplicates, (
        f"{len(duplicates)} deliveries were sent twice across graceful restarts, e.g. "
        f"{sorted(duplicates.items())[:5]}\n{cluster.logs()}"
    )
    report_throughput(
        f"{len(result.accepted)} msgs x {ENDPOINTS}, 3 rolling SIGTERMs: {total / drained:,.0f} "
        f"deliveries/s end-to-end (paced at {ROLLING_RATE:.0f} msg/s); in sending at each "
        f"SIGTERM: {in_sending}; stops took {', '.join(f'{s:.1f}s' for s in stop_seconds)}"
    )


@pytest.mark.timeout(120)
async def test_sigterm_of_a_saturated_worker_keeps_to_the_grace_period(
    fresh_postgres_url: str,
    make_cluster: Callable[..., Cluster],
    make_receiver: Callable[..., Awaitable[CountingReceiver]],
) -> None:
    """A worker with every in-flight slot taken by an endpoint that does not answer still
    stops within ``shutdown_grace_s`` of SIGTERM, and hands its deliveries back at once
    (the lease is far longer than the test, so only the hand-back can explain the prompt
    redelivery by the next worker)."""
    url = fresh_postgres_url
    slots, messages, grace = 8, 20, 1.0
    receiver = await make_receiver(delay_s=60.0)  # holds every request open
    cluster = make_cluster(
        url,
        lease_s="300",
        max_in_flight=str(slots),
        shutdown_grace_s=str(grace),
        request_timeout_s="60",
    )
    cluster.migrate()
    (api,), (worker,) = await cluster.start(apis=1, workers=1)
    app_id, paths = await create_app_and_endpoints(
        api.port or 0, cluster.admin_token, receiver, endpoints=1
    )
    result = await LoadGenerator([api.port or 0], cluster.admin_token, app_id, messages).run()
    assert len(result.accepted) == messages, f"{result.errors}\n{cluster.logs()}"
    await receiver.wait_unique(slots, explain=cluster.logs)  # saturated: all slots in flight

    t = time.monotonic()
    code = await cluster.signal(worker, signal.SIGTERM, timeout=grace + 15)
    took = time.monotonic() - t
    assert code == 0, cluster.logs()
    assert took < grace + 5, f"stopping took {took:.1f}s (grace {grace}s)\n{cluster.logs()}"
    statuses = await delivery_status_counts(url)
    assert statuses.get(SENDING, 0) == 0, f"{statuses}\n{cluster.logs()}"

    receiver.delay_s = 0.0
    await cluster.wait_ready(cluster.start_worker())
    await wait_delivered(
        receiver, result.expected(paths.values()), timeout=30, explain=cluster.logs
    )
