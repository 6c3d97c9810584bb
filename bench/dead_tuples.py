"""The dead-tuple side of a long drain on PostgreSQL (issue 26), without HTTP.

    python -m bench.dead_tuples --rows 400000 [--autovacuum default|tuned|off]

Loads ``rows`` due deliveries on two endpoints into a throwaway database (bench.due_backlog),
then drains them through the store as a worker would, minus the requests: claim 128 (32 per
endpoint in flight, as the worker's cap), write every result as a success, repeat. Finished
deliveries leave dead entries at the head of each endpoint's queue in the index until vacuum
runs; this prints the drain rate and the claim's cost per window of 20,000 deliveries, with
the table's dead tuples and autovacuum runs, so the settings can be compared. ``tuned`` sets
the per-table autovacuum parameters that migration 0007 would set; ``off`` disables
autovacuum on the table (the worst case).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg

from bench.due_backlog import insert_postgres
from hookpost.domain import ids
from hookpost.domain.models import Attempt, AttemptResult, AttemptStatus, DeliveryStatus
from hookpost.store.migrate import upgrade
from hookpost.store.postgres import sql
from hookpost.store.postgres.store import PostgresStore
from hookpost.store.secretbox import AeadBox, parse_main_key
from hookpost.wiring import new_main_key

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TUNED = (
    "autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 20000, "
    "autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 20000, "
    "autovacuum_vacuum_cost_delay = 0"
)
WINDOW = 20_000


async def _stats(conn: asyncpg.Connection) -> dict[str, Any]:
    plan = [r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql.CLAIM_HEADS)]
    r = await conn.fetchrow(
        "SELECT n_dead_tup, autovacuum_count, "
        "pg_relation_size('ix_deliveries_endpoint_due') AS ix_bytes "
        "FROM pg_stat_user_tables WHERE relname = 'deliveries'"
    )
    heads_ms = next(ln for ln in plan if ln.startswith("Execution Time")).split()[2]
    buffers = next(ln for ln in plan if "Buffers" in ln).strip()
    return {**dict(r), "heads": f"{heads_ms} ms {buffers}"}


async def drain(url: str, main_key: str, rows: int) -> None:
    store = PostgresStore(url, AeadBox(parse_main_key(main_key)))
    await store.open()
    conn = await asyncpg.connect(url)
    done = 0
    t_window = time.perf_counter()
    claim_s = 0.0
    claims = 0
    try:
        while done < rows:
            now = int(time.time() * 1000)
            t0 = time.perf_counter()
            batch = await store.claim_due(128, 60_000, now, max_per_endpoint=32)
            claim_s += time.perf_counter() - t0
            claims += 1
            if not batch:
                break
            results = [
                AttemptResult(
                    attempt=Attempt(
                        id=ids.new_id(ids.ATTEMPT, now),
                        app_id=c.app_id,
                        message_id=c.message_id,
                        endpoint_id=c.endpoint_id,
                        url=c.url,
                        status=AttemptStatus.SUCCESS,
                        trigger=c.trigger,
                        response_status_code=200,
                        response="",
                        duration_ms=1,
                        created_at=now,
                    ),
                    delivery_id=c.delivery_id,
                    lease=c.lease,
                    next_status=DeliveryStatus.SUCCEEDED,
                    next_attempt_at=None,
                    disable_endpoint_reason=None,
                    attempts=1,
                )
                for c in batch
            ]
            await store.finish_attempts(results, now, 5 * 24 * 3600 * 1000)
            before = done
            done += len(batch)
            if done // WINDOW > before // WINDOW:
                elapsed = time.perf_counter() - t_window
                stats = await _stats(conn)
                print(
                    f"{done:>9,} drained  {WINDOW / elapsed:>8,.0f}/s  "
                    f"claim {claim_s / claims * 1000:6.2f} ms  dead {stats['n_dead_tup']:>9,}  "
                    f"autovacuums {stats['autovacuum_count']}  "
                    f"index {stats['ix_bytes'] / 2**20:6.1f} MiB  heads {stats['heads']}",
                    flush=True,
                )
                t_window, claim_s, claims = time.perf_counter(), 0.0, 0
    finally:
        await conn.close()
        await store.close()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=400_000)
    p.add_argument("--autovacuum", choices=("default", "tuned", "off"), default="default")
    args = p.parse_args()
    name = f"hookpost_dead_{int(time.time())}"
    server = await asyncpg.connect(SERVER)
    await server.execute(f"CREATE DATABASE {name}")
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        conn = await asyncpg.connect(url)
        if args.autovacuum == "tuned":
            await conn.execute(f"ALTER TABLE deliveries SET ({TUNED})")
        elif args.autovacuum == "off":
            await conn.execute("ALTER TABLE deliveries SET (autovacuum_enabled = false)")
        await conn.close()
        main_key = new_main_key()
        loaded = await asyncio.to_thread(
            insert_postgres, url, args.rows, 2, "http://127.0.0.1:9/", 256, main_key
        )
        print(f"loaded {loaded['rows']:,} due in {loaded['seconds']:.0f}s; {args.autovacuum}")
        conn = await asyncpg.connect(url)
        await conn.execute("ANALYZE")
        await conn.close()
        await drain(url, main_key, loaded["rows"])
    finally:
        await server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await server.close()


if __name__ == "__main__":
    asyncio.run(main())
