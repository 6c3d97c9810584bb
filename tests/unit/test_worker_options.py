"""The worker's cached delivery options (docs/decisions/0027): endpoint timeouts reach the
sender (clamped to what the lease allows), event-type schedules decide retries, and changes
are picked up within ``options_refresh_s``. Over the in-memory queue, on the worker's clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hookpost.delivery.http import Response
from hookpost.delivery.worker import DeliveryWorker, WorkerConfig
from hookpost.domain.models import DeliveryOptions, DeliveryStatus
from hookpost.domain.retry import Outcome
from hookpost.services.common import now_ms
from hookpost.store.memory import MemoryQueue
from tests.support.deliveries import claimed
from tests.support.polling import eventually


class Sender:
    """Fails every request; records the timeout each was given (None: the sender's own)."""

    def __init__(self) -> None:
        self.timeouts: dict[str, float | None] = {}

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float | None = None
    ) -> Response:
        self.timeouts[headers["webhook-id"]] = timeout_s
        return Response(Outcome(500), "", 1)


def _worker(queue: MemoryQueue, sender: Sender, **config: Any) -> DeliveryWorker:
    settings: dict[str, Any] = {
        "retry_schedule": (1000,),
        "poll_interval_s": 0.05,
        "max_request_timeout_s": 40.0,
        **config,
    }
    return DeliveryWorker(queue, sender, WorkerConfig(**settings))  # type: ignore[arg-type]


async def _value(value: Any) -> Any:
    return value


async def test_timeouts_reach_the_sender_clamped_and_refreshed() -> None:
    queue, sender = MemoryQueue(), Sender()
    queue.options = DeliveryOptions(endpoint_timeouts={"ep_a": 60, "ep_b": 3})
    start = now_ms()
    queue.add(claimed(1, "ep_a", due_at=start))
    queue.add(claimed(2, "ep_b", due_at=start))
    queue.add(claimed(3, "ep_c", due_at=start))
    worker = _worker(queue, sender, options_refresh_s=0.05)
    worker.start()
    try:
        await eventually(lambda: _value(len(sender.timeouts)), lambda n: n == 3)
        # 60 s would outlive a 60 s lease should a renewal be late: capped at 40 s.
        assert sender.timeouts == {"msg_1": 40.0, "msg_2": 3.0, "msg_3": None}
        queue.options = DeliveryOptions(endpoint_timeouts={"ep_c": 9})
        await eventually(lambda: _value(worker._sending.timeouts), lambda t: t == {"ep_c": 9.0})
        queue.add(claimed(4, "ep_c", due_at=now_ms()))
        await eventually(lambda: _value(sender.timeouts.get("msg_4")), lambda t: t == 9.0)
    finally:
        await worker.stop()


async def test_event_type_schedule_comes_before_the_global_and_after_the_endpoint() -> None:
    queue, sender = MemoryQueue(), Sender()
    queue.options = DeliveryOptions(type_schedules={"a.b": (100,)})
    start = now_ms()
    queue.add(claimed(1, "ep_a", due_at=start))  # event type a.b: its schedule
    queue.add(replace(claimed(2, "ep_a", due_at=start), event_type="c.d"))  # the global one
    queue.add(replace(claimed(3, "ep_a", due_at=start), retry_schedule=[10]))  # its endpoint's
    worker = _worker(queue, sender)
    worker.start()
    try:
        await eventually(lambda: _value(len(sender.timeouts)), lambda n: n == 3)
        await eventually(
            lambda: _value([queue.status(r) for r in (1, 2, 3)]),
            lambda s: (
                s == [DeliveryStatus.PENDING] * 3
                and all(queue._rows[r].lease is None for r in (1, 2, 3))
            ),
        )
    finally:
        await worker.stop()
    due = {r: ((queue._rows[r].due_at or 0) - start) / 1000 for r in (1, 2, 3)}
    assert 80 <= due[1] <= 121, due  # 100 s ± 20 %
    assert 800 <= due[2] <= 1201, due  # 1000 s ± 20 %
    assert 8 <= due[3] <= 13, due  # 10 s ± 20 %
