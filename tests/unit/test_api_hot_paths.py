"""The API's hot paths, made cheaper, must still say exactly the same things."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from datetime import UTC, datetime

from hookpost.api import mapping
from hookpost.worker_process import WorkerProcess


def reference_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


def test_iso_timestamps_are_right_across_seconds_in_any_order() -> None:
    """``iso`` remembers the last second it formatted: going back and forth between seconds,
    across midnight and the epoch, must never reuse the wrong one."""
    rng = random.Random(6)
    base = 1_714_607_999_000  # 2024-05-01T23:59:59Z: the next second is another day
    samples = [base + rng.randrange(-1500, 2500) for _ in range(2000)]
    samples += [0, 999, 1000, 86_399_999, 86_400_000, base, base + 1000, base, 253_402_300_799_999]
    for ms in samples:
        assert mapping.iso(ms) == reference_iso(ms), ms


async def test_the_commits_of_one_loop_turn_wake_the_worker_child_once() -> None:
    """``serve``'s wake pipe: one byte per event-loop turn that committed messages, written
    right after that turn, not one per message."""
    proc = WorkerProcess("sqlite:///unused.db", grace_s=1.0)
    read_fd, proc._wake_w = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        for _ in range(3):
            for _ in range(25):  # a group of commits, answered in one turn
                proc.wake()
            await asyncio.sleep(0)  # the turn ends; the write was scheduled behind it
            await asyncio.sleep(0)
            assert os.read(read_fd, 100) == b"\x01"
        # Off the event loop (no turn to share), a wake-up is written at once.
        await asyncio.to_thread(proc.wake)
        assert os.read(read_fd, 100) == b"\x01"
    finally:
        os.close(read_fd)
        os.close(proc._wake_w)
        shutil.rmtree(proc.metrics_socket.parent)
