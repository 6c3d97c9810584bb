"""``hookpost alert-rule create | list | get | patch | delete`` through the real command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hookpost.wiring import Hookpost
from tests.multiprocess.test_cli import run_cli
from tests.support.processes import hookpost_env

pytestmark = pytest.mark.slow


async def new_app(url: str) -> str:
    async with Hookpost.open(url) as hp:
        return (await hp.apps.create("Acme", uid="acme")).id


def test_alert_rule_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    env = hookpost_env(database_url=url)
    asyncio.run(new_app(url))
    spec = {"name": "failures", "kind": "threshold", "operator": "gt", "value": 10,
            "windowSeconds": 300, "eventTypes": ["payment.failed"]}  # fmt: skip
    created = run_cli("alert-rule", "create", "acme", json.dumps(spec), env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    rule = json.loads(created.stdout)
    assert rule["name"] == "failures" and rule["evaluateEverySeconds"] == 10
    listed = run_cli("alert-rule", "list", "acme", env=env, cwd=tmp_path)
    assert listed.stdout.splitlines()[1].split("\t")[:3] == [rule["id"], "failures", "threshold"]
    patched = run_cli(
        "alert-rule", "patch", "acme", rule["id"], '{"value": 20}', env=env, cwd=tmp_path
    )
    assert patched.returncode == 0, patched.stderr
    assert json.loads(patched.stdout)["value"] == 20
    bad = run_cli(
        "alert-rule", "patch", "acme", rule["id"], '{"operator": "ne"}', env=env, cwd=tmp_path
    )
    assert bad.returncode == 1 and "operator" in bad.stderr
    got = run_cli("alert-rule", "get", "acme", rule["id"], env=env, cwd=tmp_path)
    assert json.loads(got.stdout)["value"] == 20
    deleted = run_cli("alert-rule", "delete", "acme", rule["id"], env=env, cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    gone = run_cli("alert-rule", "get", "acme", rule["id"], env=env, cwd=tmp_path)
    assert gone.returncode == 1 and "not found" in gone.stderr
