"""1,000 active alert rules for the `ingest-alerts` and `e2e-alerts` scenarios (issue 22): what
the evaluator costs beside ingest and delivery (docs/decisions/0038-alert-rules.md).

The rules mix what customers would set: counts of the bench's event type, averages and p95s of
its numeric field, with and without a payload filter, over windows of 1 to 10 minutes, plus
anomaly and digest rules; thresholds are out of reach, so no alert is sent (the cost measured
is counting and evaluating, not delivering alerts). About a hundred distinct series: rules
that select the same messages with the same window width share their buckets.

The evaluator counts a message once it is 2 s old, at its runs (every 10 s with these rules),
so after a load the scenarios wait (``wait_counted``) until its cursor is past every message,
and count hookpost's CPU until then: the evaluator's work is in the cost per message."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import aiohttp
import asyncpg

from bench.api import Api
from bench.common import EVENT_TYPE, run
from bench.stack import Stack

RULES = 1000
IDLE_PROBE_S = 3.0  # hookpost's idle CPU is measured this long before the rules are made
POLL_S = 0.2
# Per application: whether it has messages after its evaluator's cursor (compared as the
# evaluator's own scan compares them, in SQL).
CURSORS_PG = (
    "SELECT c.app_id, EXISTS (SELECT 1 FROM messages m WHERE m.app_id = c.app_id"
    " AND m.id > c.cursor) FROM alert_cursors c WHERE c.app_id = ANY($1::text[])"
)
CURSORS_SQLITE = (
    "SELECT c.app_id, EXISTS (SELECT 1 FROM messages m WHERE m.app_id = c.app_id"
    " AND m.id > c.cursor) FROM alert_cursors c"
    " WHERE c.app_id IN (SELECT value FROM json_each(?))"
)


def rule_body(i: int) -> dict[str, Any]:
    window = 60 * (1 + i % 10)
    body: dict[str, Any] = {"name": f"bench rule {i}", "eventTypes": [EVENT_TYPE]}
    kind = ("threshold", "threshold", "threshold", "anomaly", "digest")[i % 5]
    if kind == "digest":
        return {**body, "kind": "digest", "schedule": "1h"}
    metric = ("count", "avg", "p95", "max")[(i // 5) % 4]
    body.update(kind=kind, metric=metric, windowSeconds=window)
    if metric != "count":
        body["field"] = "id"
    if (i // 20) % 2:
        body["payloadFilter"] = {"type": EVENT_TYPE}
    if kind == "threshold":
        body.update(operator="gt", value=1e15)
    else:
        body["sensitivity"] = 1e9  # a score no bench load reaches
    return body


async def create_rules(api: Api, app_ids: list[str], n: int = RULES) -> None:
    """``n`` rules spread round-robin over the applications."""
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as s:

        async def one(i: int) -> None:
            async with sem:
                app = app_ids[i % len(app_ids)]
                await api._call(s, "POST", f"/api/v1/app/{app}/alert-rule", rule_body(i))

        await asyncio.gather(*(one(i) for i in range(n)))


def _behind(rows: list[Any], apps: int) -> int:
    """Applications whose messages are not all counted yet (or with no cursor yet)."""
    return apps - len(rows) + sum(1 for _app, behind in rows if behind)


def wait_counted(stack: Stack, app_ids: list[str], timeout_s: float) -> float | None:
    """Wait until the evaluator has counted every message of these applications (each
    cursor at or past the application's last message): the seconds it took, None if not
    within ``timeout_s``. Read straight from the database, so the wait adds no API work."""
    began = time.monotonic()
    deadline = began + timeout_s
    if stack.sqlite_path is not None:
        conn = sqlite3.connect(f"file:{stack.sqlite_path}?mode=ro", uri=True, timeout=30)
        try:
            while True:
                rows = conn.execute(CURSORS_SQLITE, (json.dumps(app_ids),)).fetchall()
                if not _behind(rows, len(app_ids)):
                    return round(time.monotonic() - began, 2)
                if time.monotonic() > deadline:
                    return None
                time.sleep(POLL_S)
        finally:
            conn.close()

    async def pg() -> float | None:
        conn = await asyncpg.connect(stack.db_url, timeout=10)
        try:
            while True:
                rows = [tuple(r) for r in await conn.fetch(CURSORS_PG, app_ids)]
                if not _behind(rows, len(app_ids)):
                    return round(time.monotonic() - began, 2)
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(POLL_S)
        finally:
            await conn.close()

    result: float | None = run(pg())
    return result
