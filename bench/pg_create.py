"""Micro-benchmark: PostgresStore.create_message from 64 concurrent tasks, with the group
commit (concurrent creates share one statement) and without it (one statement each), in the
same run. Prints CPU-ms per message: this process (asyncpg and the store) and the PostgreSQL
server processes (all of them: run it on an otherwise idle server).

    .venv/bin/python -m bench.pg_create [--url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import uvloop

from bench.pg import DEFAULT_SERVER, PgDatabases
from hookpost.domain import ids
from hookpost.domain.models import Application, Endpoint, Message
from hookpost.store.migrate import upgrade
from hookpost.store.postgres.store import PostgresStore
from hookpost.store.rows import PlainBox

CONCURRENCY = 64
PAYLOAD = b'{"data":"' + b"x" * 1000 + b'"}'


def postgres_cpu_s() -> float:
    """utime + stime of every process named postgres*."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def measure(url: str, n: int, grouped: bool) -> dict[str, float]:
    store = PostgresStore(url, PlainBox())
    await store.open()
    try:
        if not grouped:
            store._create_batch._max_batch = 1  # every create a statement of its own
            store._create_batch._max_running = CONCURRENCY
        now = int(time.time() * 1000)
        apps = []
        for i in range(8):
            app = await store.create_app(Application(id=ids.new_id(ids.APP, now), name=f"a{i}"))
            await store.create_endpoint(
                Endpoint(id=ids.new_id(ids.ENDPOINT, now), app_id=app.id, url="http://x/")
            )
            apps.append(app.id)
        todo = iter(range(n))

        async def client() -> None:
            for i in todo:
                at = int(time.time() * 1000)
                msg = Message(ids.new_id(ids.MESSAGE, at), apps[i % 8], "e.t", PAYLOAD)
                await store.create_message(msg, at)

        cpu0, pg0, wall0 = time.process_time(), postgres_cpu_s(), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        cpu, pg = time.process_time() - cpu0, postgres_cpu_s() - pg0
        wall = time.perf_counter() - wall0
        return {"rate": n / wall, "client_ms": 1000 * cpu / n, "postgres_ms": 1000 * pg / n}
    finally:
        await store.close()


def run(server: str, n: int) -> None:
    dbs = PgDatabases(server)
    try:
        for i, grouped in enumerate((False, True, False, True)):
            url = dbs.create(f"create{i}")
            upgrade(url)
            r = uvloop.run(measure(url, n, grouped))
            dbs.drop(url)
            label = "group commit" if grouped else "one by one  "
            print(
                f"{label}: {r['rate']:7,.0f} msg/s  client {r['client_ms']:.3f} CPU-ms/msg"
                f"  postgres {r['postgres_ms']:.3f} CPU-ms/msg"
                f"  total {r['client_ms'] + r['postgres_ms']:.3f}"
            )
    finally:
        dbs.drop_all()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=DEFAULT_SERVER, help="a PostgreSQL server (any database)")
    p.add_argument("-n", type=int, default=15_000, help="messages per measurement")
    args = p.parse_args()
    run(args.url, args.n)


if __name__ == "__main__":
    main()
