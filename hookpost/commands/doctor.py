"""``hookpost doctor``: is this deployment ready? One line per check, with a fix for each
failure; the exit status is 1 when a check fails."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any

from hookpost.commands.options import Subparsers, default_token, print_json
from hookpost.commands.remote import API, ApiFailure, CommandError, Remote
from hookpost.diagnostics import FAIL, OK, WARN, Check, clock_check, run_checks
from hookpost.settings import Settings

EXIT_FAILED = 1


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this deployment: database, migrations, main key, SSRF, clock, port",
        description="Check the settings of this environment (as `hookpost serve` would read "
        "them): the database and its migration level, the main key, the SSRF guard, the "
        "clock, and the API port; with --url (or HOOKPOST_URL), also that server and token.",
    )
    p.add_argument("--db", help="database URL (HOOKPOST_DATABASE_URL; sqlite:///hookpost.db)")
    p.add_argument("--host", help="the API's listen address (HOOKPOST_HOST; 127.0.0.1)")
    p.add_argument("--port", type=int, help="the API's listen port (HOOKPOST_PORT; 8071)")
    p.add_argument("--url", help="also check this hookpost server (HOOKPOST_URL)")
    p.add_argument("--token", help="... with this token (HOOKPOST_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(fn=doctor)


def doctor(args: argparse.Namespace) -> None:
    try:
        settings = Settings.from_env(database_url=args.db, host=args.host, port=args.port)
    except ValueError as exc:
        checks = [Check("settings", FAIL, str(exc), "fix that environment variable")]
    else:
        checks = asyncio.run(all_checks(args, settings))
    if args.json:
        print_json([check_out(c) for c in checks])
    else:
        for check in checks:
            print(check_line(check))
    if any(c.status == FAIL for c in checks):
        sys.exit(EXIT_FAILED)


async def all_checks(args: argparse.Namespace, settings: Settings) -> list[Check]:
    checks = await run_checks(settings)
    url = args.url or os.environ.get("HOOKPOST_URL", "").strip()
    if url:
        checks += await server_checks(url, args.token or default_token())
    return checks


async def server_checks(url: str, token: str | None) -> list[Check]:
    """The server at ``url``: its health (and its database's), its clock, the token."""
    async with Remote(url, token) as api:
        try:
            before = time.time()
            status, headers = await api.probe(f"{API}/health")
            after = time.time()
        except CommandError as exc:
            return [Check("server", FAIL, str(exc))]
        if status != 204:
            fix = "see its logs" + (": its database is down" if status == 503 else "")
            return [Check("server", FAIL, f"{api.url} answers {status} to its health check", fix)]
        checks = [Check("server", OK, f"{api.url} is healthy")]
        if date := headers.get("Date"):
            theirs = parsedate_to_datetime(date).timestamp()
            skew = clock_check(date_header_skew(theirs, before, after), f"{api.url}'s")
            checks.append(replace(skew, name="server clock"))
        checks.append(await token_check(api))
    return checks


# A Date header has whole seconds, and uvicorn formats it once a second: when the server
# answered, its clock read somewhere in [date, date + this).
DATE_HEADER_SPAN_S = 2.0


def date_header_skew(date_s: float, before: float, after: float) -> float:
    """The server's clock minus ours, as far as its Date header can tell: 0 when a moment in
    [date, date + DATE_HEADER_SPAN_S) can match one in our [before, after], else the gap."""
    if date_s + DATE_HEADER_SPAN_S < before:
        return date_s + DATE_HEADER_SPAN_S - before
    if date_s > after:
        return date_s - after
    return 0.0


async def token_check(api: Remote) -> Check:
    if not api.token:
        return Check("token", WARN, "none given", "set --token or HOOKPOST_TOKEN")
    try:
        await api.get(f"{API}/app", limit=1)
    except ApiFailure as exc:
        fix = "create one with `hookpost token create` where the database is, and set it"
        return Check("token", FAIL, f"refused: {exc}", fix)
    return Check("token", OK, "accepted")


def check_line(check: Check) -> str:
    mark = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}[check.status]
    line = f"{mark}  {check.name:<12}  {check.detail}"
    return f"{line} -> fix: {check.fix}" if check.fix else line


def check_out(check: Check) -> dict[str, Any]:
    return {"check": check.name, "status": check.status, "detail": check.detail, "fix": check.fix}
