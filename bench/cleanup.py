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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def _timed(self, coro: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await coro
        finally:
            self.batches.append(time.perf_counter() - t0)

    async def erase_expired_payloads(self, now_ms: int, limit: int) -> int:
        result: int = await self._timed(self._store.erase_expired_payloads(now_ms, limit))
        return result

    async def delete_old_messages(self, *args: Any) -> Any:
        return await self._timed(self._store.delete_old_messages(*args))


async def _probe_claims(store: Any, stop: asyncio.Event, out: list[float]) -> None:
    """Claim (nothing is due on the probe's disabled endpoint) and time it, every 10 ms."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await store.claim_due(1, 1000, int(time.time() * 1000), exclude_endpoints=())
        out.append(time.perf_counter() - t0)
        await asyncio.sleep(0.01)


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
        stop = asyncio.Event()
        probe = None
        if not url.startswith("sqlite"):
            probe = asyncio.create_task(_probe_claims(store, stop, claims))
        t0 = time.perf_counter()
        done = await service.cleanup(older_than_days * DAY_MS)
        seconds = time.perf_counter() - t0
        stop.set()
        if probe is not None:
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
        }
    finally:
        await store.close()


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
