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
