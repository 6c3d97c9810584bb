"""SQLite: the cost of one claim by batch size, the worker's small claims included (issue 26).

    python -m bench.claim_batches

8 endpoints of one app with 400 due deliveries each; claims of 1, 4 and 128 until 2,400 are
leased. A claim's fixed cost (finding each endpoint's head, one query per share) weighs on the
small claims a steady flow makes; run it in two checkouts to compare.
"""

from __future__ import annotations

import asyncio
import tempfile
import time

from hookpost.store.migrate import upgrade
from hookpost.store.rows import PlainBox
from hookpost.store.sqlite.store import SqliteStore
from tests.contract.support import T0, new_app, new_endpoint, send


async def one(batch: int) -> None:
    path = f"{tempfile.mkdtemp()}/claims.db"
    upgrade(f"sqlite:///{path}")
    store = SqliteStore(path, PlainBox())
    await store.open()
    try:
        app = await new_app(store)
        for _ in range(8):
            await new_endpoint(store, app.id)
        for i in range(400):
            await send(store, app.id, now=T0 + i)
        leased, claims = 0, 0
        t0 = time.perf_counter()
        while leased < 2_400:
            got = await store.claim_due(batch, 60_000, T0 + 10_000, max_per_endpoint=32)
            leased += len(got)
            claims += 1
        took = time.perf_counter() - t0
        print(
            f"batch {batch:>3}: {took / claims * 1e6:6.0f} us per claim, "
            f"{took / leased * 1e6:6.1f} us per delivery"
        )
    finally:
        await store.close()


if __name__ == "__main__":
    for size in (1, 4, 128):
        asyncio.run(one(size))
