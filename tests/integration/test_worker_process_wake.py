"""``serve``'s wake pipe from the API process to its worker child (a real pipe)."""

from __future__ import annotations

import asyncio
import os
import shutil

from hookpost.worker_process import WorkerProcess


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
