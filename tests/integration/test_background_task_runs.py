"""Background tasks are durable and run once: a task outlives the process that created it
and the runner that crashed holding it (its lease expires, another runner finishes it), and
two workers on one PostgreSQL database never both run one task."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hookpost.domain import tasks as t
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import BackgroundTask
from hookpost.settings import Settings
from hookpost.store.secretbox import generate_main_key
from hookpost.wiring import Hookpost
from tests.support.polling import eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.timeout(90)
HOUR_MS = 3_600_000


@asynccontextmanager
async def running(url: str, key: str, *, worker: bool) -> AsyncIterator[Hookpost]:
    settings = Settings(
        database_url=url,
        allow_subnets="127.0.0.0/8",
        retry_schedule=(0,),
        poll_interval_s=0.05,
        **({} if url.startswith("sqlite") else {"main_key": key}),
    )
    hp = Hookpost(settings)
    await hp.start(worker=worker)
    try:
        yield hp
    finally:
        await hp.stop()


async def finished(hp: Hookpost, task_id: str) -> BackgroundTask:
    return await eventually(
        lambda: hp.services.tasks.get(task_id), lambda x: x.status != t.RUNNING, timeout=30.0
    )


async def endpoint_missing(hp: Hookpost, receiver: Receiver, path: str, messages: int) -> Any:
    """An application whose endpoint is created after ``messages`` messages: all missing."""
    app = await hp.apps.create(name=path.strip("/"))
    for i in range(messages):
        await hp.messages.send(app.id, "a.b", {"i": i})
    return await hp.endpoints.create(app.id, NewEndpoint(url=receiver.url(path)))


async def test_a_task_outlives_its_process_and_a_crashed_runner(
    any_database_url: str, receiver: Receiver
) -> None:
    key = generate_main_key()
    async with running(any_database_url, key, worker=False) as api:
        ep = await endpoint_missing(api, receiver, "/late", 3)
        since = int(time.time() * 1000) - HOUR_MS
        task = await api.services.tasks.replay_missing(ep.app_id, ep.id, since)
        # a runner takes it and dies with the process: its lease (a short one) is all that is left
        crashed = await api.store.claim_task("crashed", 300, int(time.time() * 1000))
        assert crashed is not None and crashed.id == task.id
    assert receiver.on("/late") == []

    async with running(any_database_url, key, worker=True) as worker:
        done = await finished(worker, task.id)
        assert (done.status, done.data, done.runs) == (t.FINISHED, {"messagesSent": 3}, 2)
        await receiver.wait_for(3, "/late")
    assert len(receiver.on("/late")) == 3
    assert len({r.webhook_id for r in receiver.on("/late")}) == 3


@pytest.mark.postgres
async def test_two_workers_on_postgres_run_each_task_once(
    migrated_postgres_url: str, receiver: Receiver
) -> None:
    key = generate_main_key()
    url = migrated_postgres_url
    async with (
        running(url, key, worker=True) as one,
        running(url, key, worker=True) as two,
    ):
        endpoints = [await endpoint_missing(one, receiver, f"/ep{i}", 2) for i in range(6)]
        since = int(time.time() * 1000) - HOUR_MS
        tasks = []
        for i, ep in enumerate(endpoints):
            creator = one if i % 2 else two
            tasks.append(await creator.services.tasks.replay_missing(ep.app_id, ep.id, since))
        done = [await finished(one, task.id) for task in tasks]
        assert [(d.status, d.runs, d.data) for d in done] == [
            (t.FINISHED, 1, {"messagesSent": 2})
        ] * 6
        for i in range(6):
            await receiver.wait_for(2, f"/ep{i}")
    assert sorted(r.path for r in receiver.requests) == sorted(
        f"/ep{i}" for i in range(6) for _ in "ab"
    )
