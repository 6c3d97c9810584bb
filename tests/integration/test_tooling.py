"""Checks on the build tooling itself; imports nothing from hookpost."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert "==" in line, f"requirements.lock line is not pinned with ==: {raw!r}"
        name, _, version = line.partition("==")
        pins[_canonical(name.split("[")[0].strip())] = version.split(";")[0].strip()
    return pins


def test_lock_file_pins_every_requirement() -> None:
    assert _locked(), "requirements.lock has no requirements"


def test_lock_file_covers_every_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    locked = _locked()
    missing = []
    for spec in declared:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
        assert match, f"cannot parse requirement {spec!r}"
        if _canonical(match.group(0)) not in locked:
            missing.append(spec)
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"
