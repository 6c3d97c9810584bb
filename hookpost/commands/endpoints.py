"""``hookpost endpoint list|create|get|disable|enable``."""

from __future__ import annotations

import argparse
from typing import Any

from hookpost.commands.options import (
    Subparsers,
    command,
    fields,
    list_flag,
    print_json,
    short_time,
    table,
    verb_group,
)
from hookpost.commands.remote import API, Remote, segment


def register(sub: Subparsers) -> None:
    verbs = verb_group(
        sub,
        "endpoint",
        "endpoints: list, create, get, disable, enable",
        metavar="{list,create,get,disable,enable}",
    )

    listing = command(verbs, "list", endpoint_list, "list an application's endpoints")
    listing.add_argument("app", help="the application's id or uid")
    listing.add_argument("--limit", type=int, help="at most this many (default: all)")

    create = command(verbs, "create", endpoint_create, "create an endpoint; prints its secret")
    create.add_argument("app", help="the application's id or uid")
    create.add_argument("endpoint_url", metavar="url", help="where deliveries are POSTed")
    create.add_argument("--uid", help="your own id for it (unique in the application)")
    create.add_argument("--description", help="a description")
    list_flag(create, "--event-type", "TYPE", "only these event types (default: every type)")
    list_flag(create, "--channel", "CHANNEL", "only messages on these channels")
    create.add_argument("--disabled", action="store_true", help="create it disabled")

    for name, fn, helptext in (
        ("get", endpoint_get, "show an endpoint, with its health"),
        ("disable", endpoint_disable, "disable an endpoint (its deliveries wait)"),
        ("enable", endpoint_enable, "enable an endpoint again"),
    ):
        p = command(verbs, name, fn, helptext)
        p.add_argument("app", help="the application's id or uid")
        p.add_argument("endpoint", help="the endpoint's id or uid")


def path(app: str, endpoint: str | None = None) -> str:
    base = f"{API}/app/{segment(app)}/endpoint"
    return base if endpoint is None else f"{base}/{segment(endpoint)}"


async def endpoint_list(args: argparse.Namespace, api: Remote) -> None:
    endpoints = await api.listing(path(args.app), args.limit)
    if args.json:
        print_json(endpoints)
        return
    table(
        ["ID", "UID", "URL", "STATE", "EVENT TYPES"],
        [[e["id"], e["uid"], e["url"], state(e), e["eventTypes"] or "*"] for e in endpoints],
    )


async def endpoint_create(args: argparse.Namespace, api: Remote) -> None:
    body: dict[str, Any] = {"url": args.endpoint_url, "uid": args.uid, "disabled": args.disabled}
    for key, value in (
        ("description", args.description),
        ("eventTypes", args.event_types),
        ("channels", args.channels),
    ):
        if value:
            body[key] = value
    show(await api.request("POST", path(args.app), body), args.json)


async def endpoint_get(args: argparse.Namespace, api: Remote) -> None:
    show(await api.get(path(args.app, args.endpoint)), args.json)


async def endpoint_disable(args: argparse.Namespace, api: Remote) -> None:
    await _set_disabled(args, api, True)


async def endpoint_enable(args: argparse.Namespace, api: Remote) -> None:
    await _set_disabled(args, api, False)


async def _set_disabled(args: argparse.Namespace, api: Remote, disabled: bool) -> None:
    ep = await api.request("PATCH", path(args.app, args.endpoint), {"disabled": disabled})
    if args.json:
        print_json(ep)
    else:
        print(f"endpoint {ep['id']} ({ep['url']}) is {'disabled' if disabled else 'enabled'}")


def state(ep: dict[str, Any]) -> str:
    health = ep.get("health") or {}
    return "disabled" if ep["disabled"] else str(health.get("state", "enabled"))


def show(ep: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(ep)
        return
    health = ep.get("health") or {}
    pairs: list[tuple[str, Any]] = [
        ("id", ep["id"]),
        ("uid", ep["uid"]),
        ("url", ep["url"]),
        ("description", ep.get("description")),
        ("state", state(ep)),
        ("event types", ep.get("eventTypes") or "* (every type)"),
        ("channels", ep.get("channels") or "* (every channel)"),
        ("failures", health.get("consecutiveFailures")),
        ("last success", short_time(health.get("lastSuccessAt"))),
        ("last failure", short_time(health.get("lastFailureAt"))),
        ("created", short_time(ep["createdAt"])),
    ]
    if ep.get("secret"):  # in the answer to a create only
        pairs.append(("secret", ep["secret"]))
    fields(pairs)
    for warning in ep.get("warnings") or ():
        print(f"warning: {warning['field']}: {warning['message']}")
