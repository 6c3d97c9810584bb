"""``hookpost app list|create|get``."""

from __future__ import annotations

import argparse
from typing import Any

from hookpost.commands.options import (
    Subparsers,
    command,
    fields,
    print_json,
    short_time,
    table,
    verb_group,
)
from hookpost.commands.remote import API, Remote, segment


def register(sub: Subparsers) -> None:
    verbs = verb_group(sub, "app", "applications: list, create, get", metavar="{list,create,get}")

    listing = command(verbs, "list", app_list, "list the applications")
    listing.add_argument("--limit", type=int, help="at most this many (default: all)")

    create = command(verbs, "create", app_create, "create an application")
    create.add_argument("name", help="its name")
    create.add_argument("--uid", help="your own id for it (unique; usable wherever an id is)")
    create.add_argument(
        "--get-if-exists",
        action="store_true",
        help="answer the application of this --uid if it exists already",
    )

    get = command(verbs, "get", app_get, "show an application")
    get.add_argument("app", help="its id or uid")


async def app_list(args: argparse.Namespace, api: Remote) -> None:
    apps = await api.listing(f"{API}/app", args.limit)
    if args.json:
        print_json(apps)
        return
    table(
        ["ID", "UID", "NAME", "CREATED"],
        [[a["id"], a["uid"], a["name"], short_time(a["createdAt"])] for a in apps],
    )


async def app_create(args: argparse.Namespace, api: Remote) -> None:
    params = {"get_if_exists": True} if args.get_if_exists else None
    body = {"name": args.name, "uid": args.uid}
    show(await api.request("POST", f"{API}/app", body, params), args.json)


async def app_get(args: argparse.Namespace, api: Remote) -> None:
    show(await api.get(f"{API}/app/{segment(args.app)}"), args.json)


def show(app: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(app)
        return
    fields(
        [
            ("id", app["id"]),
            ("uid", app["uid"]),
            ("name", app["name"]),
            ("throttle", app.get("throttleRate")),
            ("metadata", app.get("metadata")),
            ("created", short_time(app["createdAt"])),
            ("updated", short_time(app["updatedAt"])),
        ]
    )
