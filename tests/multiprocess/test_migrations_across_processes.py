"""Several processes upgrading one empty database at once all succeed, on every backend (a
lock file on SQLite, an advisory lock on PostgreSQL)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from tests.contract.conftest import database_url as database_url
from tests.contract.test_schema_migrations import (
    RACERS,
    current_revisions,
    head_revision,
    on_connection,
    schema_diff,
)


@pytest.mark.slow
async def test_concurrent_upgrades_from_processes_all_succeed(database_url: str) -> None:
    """The real deployment case: several hookpost processes start at once on one database."""
    code = "import sys; from hookpost.store.migrate import upgrade; upgrade(sys.argv[1])"

    def race() -> list[tuple[int, str]]:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, database_url],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(RACERS)
        ]
        outputs = [p.communicate(timeout=60)[0] for p in procs]
        return [(p.returncode, out) for p, out in zip(procs, outputs, strict=True)]

    results = await asyncio.to_thread(race)
    assert [rc for rc, _ in results] == [0] * RACERS, results
    assert await on_connection(database_url, current_revisions) == [head_revision()]
    assert await on_connection(database_url, schema_diff) == []
