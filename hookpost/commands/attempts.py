"""``hookpost attempts`` (the latest attempts of an application) and ``hookpost tail``
(its attempts as they happen).

The API lists attempts per endpoint (as Svix does), so both read each endpoint's list and
merge them by time. ``tail`` polls each endpoint for the attempts after the newest it has seen,
less a margin (an attempt committed late, by another worker, is not missed), pages through
them with the list's iterator, and prints each attempt once (docs/decisions/0041)."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from hookpost.commands.options import (
    Subparsers,
    command,
    iso_z,
    print_json,
    print_json_line,
    short_time,
    table,
)
from hookpost.commands.remote import API, ApiFailure, Remote, segment

STATUSES = {"succeeded": 0, "success": 0, "failed": 2, "fail": 2}
LATE_MS = 2_000  # how late an attempt may be committed after its timestamp
ENDPOINTS_REFRESH_S = 10.0  # tail notices new endpoints this often


def register(sub: Subparsers) -> None:
    attempts = command(sub, "attempts", list_attempts, "an application's latest attempts")
    tail = command(sub, "tail", tail_attempts, "follow an application's attempts live")
    for p in (attempts, tail):
        p.add_argument("app", help="the application's id or uid")
        p.add_argument("--endpoint", help="only this endpoint (id or uid)")
        p.add_argument("--status", choices=sorted(STATUSES), help="only these attempts")
    attempts.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    tail.add_argument(
        "--last", type=int, default=10, help="first print this many past attempts (default 10)"
    )
    tail.add_argument(
        "--interval", type=float, default=1.0, help="seconds between polls (default 1)"
    )
    tail.add_argument("--count", type=int, help="exit after this many new attempts")


def _ms(attempt: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(attempt["timestamp"]).timestamp() * 1000)


def _order(attempt: dict[str, Any]) -> tuple[int, str]:
    return _ms(attempt), attempt["id"]


class AttemptLists:
    """The attempts lists of one application's endpoints, read with the same filters."""

    def __init__(self, api: Remote, args: argparse.Namespace) -> None:
        self.api = api
        self.app = segment(args.app)
        self.only = args.endpoint
        self.status = None if args.status is None else STATUSES[args.status]

    async def endpoints(self) -> list[str]:
        if self.only:
            return [self.only]
        found = await self.api.listing(f"{API}/app/{self.app}/endpoint")
        return [ep["id"] for ep in found]

    async def newest(self, endpoint: str, limit: int, after_ms: int | None = None) -> list[Any]:
        """The endpoint's newest attempts (after ``after_ms``: all of them, page by page)."""
        path = f"{API}/app/{self.app}/attempt/endpoint/{segment(endpoint)}"
        after = None if after_ms is None else iso_z(datetime.fromtimestamp(after_ms / 1000, UTC))
        params = {"status": self.status, "with_content": False, "after": after}
        return await self.api.listing(path, limit if after_ms is None else None, **params)

    async def merged(self, endpoints: list[str], limit: int) -> list[Any]:
        """The newest ``limit`` attempts across ``endpoints``, newest first."""
        pages = await asyncio.gather(*(self.newest(ep, limit) for ep in endpoints))
        every = [a for page in pages for a in page]
        return sorted(every, key=_order, reverse=True)[:limit]


async def list_attempts(args: argparse.Namespace, api: Remote) -> None:
    lists = AttemptLists(api, args)
    found = await lists.merged(await lists.endpoints(), max(args.limit, 1))
    if args.json:
        print_json(found)
        return
    table(
        ["TIME", "STATUS", "CODE", "MS", "ENDPOINT", "MESSAGE", "ATTEMPT"],
        [
            [
                short_time(a["timestamp"]),
                a["statusText"],
                a["responseStatusCode"] or "-",
                a["responseDurationMs"],
                a["endpointId"],
                a["msgId"],
                a["id"],
            ]
            for a in found
        ],
    )


def line(a: dict[str, Any]) -> str:
    code = a["responseStatusCode"] or "-"
    took = f"{a['responseDurationMs']} ms"
    return (
        f"{short_time(a['timestamp'])}  {a['statusText']:<7} {code!s:>3} {took:>8}  "
        f"{a['endpointId']}  {a['msgId']}  {a['id']}"
    )


class Follower:
    """What ``tail`` has seen, per endpoint: the newest attempt's time, and the ids printed
    within the margin (older ones are never asked for again)."""

    def __init__(self, lists: AttemptLists) -> None:
        self.lists = lists
        self.newest_ms: dict[str, int | None] = {}
        self.seen: dict[str, dict[str, int]] = {}  # endpoint -> attempt id -> its time (ms)

    def note(self, endpoint: str, attempts: list[Any]) -> list[Any]:
        """The attempts not seen before, oldest first; remembered as seen."""
        seen = self.seen.setdefault(endpoint, {})
        newest = self.newest_ms.setdefault(endpoint, None)
        fresh = [a for a in attempts if a["id"] not in seen]
        for a in attempts:
            seen[a["id"]] = ms = _ms(a)
            newest = max(ms, newest or 0)
        self.newest_ms[endpoint] = newest
        if newest is not None:
            horizon = newest - 2 * LATE_MS
            self.seen[endpoint] = {k: ms for k, ms in seen.items() if ms >= horizon}
        return sorted(fresh, key=_order)

    async def start(self, last: int) -> list[Any]:
        endpoints = await self.lists.endpoints()
        pages = await asyncio.gather(*(self.lists.newest(ep, max(last, 1)) for ep in endpoints))
        every = [a for ep, page in zip(endpoints, pages, strict=True) for a in self.note(ep, page)]
        return sorted(every, key=_order)[-last:] if last > 0 else []

    async def poll(self, refresh: bool) -> list[Any]:
        if refresh:
            for ep in await self.lists.endpoints():
                self.newest_ms.setdefault(ep, None)  # a new endpoint: all its attempts are new
        endpoints = list(self.newest_ms)
        pages = await asyncio.gather(*(self._newer(ep) for ep in endpoints))
        fresh = [
            a
            for ep, page in zip(endpoints, pages, strict=True)
            if ep in self.newest_ms
            for a in self.note(ep, page)
        ]
        return sorted(fresh, key=_order)

    async def _newer(self, endpoint: str) -> list[Any]:
        newest = self.newest_ms.get(endpoint)
        try:
            return await self.lists.newest(endpoint, 0, 0 if newest is None else newest - LATE_MS)
        except ApiFailure as exc:
            if exc.http_status != 404 or self.lists.only:
                raise
            del self.newest_ms[endpoint]  # deleted meanwhile
            return []


async def tail_attempts(args: argparse.Namespace, api: Remote) -> None:
    follower = Follower(AttemptLists(api, args))
    emit = print_json_line if args.json else (lambda a: print(line(a), flush=True))
    for attempt in await follower.start(args.last):
        emit(attempt)
    if args.count == 0:
        return
    if not args.json:
        print(f"following {args.app}'s attempts (Ctrl-C to stop)", flush=True)
    printed = 0
    refreshed = time.monotonic()
    while args.count is None or printed < args.count:
        await asyncio.sleep(max(args.interval, 0.05))
        refresh = time.monotonic() - refreshed > ENDPOINTS_REFRESH_S
        if refresh:
            refreshed = time.monotonic()
        for attempt in await follower.poll(refresh):
            emit(attempt)
            printed += 1
            if args.count is not None and printed >= args.count:
                return
