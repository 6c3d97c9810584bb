"""The background-task runner checks for tasks when woken, but not once per wake: the
new-work signal comes with every message, and each check is a claim (a write transaction on
SQLite) that would compete with the deliveries."""

from __future__ import annotations

import asyncio
from typing import cast

from hookpost.services.tasks import WAKE_GAP_S, TaskRunner, TaskService
from tests.support.polling import eventually


class CountingService:
    """Stands in for TaskService.run_one: counts the checks, finds no task."""

    def __init__(self) -> None:
        self.checks = 0

    async def run_one(self, lease_ms: int) -> bool:
        self.checks += 1
        return False


async def test_a_stream_of_wakes_checks_at_most_once_per_gap() -> None:
    service = CountingService()
    runner = TaskRunner(cast(TaskService, service), poll_s=60.0)
    runner.start()
    try:

        async def checks() -> int:
            return service.checks

        await eventually(checks, lambda n: n == 1)  # the check at start
        loop = asyncio.get_running_loop()
        began = loop.time()
        wakes = 0
        while loop.time() - began < 4 * WAKE_GAP_S:  # a message every millisecond
            runner.wake()
            wakes += 1
            await asyncio.sleep(0.001)
        elapsed = loop.time() - began
        assert wakes > 100
        assert 1 <= service.checks - 1 <= elapsed / WAKE_GAP_S + 1, service.checks
    finally:
        await runner.stop()


async def test_a_wake_after_a_quiet_spell_checks_at_once() -> None:
    service = CountingService()
    runner = TaskRunner(cast(TaskService, service), poll_s=60.0)
    runner.start()
    try:

        async def checks() -> int:
            return service.checks

        await eventually(checks, lambda n: n == 1)
        await asyncio.sleep(WAKE_GAP_S)  # a quiet spell, longer than the gap
        runner.wake()  # not left for the 60-second poll
        await eventually(checks, lambda n: n == 2, timeout=10)
    finally:
        await runner.stop()
