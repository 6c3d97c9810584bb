"""The workers' shared poll loop (services.poller): it calls its check again at once while the
check finds work, waits ``poll_s`` (or a wake) when there is none, and survives a failing check.
The task runner's wake gap is in test_task_runner.py."""

from __future__ import annotations

import logging

import pytest

from hookpost.services.poller import Poller
from tests.support.polling import eventually

log = logging.getLogger("hookpost.test-poller")


class Script:
    """A check that answers from a list (True: it found work; an exception: it fails)."""

    def __init__(self, *answers: bool | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else False
        if isinstance(answer, Exception):
            raise answer
        return answer


async def calls_of(script: Script) -> int:
    return script.calls


async def test_work_found_is_drained_then_it_waits_for_a_wake() -> None:
    check = Script(True, True, False)
    poller = Poller("t", check, poll_s=60.0, log=log, failure="failed")
    poller.start()
    try:
        await eventually(lambda: calls_of(check), lambda n: n == 3)
        poller.wake()  # not left for the 60-second poll
        await eventually(lambda: calls_of(check), lambda n: n == 4)
    finally:
        await poller.stop()


async def test_a_failing_check_is_logged_and_tried_again_at_the_next_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=log.name)
    check = Script(RuntimeError("store down"), True, False)
    poller = Poller("t", check, poll_s=0.01, log=log, failure="could not check")
    poller.start()
    try:
        await eventually(lambda: calls_of(check), lambda n: n >= 3)
    finally:
        await poller.stop()
    assert "could not check" in caplog.text and "store down" in caplog.text
