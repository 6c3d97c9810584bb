"""``hookpost replay``: an endpoint's deliveries of a time range sent again, by a background
task on the server, which the command follows until it is done."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from hookpost.commands.options import (
    Subparsers,
    command,
    iso_z,
    list_flag,
    parse_time,
    print_json,
)
from hookpost.commands.remote import API, ApiFailure, CommandError, Remote, segment

# what: (the route, what it sends again)
MODES = {
    "failed": ("recover", "its failed deliveries (Svix's recover)"),
    "missing": ("replay-missing", "the messages it never had a delivery of"),
    "all": ("bulk-replay", "all its deliveries, or those of --status / --event-type"),
}
BULK_STATUS = {"succeeded": 0, "failed": 2}
POLL_S = 0.5
NO_WORKER_HINT_S = 10.0


def register(sub: Subparsers) -> None:
    p = command(
        sub,
        "replay",
        replay,
        "send an endpoint the deliveries of a time range again (a background task)",
    )
    p.add_argument("app", help="the application's id or uid")
    p.add_argument("endpoint", help="the endpoint's id or uid")
    p.add_argument(
        "--since",
        required=True,
        type=parse_time,
        help="messages created from then: a duration ago (30m, 2h, 7d) or an ISO 8601 time",
    )
    p.add_argument("--until", type=parse_time, help="... until then (default: now)")
    p.add_argument(
        "--what",
        choices=sorted(MODES),
        default="failed",
        help="; ".join(f"{k}: {v[1]}" for k, v in MODES.items()) + " (default: failed)",
    )
    p.add_argument("--status", choices=sorted(BULK_STATUS), help="with --what all: only these")
    list_flag(p, "--event-type", "TYPE", "with --what all: only these event types")
    p.add_argument(
        "--dry-run", action="store_true", help="with --what all: only count what it would send"
    )
    p.add_argument("--no-wait", action="store_true", help="print the task and return at once")


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"since": iso_z(args.since)}
    if args.until is not None:
        body["until"] = iso_z(args.until)
    bulk = {
        "--status": args.status,
        "--event-type": args.event_types,
        "--dry-run": args.dry_run or None,
    }
    if args.what != "all":
        given = [flag for flag, value in bulk.items() if value]
        if given:
            raise CommandError(f"{', '.join(given)}: only with --what all")
        return body
    if args.status:
        body["status"] = BULK_STATUS[args.status]
    if args.event_types:
        body["eventTypes"] = args.event_types
    if args.dry_run:
        body["dryRun"] = True
    return body


async def replay(args: argparse.Namespace, api: Remote) -> int:
    route = MODES[args.what][0]
    path = f"{API}/app/{segment(args.app)}/endpoint/{segment(args.endpoint)}/{route}"
    task = await api.request("POST", path, request_body(args))
    if not args.json:
        print(f"task {task['id']} ({task['task']}): {task['status']}", flush=True)
    if not args.no_wait:
        task = await follow(api, task, quiet=args.json)
    if args.json:
        print_json(task)
    elif task["status"] != "running":
        print(f"task {task['id']} {task['status']}: {summary(task.get('data') or {})}")
    return 1 if task["status"] == "failed" else 0


async def follow(api: Remote, task: dict[str, Any], quiet: bool) -> dict[str, Any]:
    """The task once it is no longer running (its answer as it was, if the token may not read
    tasks: an application's token)."""
    started = time.monotonic()
    hinted = quiet
    while task["status"] == "running":
        await asyncio.sleep(POLL_S)
        try:
            task = await api.get(f"{API}/background-task/{segment(task['id'])}")
        except ApiFailure as exc:
            if exc.http_status != 403:
                raise
            if not quiet:
                print("(only an admin token can follow a task; it runs on)", flush=True)
            return task
        if not hinted and time.monotonic() - started > NO_WORKER_HINT_S:
            hinted = True
            print(
                "still running: background tasks are run by the workers "
                "(`hookpost serve` or `hookpost worker`); is one running?",
                flush=True,
            )
    return task


def summary(data: dict[str, Any]) -> str:
    if "messagesMatched" in data:
        return f"{data['messagesMatched']} messages would be sent (dry run)"
    sent = data.get("messagesSent", data.get("messages_sent"))
    if sent is not None:
        return f"{sent} messages sent again"
    return ", ".join(f"{k}={v}" for k, v in data.items()) or "done"
