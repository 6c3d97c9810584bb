"""``hookpost alert-rule …``: an application's alert rules from the command line (the same
service as ``/api/v1/app/{app_id}/alert-rule``; docs/decisions/0038-alert-rules.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson

from hookpost.commands.options import verb_group
from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import PageRequest
from hookpost.services.alert_rules import rule_out
from hookpost.wiring import Hookpost

Runner = Callable[[argparse.Namespace, Callable[[Hookpost], Awaitable[int]]], None]


def _spec(text: str) -> dict[str, Any]:
    try:
        spec = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("spec", f"is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise InvalidInput("spec", "must be a JSON object of the rule's fields")
    return spec


def _print(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _command(args: argparse.Namespace) -> Callable[[Hookpost], Awaitable[int]]:
    async def run(hp: Hookpost) -> int:
        app_id = (await hp.services.apps.get(args.app)).id
        rules = hp.services.alert_rules
        if args.alert_cmd == "create":
            _print(rule_out(*await rules.create(app_id, _spec(args.spec))))
        elif args.alert_cmd == "get":
            _print(rule_out(*await rules.get(app_id, args.rule)))
        elif args.alert_cmd == "patch":
            _print(rule_out(*await rules.patch(app_id, args.rule, _spec(args.spec))))
        elif args.alert_cmd == "delete":
            await rules.delete(app_id, args.rule)
            print(f"deleted alert rule {args.rule}")
        else:
            page = PageRequest(limit=250)
            print("id\tname\tkind\tenabled\tfiring")
            while True:
                found = await rules.list(app_id, page)
                for rule, state in found.items:
                    print(f"{rule.id}\t{rule.name}\t{rule.kind}\t{rule.enabled}\t{state.firing}")
                if found.done or not found.items:
                    break
                page = replace(page, iterator=found.items[-1][0].id)
        return 0

    return run


def register(sub: Any, db_flag: Callable[[argparse.ArgumentParser], None], run: Runner) -> None:
    """Add ``alert-rule`` and its commands to the CLI's subparsers."""
    group = verb_group(sub, "alert-rule", "an application's alert rules", dest="alert_cmd")
    spec_help = (
        'the rule\'s fields as JSON, e.g. \'{"name": "failures", "kind": "threshold", ...}\''
    )
    for name, helptext, takes_rule, takes_spec in (
        ("create", "create an alert rule and print it", False, True),
        ("list", "list the application's alert rules", False, False),
        ("get", "print an alert rule", True, False),
        ("patch", "change some of a rule's fields and print it", True, True),
        ("delete", "delete an alert rule", True, False),
    ):
        p = group.add_parser(name, help=helptext)
        db_flag(p)
        p.add_argument("app", help="the application (id or uid)")
        if takes_rule:
            p.add_argument("rule", help="the rule's id")
        if takes_spec:
            p.add_argument("spec", help=spec_help)
        p.set_defaults(fn=lambda a: run(a, _command(a)))
