"""Micro-benchmark: PostgresStore.create_message by matching path (decision 0024). Concurrent
creates to apps whose endpoints filter by exact event types (matched in SQL), by patterns
(`e.*`, matched in SQL), or carry a payload filter (the whole app matched in Python); and the
fan-out of one message to 1,000 endpoints without and with payload filters. Prints msg/s and
CPU-ms per message of this process and of the PostgreSQL server processes (run it on an
otherwise idle server).

    .venv/bin/python -m bench.pg_matching [--url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import uvloop

from bench.pg import DEFAULT_SERVER, PgDatabases
from bench.pg_create import postgres_cpu_s
from hookpost.domain import ids
from hookpost.domain.models import Application, Endpoint, Message
from hookpost.store.migrate import upgrade
from hookpost.store.postgres.store import PostgresStore
from hookpost.store.rows import PlainBox

PAYLOAD = (
    b'{"amount":1500,"currency":"EUR","customer":{"tier":"gold"},"data":"' + b"x" * 900 + b'"}'
)
APPS = 8


def _endpoints(variant: str, n: int) -> list[dict[str, Any]]:
    """Keyword arguments of each endpoint of an app."""
    if variant == "exact":
        return [{"event_types": ["e.t", f"x.{i}"]} for i in range(n)]
    if variant == "patterns":
        return [{"event_types": ["e.*", f"x.{i}"]} for i in range(n)]
    if variant == "payload-filter":  # one filtered endpoint: the app goes to Python
        return [{"event_types": ["e.t"]} for _ in range(n - 1)] + [
            {"payload_filter": {"amount": {"$gte": 1000}}}
        ]
    if variant == "fanout":
        return [{} for _ in range(n)]
    if variant == "fanout-filtered":  # half of them match
        return [
            {"payload_filter": {"amount": {"$gte": 1000 if i % 2 else 2000}, "currency": "EUR"}}
            for i in range(n)
        ]
    raise ValueError(variant)


async def measure(
    url: str, variant: str, per_app: int, n: int, concurrency: int
) -> dict[str, float]:
    store = PostgresStore(url, PlainBox())
    await store.open()
    try:
        now = int(time.time() * 1000)
        apps = []
        apps_wanted = 1 if variant.startswith("fanout") else APPS
        for i in range(apps_wanted):
            app = await store.create_app(Application(id=ids.new_id(ids.APP, now), name=f"a{i}"))
            for kw in _endpoints(variant, per_app):
                ep = Endpoint(
                    id=ids.new_id(ids.ENDPOINT, now), app_id=app.id, url="http://x/", **kw
                )
                await store.create_endpoint(ep)
            apps.append(app.id)
        todo = iter(range(n))
        deliveries = 0

        async def client() -> None:
            nonlocal deliveries
            for i in todo:
                at = int(time.time() * 1000)
                msg = Message(ids.new_id(ids.MESSAGE, at), apps[i % len(apps)], "e.t", PAYLOAD)
                created = await store.create_message(msg, at)
                deliveries += created.deliveries  # after the await: tasks share the sum

        cpu0, pg0, wall0 = time.process_time(), postgres_cpu_s(), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        cpu, pg = time.process_time() - cpu0, postgres_cpu_s() - pg0
        wall = time.perf_counter() - wall0
        return {
            "rate": n / wall,
            "deliveries": deliveries / n,
            "client_ms": 1000 * cpu / n,
            "postgres_ms": 1000 * pg / n,
        }
    finally:
        await store.close()


def run(server: str, n: int, fanout_n: int, rounds: int) -> None:
    dbs = PgDatabases(server)
    plan = [
        ("exact", 10, n, 64),
        ("patterns", 10, n, 64),
        ("payload-filter", 10, n, 64),
        ("fanout", 1000, fanout_n, 4),
        ("fanout-filtered", 1000, fanout_n, 4),
    ]
    try:
        for r in range(rounds):
            for variant, per_app, count, concurrency in plan:
                url = dbs.create(f"m{r}{variant.replace('-', '')}")
                upgrade(url)
                out = uvloop.run(measure(url, variant, per_app, count, concurrency))
                dbs.drop(url)
                print(
                    f"{variant:16} {per_app:5} eps  {out['rate']:7,.0f} msg/s"
                    f"  {out['deliveries']:6.1f} deliveries/msg"
                    f"  client {out['client_ms']:.3f} CPU-ms/msg"
                    f"  postgres {out['postgres_ms']:.3f} CPU-ms/msg",
                    flush=True,
                )
    finally:
        dbs.drop_all()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=DEFAULT_SERVER, help="a PostgreSQL server (any database)")
    p.add_argument("-n", type=int, default=5_000, help="messages per 10-endpoint measurement")
    p.add_argument("--fanout-n", type=int, default=100, help="messages per fan-out measurement")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    run(args.url, args.n, args.fanout_n, args.rounds)


if __name__ == "__main__":
    main()
