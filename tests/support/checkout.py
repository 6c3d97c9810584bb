"""A copy of the checkout as a fresh clone would have it, for tests that build or install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.processes import ROOT


def tracked_files() -> list[str]:
    """The checkout's files a clone would have: tracked, and untracked but not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return [name.decode() for name in listed if name and (ROOT / name.decode()).is_file()]


def checkout_copy(dest: Path) -> Path:
    for name in tracked_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without hookpost's settings, this venv, or the variables of
    a `make test` above this process (make exports its ARGS, and MAKEFLAGS): as a new
    shell has it."""
    dropped = ("HOOKPOST_", "VIRTUAL_ENV", "PYTHON", "MAKE", "MFLAGS", "ARGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(extra)
    return env
