"""Micro-benchmark: how long SQLite's writer thread holds the write lock per message created.

The write lock (``<db>.writelock``, shared by ``hookpost serve``'s API and its worker child) is
what the two processes queue for, so its hold time per message bounds ingest with deliveries
running. Each ``sqlite3`` call inside a transaction lets go of the GIL, and getting it back
from a busy thread waits for the switch interval: the statement count per message is what this
shows. It creates ``--messages`` messages (64 at a time, 1 KB payloads) to an app with
``--fan-out`` endpoints through ``SqliteStore.create_message``, once with the process otherwise
idle and once with a thread spinning in Python beside the event loop (a busy API process), and
prints the lock hold time (the writer's transactions, commits included) per message.

    .venv/bin/python -m bench.sqlite_lock [--fan-out 22] [--messages 3000]

Run it from two checkouts to compare them (the ``hookpost`` package is imported from the
current directory).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd()))  # measure the checkout we are run from

from hookpost.domain.ids import APP, ENDPOINT, MESSAGE, new_id
from hookpost.domain.models import Application, Endpoint, Message, SigningKey
from hookpost.store.migrate import upgrade
from hookpost.store.rows import PlainBox
from hookpost.store.sqlite.executor import tune_process
from hookpost.store.sqlite.store import SqliteStore

T0 = 1_700_000_000_000
PAYLOAD = b'{"data":"' + b"x" * 1000 + b'"}'
CONCURRENCY = 64


class _Spinner:
    """A thread that wants the GIL all the time, like a saturated event loop."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        x = 0
        while not self._stop.is_set():
            for i in range(1000):
                x += i * i

    def __enter__(self) -> _Spinner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _measure(fan_out: int, messages: int, busy: bool) -> dict[str, float]:
    path = Path(tempfile.mkdtemp(prefix="hookpost-bench-lock-")) / "hookpost.db"
    upgrade(f"sqlite:///{path}")
    tune_process()  # as the hookpost CLI processes run
    store = SqliteStore(str(path), PlainBox(), synchronous="FULL")
    await store.open()
    try:
        app = await store.create_app(
            Application(id=new_id(APP, T0), name="bench", created_at=T0, updated_at=T0)
        )
        for i in range(fan_out):
            await store.create_endpoint(
                Endpoint(
                    id=new_id(ENDPOINT, T0),
                    app_id=app.id,
                    url=f"https://receiver.example/{i}",
                    keys=[SigningKey("whsec_" + new_id("k")[2:])],
                    created_at=T0,
                    updated_at=T0,
                )
            )
        held = [0.0, 0]
        executor: Any = store._db
        transaction = executor._transaction

        def timed(conn: Any, batch: Any) -> Any:
            started = time.perf_counter()
            try:
                return transaction(conn, batch)
            finally:
                held[0] += time.perf_counter() - started
                held[1] += 1

        executor._transaction = timed
        gate = asyncio.Semaphore(CONCURRENCY)

        async def create(i: int) -> None:
            msg = Message(
                id=new_id(MESSAGE, T0 + i),
                app_id=app.id,
                event_type="invoice.paid",
                payload=PAYLOAD,
                created_at=T0 + i,
            )
            async with gate:
                created = await store.create_message(msg, T0)
            assert created.deliveries == fan_out

        started = time.perf_counter()
        if busy:
            with _Spinner():
                await asyncio.gather(*(create(i) for i in range(messages)))
        else:
            await asyncio.gather(*(create(i) for i in range(messages)))
        wall = time.perf_counter() - started
    finally:
        await store.close()
    return {
        "held_ms_per_msg": held[0] * 1000 / messages,
        "msgs_per_group": messages / max(held[1], 1),
        "msgs_per_s": messages / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fan-out", type=int, default=22)
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    print(f"{Path.cwd()}: {args.messages} messages x {args.fan_out} endpoints")
    for busy in (False, True):
        r = asyncio.run(_measure(args.fan_out, args.messages, busy))
        print(
            f"  {'busy thread' if busy else 'idle process'}: write lock held "
            f"{r['held_ms_per_msg']:.3f} ms/message, {r['msgs_per_group']:.0f} messages/group, "
            f"{r['msgs_per_s']:,.0f} messages/s"
        )


if __name__ == "__main__":
    main()
