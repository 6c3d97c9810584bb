"""``api.mapping``: ISO timestamps are formatted right whatever order they come in."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hookpost.api import mapping


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
