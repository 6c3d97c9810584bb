"""GroupCommit: concurrent calls share batches, and every caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from hookpost.store.postgres.batching import GroupCommit


class Recorder:
    """A batch runner that records its batches and can be held open or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_on: int | None = None

    async def run(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [i * 10 for i in items]


async def test_calls_made_together_share_one_batch() -> None:
    rec = Recorder()
    group: GroupCommit[int, int] = GroupCommit(rec.run, max_running=1)
    assert await asyncio.gather(*(group.submit(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert rec.batches == [[0, 1, 2, 3, 4]]


async def test_a_lone_call_does_not_wait() -> None:
    rec = Recorder()
    group: GroupCommit[int, int] = GroupCommit(rec.run)
    assert await group.submit(7) == 70
    assert await group.submit(8) == 80
    assert rec.batches == [[7], [8]]


async def test_calls_queue_behind_running_batches_and_go_together() -> None:
    rec = Recorder()
    rec.gate = asyncio.Event()
    group: GroupCommit[int, int] = GroupCommit(rec.run, max_batch=3, max_running=2)
    first = asyncio.gather(group.submit(0))
    await asyncio.sleep(0)  # batch [0] starts and waits on the gate
    second = asyncio.gather(group.submit(1))
    await asyncio.sleep(0)  # a second runner: batch [1]
    later = asyncio.gather(*(group.submit(i) for i in range(2, 7)))
    await asyncio.sleep(0)
    assert rec.batches == [[0], [1]]  # both runners busy: the rest queue
    rec.gate.set()
    assert await first == [0]
    assert await second == [10]
    assert await later == [20, 30, 40, 50, 60]
    assert sorted(map(len, rec.batches[2:])) == [2, 3]  # max_batch splits the queue


async def test_a_failed_batch_fails_its_callers_only() -> None:
    rec = Recorder()
    rec.fail_on = 2
    group: GroupCommit[int, int] = GroupCommit(rec.run, max_running=1)
    results = await asyncio.gather(*(group.submit(i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert await group.submit(5) == 50  # the group is still usable


async def test_a_cancelled_caller_does_not_hold_up_the_others() -> None:
    rec = Recorder()
    rec.gate = asyncio.Event()
    group: GroupCommit[int, int] = GroupCommit(rec.run, max_running=1)
    doomed = asyncio.ensure_future(group.submit(1))
    kept = asyncio.ensure_future(group.submit(2))
    await asyncio.sleep(0)
    doomed.cancel()
    rec.gate.set()
    assert await kept == 20
    with pytest.raises(asyncio.CancelledError):
        await doomed


async def test_a_runner_that_miscounts_fails_every_caller() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    group: GroupCommit[int, int] = GroupCommit(short)
    results = await asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
