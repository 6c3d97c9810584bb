"""Embedding hookpost as a library leaves the process's own settings alone: the GIL switch
interval and the garbage collector's tuning belong to the ``hookpost`` CLI's processes."""

from __future__ import annotations

import gc
import sys

import pytest

from hookpost.wiring import Hookpost


@pytest.mark.parametrize("switch_interval", [0.005, 0.0001])
async def test_hookpost_open_on_sqlite_changes_no_process_wide_state(
    migrated_sqlite_url: str, switch_interval: float
) -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(switch_interval)
        gc_state = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count())
        async with Hookpost.open(migrated_sqlite_url, worker=True) as hp:
            await hp.store.ping()
            assert sys.getswitchinterval() == pytest.approx(switch_interval)
        assert sys.getswitchinterval() == pytest.approx(switch_interval)
        assert (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()) == gc_state
    finally:
        sys.setswitchinterval(before)


@pytest.mark.parametrize(
    ("url", "lowered"),
    [("sqlite:///x.db", True), ("postgresql://postgres@127.0.0.1:5432/x", False)],
)
def test_the_cli_processes_tune_the_switch_interval_for_sqlite_only(
    url: str, lowered: bool
) -> None:
    from hookpost.settings import Settings
    from hookpost.store.sqlite.executor import GIL_SWITCH_S
    from hookpost.wiring import tune_process_for

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        tune_process_for(Settings.from_env(database_url=url))
        expected = GIL_SWITCH_S if lowered else 0.005
        assert sys.getswitchinterval() == pytest.approx(expected)
    finally:
        sys.setswitchinterval(before)
