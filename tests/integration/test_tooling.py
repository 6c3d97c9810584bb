"""Checks on the build tooling itself; imports nothing from hookpost."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = "requirements.lock"
DEV_LOCK = "requirements-dev.lock"
# The tools of the dev extra that a server never needs: none may reach the runtime lock.
DEV_ONLY = ("pytest", "mypy", "ruff", "schemathesis", "import-linter", "svix", "standardwebhooks")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(lock: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (ROOT / lock).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert "==" in line, f"{lock} line is not pinned with ==: {raw!r}"
        name, _, version = line.partition("==")
        pins[_canonical(name.split("[")[0].strip())] = version.split(";")[0].strip()
    return pins


def _project() -> dict[str, object]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])


def _names(specs: list[str]) -> list[str]:
    names = []
    for spec in specs:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
        assert match, f"cannot parse requirement {spec!r}"
        names.append(_canonical(match.group(0)))
    return names


def test_lock_files_pin_every_requirement() -> None:
    assert _locked(RUNTIME_LOCK), f"{RUNTIME_LOCK} has no requirements"
    assert _locked(DEV_LOCK), f"{DEV_LOCK} has no requirements"


def test_the_dev_lock_covers_every_dependency_and_extra() -> None:
    project = _project()
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    declared = list(project["dependencies"])  # type: ignore[call-overload]
    for specs in extras.values():
        declared += specs
    locked = _locked(DEV_LOCK)
    missing = [n for n in _names(declared) if n != "hookpost" and n not in locked]
    assert not missing, f"not in {DEV_LOCK} (run `make lock`): {missing}"


def test_the_runtime_lock_covers_the_dependencies_and_postgres_and_no_dev_tool() -> None:
    project = _project()
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    declared = list(project["dependencies"]) + extras["postgres"]  # type: ignore[call-overload]
    locked = _locked(RUNTIME_LOCK)
    missing = [n for n in _names(declared) if n not in locked]
    assert not missing, f"not in {RUNTIME_LOCK} (run `make lock`): {missing}"
    assert not [t for t in DEV_ONLY if t in locked], f"dev tools in {RUNTIME_LOCK}"
    # uvicorn[standard]'s extras that hookpost does not use (decision 0040).
    assert not {"watchfiles", "websockets", "python-dotenv"} & set(locked)


def test_both_locks_pin_the_same_versions() -> None:
    dev = _locked(DEV_LOCK)
    differ = {n: (v, dev.get(n)) for n, v in _locked(RUNTIME_LOCK).items() if dev.get(n) != v}
    assert not differ, f"{RUNTIME_LOCK} and {DEV_LOCK} disagree (run `make lock`): {differ}"


def test_asyncpg_is_an_extra_not_a_dependency() -> None:
    project = _project()
    assert "asyncpg" not in _names(list(project["dependencies"]))  # type: ignore[call-overload]
    assert "asyncpg" in _names(project["optional-dependencies"]["postgres"])  # type: ignore[index]


def test_make_run_installs_the_runtime_lock_and_make_test_the_dev_lock() -> None:
    def planned(target: str) -> str:
        # -n -B: print every command the target would run from scratch, run none.
        done = subprocess.run(
            ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return done.stdout

    run = planned("run")
    assert f"-r {RUNTIME_LOCK}" in run and DEV_LOCK not in run, run
    for target in ("test", "test-quick", "lint"):
        assert f"-r {DEV_LOCK}" in planned(target), target
    quick = planned("test-quick")
    assert '-m "not slow and not browser and not postgres"' in quick, quick
    assert "--ignore=tests/multiprocess" in quick, quick
