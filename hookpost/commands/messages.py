"""``hookpost send`` and ``hookpost resend``."""

from __future__ import annotations

import argparse

from hookpost.commands.options import (
    Subparsers,
    command,
    fields,
    list_flag,
    print_json,
    read_json_object,
    short_time,
)
from hookpost.commands.remote import API, Remote, segment


def register(sub: Subparsers) -> None:
    send = command(sub, "send", send_message, "send a message to an application's endpoints")
    send.add_argument("app", help="the application's id or uid")
    send.add_argument("event_type", metavar="type", help="the event type, e.g. invoice.paid")
    send.add_argument(
        "--data",
        required=True,
        help="the payload, a JSON object: inline ('{\"id\": 1}'), @file.json, or - (stdin)",
    )
    send.add_argument("--event-id", help="your id for the event: sending it twice sends once")
    list_flag(send, "--channel", "CHANNEL", "send on this channel")

    resend = command(sub, "resend", resend_message, "send a message again, now")
    resend.add_argument("app", help="the application's id or uid")
    resend.add_argument("msg", help="the message's id or eventId")
    resend.add_argument(
        "--endpoint", help="only to this endpoint (id or uid; default: every endpoint it went to)"
    )


async def send_message(args: argparse.Namespace, api: Remote) -> None:
    body = {"eventType": args.event_type, "payload": read_json_object(args.data)}
    if args.event_id:
        body["eventId"] = args.event_id
    if args.channels:
        body["channels"] = args.channels
    msg = await api.request("POST", f"{API}/app/{segment(args.app)}/msg", body)
    if args.json:
        print_json(msg)
        return
    fields(
        [
            ("message", msg["id"]),
            ("event type", msg["eventType"]),
            ("event id", msg.get("eventId")),
            ("channels", msg.get("channels")),
            ("accepted", short_time(msg["timestamp"])),
        ]
    )


async def resend_message(args: argparse.Namespace, api: Remote) -> None:
    app, msg = segment(args.app), segment(args.msg)
    if args.endpoint:
        targets = [{"id": args.endpoint, "url": None}]
    else:
        targets = await api.listing(f"{API}/app/{app}/msg/{msg}/endpoint")
    for ep in targets:
        await api.request("POST", f"{API}/app/{app}/msg/{msg}/endpoint/{segment(ep['id'])}/resend")
        if not args.json:
            print(f"resent {args.msg} to {ep['id']}" + (f" ({ep['url']})" if ep["url"] else ""))
    if args.json:
        print_json({"msg": args.msg, "endpoints": [ep["id"] for ep in targets]})
    elif not targets:
        print(f"{args.msg} went to no endpoint: nothing to resend")
