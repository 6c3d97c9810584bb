"""Without a PostgreSQL server the PostgreSQL tests are skipped, and pytest's ``-ra`` summary
says so once, in the policy's banner, not in a ``SKIPPED`` line per test (issue 24). Runs
pytest on this suite's PostgreSQL tests against a port where nothing listens."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

from tests.support.checkout import clean_env
from tests.support.processes import ROOT


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when this returns: nothing listens there


def test_skipped_postgres_tests_are_one_banner_not_a_line_each() -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/hookpost_test"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "tests/postgres"],
        cwd=ROOT,
        env=clean_env(HOOKPOST_TEST_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    skipped = re.search(r"(\d+) skipped", out.splitlines()[-1])
    assert skipped and int(skipped.group(1)) > 1, out  # the final counts keep them
    assert re.search(rf"{skipped.group(1)} PostgreSQL tests were SKIPPED \(no server at", out), out
    assert not [line for line in out.splitlines() if line.startswith("SKIPPED")], out
