"""The `cleanup` scenario's two halves (run as bench child processes):

* ``fill``: an old backlog written straight into the database: ``--messages`` messages spread
  over the ``--days`` days before now, each with one succeeded delivery and two attempts, on an
  app of their own (SQLite: generated here; PostgreSQL: bench/sql/retention_rows.sql's way).
* ``run``: ``hookpost cleanup --older-than`` as the workers run it (RetentionService over the
  store), timing each batch: on SQLite a batch is one write transaction, so the longest batch
  bounds the longest write-lock hold; on PostgreSQL, each ``claim_due`` of a probe worker's
  store is timed meanwhile (the claim latency a cleanup may stall).
Each prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from typing import Any

import asyncpg

from bench.common import emit
from hookpost.domain import ids
from hookpost.domain.retention import DAY_MS

APP = "app_bench_cleanup"


def _rows(messages: int, days: int) -> list[tuple[str, int]]:
    now = int(time.time() * 1000)
    span = days * DAY_MS
    return [
        (ids.new_id(ids.MESSAGE, at), at)
        for at in (now - span + span * i // messages for i in range(messages))
    ]


def fill_sqlite(path: str, messages: int, days: int) -> None:
    rows = _rows(messages, days)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO applications (id, name, created_at, updated_at) VALUES (?, 'old', 0, 0)",
            (APP,),
        )
        conn.execute(
            "INSERT INTO endpoints (id, app_id, url, keys, disabled, created_at, updated_at)"
            " VALUES ('ep_bench_cleanup', ?, 'http://127.0.0.1:9/', '[]', 1, 0, 0)",
            (APP,),
        )
        pad = b'{"pad":"' + b"x" * 200 + b'"}'
        conn.executemany(
            "INSERT INTO messages (id, app_id, event_type, payload, created_at,"
            " payload_expires_at) VALUES (?, ?, 'bench.old', ?, ?, ?)",
            [(m, APP, pad, at, at + 90 * DAY_MS) for m, at in rows],
        )
        conn.executemany(
            "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger,"
            " updated_at) VALUES (?, ?, 'ep_bench_cleanup', 2, 2, 0, ?)",
            [(APP, m, at) for m, at in rows],
        )
        conn.executemany(
            "INSERT INTO attempts (id, app_id, message_id, endpoint_id, url, status, trigger,"
            " response_status_code, response, duration_ms, created_at)"
            " VALUES (?, ?, ?, 'ep_bench_cleanup', 'http://127.0.0.1:9/', 0, 0, 200, ?, 12, ?)",
            [
                (ids.new_id(ids.ATTEMPT, at + k), APP, m, "r" * 100, at + k)
                for m, at in rows
                for k in range(2)
            ],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def fill_postgres(url: str, messages: int, days: int) -> None:
    rows = _rows(messages, days)
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO applications (id, name, created_at, updated_at)"
                " VALUES ($1, 'old', 0, 0)",
                APP,
            )
            await conn.execute(
                "INSERT INTO endpoints (id, app_id, url, keys, disabled, created_at, updated_at)"
                " VALUES ('ep_bench_cleanup', $1, 'http://127.0.0.1:9/', '[]', true, 0, 0)",
                APP,
            )
            pad = b'{"pad":"' + b"x" * 200 + b'"}'
            await conn.copy_records_to_table(
                "messages",
                columns=[
                    "id",
                    "app_id",
                    "event_type",
                    "payload",
                    "created_at",
                    "payload_expires_at",
                ],
                records=[(m, APP, "bench.old", pad, at, at + 90 * DAY_MS) for m, at in rows],
            )
            await conn.copy_records_to_table(
                "deliveries",
                columns=["app_id", "message_id", "endpoint_id", "status", "updated_at"],
                records=[(APP, m, "ep_bench_cleanup", 2, at) for m, at in rows],
            )
            await conn.copy_records_to_table(
                "attempts",
                columns=[
                    "id",
                    "app_id",
                    "message_id",
                    "endpoint_id",
                    "url",
                    "status",
                    "trigger",
                    "response_status_code",
                    "response",
                    "duration_ms",
                    "created_at",
                ],
                records=[
                    (
                        ids.new_id(ids.ATTEMPT, at + k),
                        APP,
                        m,
                        "ep_bench_cleanup",
                        "u",
                        0,
                        0,
                        200,
                        "r" * 100,
                        12,
                        at + k,
                    )
                    for m, at in rows
                    for k in range(2)
                ],
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


class _Timed:
    """The store, with each retention batch timed."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.batches: list[float] = []
        self.longest: tuple[float, float] = (0.0, 0.0)  # (duration, wall-clock start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def _timed(self, coro: Any) -> Any:
        t0, wall = time.perf_counter(), time.time()
        try:
            return await coro
        finally:
            took = time.perf_counter() - t0
            self.batches.append(took)
            self.longest = max(self.longest, (took, wall))

    async def erase_expired_payloads(self, now_ms: int, limit: int) -> int:
        result: int = await self._timed(self._store.erase_expired_payloads(now_ms, limit))
        return result

    async def delete_old_messages(self, *args: Any) -> Any:
        return await self._timed(self._store.delete_old_messages(*args))


