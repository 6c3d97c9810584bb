"""What the daily-work commands share: the server flags, running a command, its output."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hookpost.commands.remote import CommandError, Remote
from hookpost.settings import Settings

Command = Callable[[argparse.Namespace, Remote], Awaitable[int | None]]
Subparsers = Any  # argparse._SubParsersAction, which argparse does not export


def default_url(settings: Settings | None = None) -> str:
    """``HOOKPOST_URL``, else where ``hookpost serve`` listens with this environment."""
    if url := os.environ.get("HOOKPOST_URL", "").strip():
        return url
    s = settings or Settings.from_env()
    host = "127.0.0.1" if s.host in ("", "0.0.0.0") else "[::1]" if s.host == "::" else s.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{s.port}"


def default_token() -> str | None:
    """``HOOKPOST_TOKEN``, else the server's own ``HOOKPOST_ADMIN_TOKEN`` when set here."""
    for name in ("HOOKPOST_TOKEN", "HOOKPOST_ADMIN_TOKEN"):
        if value := os.environ.get(name, "").strip():
            return value
    return None


def add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        help="the hookpost server (HOOKPOST_URL; default: http://HOOKPOST_HOST:HOOKPOST_PORT, "
        "i.e. http://127.0.0.1:8071)",
    )
    p.add_argument(
        "--token", help="an API token (HOOKPOST_TOKEN; else HOOKPOST_ADMIN_TOKEN if set)"
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def verb_group(sub: Subparsers, name: str, helptext: str, **kwargs: Any) -> Subparsers:
    """``hookpost NAME VERB ...``: the group's verbs; ``hookpost NAME`` alone prints its help."""
    group = sub.add_parser(name, help=helptext)
    group.set_defaults(fn=lambda _args: group.print_help())
    kwargs.setdefault("dest", f"{name.replace('-', '_')}_cmd")
    return group.add_subparsers(**kwargs)


def command(
    sub: Subparsers, name: str, fn: Command, helptext: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand that talks to the server: the server flags, and ``fn`` run over it."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=helptext, description=helptext, **kwargs)
    add_server_flags(p)
    p.set_defaults(fn=lambda args: run(args, fn))
    return p


def run(args: argparse.Namespace, fn: Command) -> None:
    """Run ``fn`` against the server; a CommandError is one line on stderr and the exit."""

    async def main() -> int | None:
        async with Remote(args.url or default_url(), args.token or default_token()) as api:
            return await fn(args, api)

    try:
        status = asyncio.run(main())
    except CommandError as exc:
        print(f"hookpost: {exc}", file=sys.stderr)
        sys.exit(exc.status)
    if status:
        sys.exit(status)


# --------------------------------------------------------------------------- output


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False), flush=True)


def print_json_line(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, separators=(",", ":")), flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns aligned on their widest cell; ``-`` for an empty one."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """One ``name: value`` line each, the values aligned."""
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        print(f"{name + ':':<{width + 1}} {_cell(value)}")


def _cell(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def short_time(iso: str | None) -> str:
    """``2026-12-07T21:03:04.123Z`` as ``2026-12-07 21:03:04`` (UTC)."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


# --------------------------------------------------------------------------- input

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(value: str) -> int | None:
    """``3600``, ``90m``, ``12h`` or ``30d`` in seconds (None: not a duration)."""
    text = value.strip().lower()
    unit = DURATION_UNITS.get(text[-1:], 0) if text else 0
    number = text[:-1] if unit else text
    return int(number) * (unit or 1) if number.isdigit() else None


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """A point in time: a duration ago (``2h``, ``30m``, ``7d``) or an ISO 8601 time
    (UTC when it names no zone)."""
    seconds = duration_s(value)
    if seconds is not None:
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    return iso_time(value, "a duration ago (30m, 2h, 7d)")


def iso_time(value: str, or_else: str) -> datetime:
    """An ISO 8601 time, UTC when it names no zone; else an argparse error that says the
    value is neither ``or_else`` nor such a time."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither {or_else} nor an ISO 8601 time"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def list_flag(p: argparse.ArgumentParser, flag: str, metavar: str, helptext: str) -> None:
    """A flag that may be repeated, its values gathered in a list (``--channel a --channel b``)."""
    dest = flag.removeprefix("--").replace("-", "_") + "s"
    p.add_argument(
        flag, action="append", dest=dest, metavar=metavar, help=f"{helptext} (repeat the flag)"
    )


def iso_z(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_json_object(value: str, what: str = "--data") -> dict[str, Any]:
    """A JSON object given inline, as ``@file.json``, or as ``-`` (standard input)."""
    if value == "-":
        text, source = sys.stdin.read(), "standard input"
    elif value.startswith("@"):
        source = value[1:]
        try:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise CommandError(f"{what}: cannot read {source}: {exc.strerror or exc}") from None
    else:
        text, source = value, "the argument"
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{what}: {source} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        kind = JSON_KINDS.get(type(doc), type(doc).__name__)
        raise CommandError(f"{what}: the payload must be a JSON object, not {kind}")
    return doc


JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number"}
JSON_KINDS |= {bool: "a boolean", type(None): "null"}
