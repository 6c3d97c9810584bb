"""1,000 active alert rules for the `ingest-alerts` and `e2e-alerts` scenarios (issue 22): what
the evaluator costs beside ingest and delivery (docs/decisions/0038-alert-rules.md).

The rules mix what customers would set: counts of the bench's event type, averages and p95s of
its numeric field, with and without a payload filter, over windows of 1 to 10 minutes, plus
anomaly and digest rules; thresholds are out of reach, so no alert is sent (the cost measured
is counting and evaluating, not delivering alerts). About a hundred distinct series: rules
that select the same messages with the same window width share their buckets."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bench.api import Api
from bench.common import EVENT_TYPE

RULES = 1000


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