async def _probe_claims(
    store: Any, url: str, stop: asyncio.Event, out: list[float], longest: list[tuple[float, float]]
) -> None:
    """Claim on the backlog's own endpoint (disabled: nothing is due there) and time it, every
    10 ms; ``longest`` keeps the longest claim's (duration, wall-clock start). Every other
    endpoint is excluded, so the probe never takes a delivery of the e2e load from its worker
    (the claim still reads every endpoint's head, as a worker's does)."""
    conn = await asyncpg.connect(url)
    try:
        while not stop.is_set():
            others = [
                r["id"]
                for r in await conn.fetch("SELECT id FROM endpoints WHERE id <> 'ep_bench_cleanup'")
            ]
            t0, wall = time.perf_counter(), time.time()
            await store.claim_due(1, 1000, int(time.time() * 1000), exclude_endpoints=others)
            took = time.perf_counter() - t0
            out.append(took)
            if took > longest[0][0]:
                longest[0] = (took, wall)
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def _sample_waits(url: str, stop: asyncio.Event, out: list[tuple[float, str]]) -> None:
    """What PostgreSQL's active backends wait on, every 50 ms, with the wall-clock time: to
    tell a lock from I/O when a claim stalls."""
    conn = await asyncpg.connect(url)
    try:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT backend_type, wait_event_type, wait_event, left(query, 40) AS q"
                " FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND (state = 'active' OR backend_type <> 'client backend')"
                " AND wait_event IS NOT NULL"
            )
            now = time.time()
            out.extend(
                (now, f"{r['backend_type']}:{r['wait_event_type']}:{r['wait_event']}:{r['q']}")
                for r in rows
            )
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def _loop_lag(stop: asyncio.Event, worst: list[tuple[float, float]]) -> None:
    """How late this process's event loop wakes a 10-ms sleep: a stall measured in the batches
    and claims that is this process's own (not the server's) shows here."""
    while not stop.is_set():
        t0, wall = time.perf_counter(), time.time()
        await asyncio.sleep(0.01)
        late = time.perf_counter() - t0 - 0.01
        if late > worst[0][0]:
            worst[0] = (late, wall)


def _waits_during(samples: list[tuple[float, str]], start: float, seconds: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for at, what in samples:
        if start <= at <= start + seconds:
            counts[what] = counts.get(what, 0) + 1
    return counts


async def run_cleanup(url: str, older_than_days: int, batch: int) -> dict[str, Any]:
    from hookpost.domain.retention import RetentionPolicy
    from hookpost.services.retention import RetentionService
    from hookpost.settings import Settings
    from hookpost.store.rows import PlainBox
    from hookpost.wiring import build_store

    # The store alone (no secrets are read): the old backlog's endpoint has no sealed keys.
    store = build_store(Settings(database_url=url), PlainBox())
    await store.open()
    try:
        timed = _Timed(store)
        service = RetentionService(timed, RetentionPolicy(), batch=batch)  # type: ignore[arg-type]
        claims: list[float] = []
        longest_claim = [(0.0, 0.0)]
        waits: list[tuple[float, str]] = []
        lag = [(0.0, 0.0)]
        stop = asyncio.Event()
        probes = [asyncio.create_task(_loop_lag(stop, lag))]
        if not url.startswith("sqlite"):
            probe = _probe_claims(store, url, stop, claims, longest_claim)
            probes.append(asyncio.create_task(probe))
            probes.append(asyncio.create_task(_sample_waits(url, stop, waits)))
        t0 = time.perf_counter()
        done = await service.cleanup(older_than_days * DAY_MS)
        seconds = time.perf_counter() - t0
        stop.set()
        for probe in probes:
            await probe
        batches = sorted(timed.batches)
        claims.sort()
        return {
            "payloads": done.payloads,
            "messages": done.messages,
            "deliveries": done.deliveries,
            "attempts": done.attempts,
            "seconds": round(seconds, 2),
            "rows_per_s": round((done.messages + done.deliveries + done.attempts) / seconds)
            if seconds
            else None,
            "batches": len(batches),
            "longest_batch_ms": round(batches[-1] * 1000, 1) if batches else None,
            "p50_batch_ms": round(batches[len(batches) // 2] * 1000, 1) if batches else None,
            "claim_probe_max_ms": round(claims[-1] * 1000, 1) if claims else None,
            "claim_probe_p99_ms": round(claims[int(len(claims) * 0.99)] * 1000, 1)
            if claims
            else None,
            # When the longest batch and claim started (UTC, to match the server's log), and
            # what the server's backends waited on meanwhile (samples every 50 ms).
            "longest_batch_at": _utc(timed.longest[1]),
            "longest_claim_at": _utc(longest_claim[0][1]) if claims else None,
            "waits_during_longest_claim": _waits_during(waits, *reversed(longest_claim[0]))
            if claims
            else None,
            "loop_lag_max_ms": round(lag[0][0] * 1000, 1),
            "loop_lag_max_at": _utc(lag[0][1]),
        }
    finally:
        await store.close()


def _utc(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.cleanup")
    parser.add_argument("what", choices=("fill", "run"))
    parser.add_argument("--db", required=True)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--older-than-days", type=int, default=30)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    t0 = time.monotonic()
    if args.what == "fill":
        if args.db.startswith("sqlite:///"):
            fill_sqlite(args.db.removeprefix("sqlite:///"), args.messages, args.days)
        else:
            asyncio.run(fill_postgres(args.db, args.messages, args.days))
        emit({"filled": args.messages, "seconds": round(time.monotonic() - t0, 1)})
    else:
        emit(asyncio.run(run_cleanup(args.db, args.older_than_days, args.batch)))


if __name__ == "__main__":
    main()
