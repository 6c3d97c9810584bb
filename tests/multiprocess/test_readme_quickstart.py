"""The README's quickstart, run as written on a fresh checkout (issue 24).

The blocks are read from README.md and run by bash in a copy of the checkout, as a new user
pastes them into three terminals: ``make run`` (which creates the venv with the runtime only),
the receiver's terminal (an application, an endpoint, its secret, examples/receiver.py), the
sender's. Then the Svix SDK block, twice (it must hold when run again). The only change made to
the text: the ports (8071, 9999) become free ones, so that parallel runs do not collide (the
server's through HOOKPOST_PORT, which `make run` reads).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.multiprocess.test_cli import free_port, wait_healthy
from tests.support.checkout import checkout_copy, clean_env
from tests.support.processes import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

README = ROOT / "README.md"
TOKEN = "hpk_demo"  # the quickstart's own


def section(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


def blocks(heading: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(heading), re.S)


def wait_for_line(
    log: Path, proc: subprocess.Popen[bytes], accept: Callable[[str], bool], timeout: float
) -> str:
    """The first line of ``log`` that ``accept`` takes, polled until the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if accept(line):
                return line
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"no such line within {timeout}s:\n{log.read_text()}")


def start(script: str, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make, hookpost, the receiver
        )


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def dev_lock_pin(name: str) -> str:
    found = re.search(rf"^{name}==(\S+)$", (ROOT / "requirements-dev.lock").read_text(), re.M)
    assert found, name
    return found.group(1)


def attempts(port: int) -> list[dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/app/acme/attempt/endpoint/acme-local",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return list(json.load(response)["data"])


def test_the_readme_quickstart_runs_as_written_and_its_delivery_verifies(tmp_path: Path) -> None:
    server_block, receiver_block, sender_block = blocks("## Quickstart with curl", "sh")
    (sdk_block,) = blocks("## Quickstart with the official Svix SDK", "python")
    port, receiver_port = free_port(), free_port()

    def here(block: str) -> str:
        return block.replace("8071", str(port)).replace("9999", str(receiver_port))

    checkout = checkout_copy(tmp_path / "hookpost")
    env = clean_env()
    server_log, receiver_log = tmp_path / "terminal1.log", tmp_path / "terminal2.log"
    # make run serves on HOOKPOST_PORT (8071 by default): the free port instead.
    server = start(here(server_block), checkout, {**env, "HOOKPOST_PORT": str(port)}, server_log)
    receiver = None
    try:
        wait_healthy(port, server, server_log, timeout=400)  # includes creating the venv
        # The banner may be written just after the server starts answering.
        line = "receivers: public addresses and HOOKPOST_ALLOW_SUBNETS=127.0.0.0/8"
        deadline = time.monotonic() + 30
        while line not in server_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert line in server_log.read_text(), server_log.read_text()
        venv = checkout / ".venv" / "bin"
        assert not (venv / "pytest").exists(), "make run installed the dev tools"
        # The receiver's second check, with the reference library (not in the runtime lock).
        subprocess.run(
            [
                *(venv / "uv", "pip", "install", "-q", "--python", venv / "python"),
                f"standardwebhooks=={dev_lock_pin('standardwebhooks')}",
            ],
            check=True,
            timeout=120,
        )

        receiver = start(here(receiver_block), checkout, env, receiver_log)
        # (after the curl answers, which end without a newline)
        wait_for_line(receiver_log, receiver, lambda s: "receiver on http://" in s, 60)

        sent = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", here(sender_block)],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        message_ids = re.findall(r'"id":\s*"(msg_[A-Za-z0-9]+)"', sent.stdout)
        assert message_ids, sent.stdout
        verified = wait_for_line(
            receiver_log, receiver, lambda s: s.startswith(f"verified {message_ids[0]} "), 60
        )
        assert "(hookpost.verify, standardwebhooks)" in verified
        assert '"amount": 4200' in verified

        # The SDK block, twice: the second run finds the application and the endpoint.
        for _ in range(2):
            run = subprocess.run(
                [sys.executable, "-c", here(sdk_block)],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert run.returncode == 0, run.stderr
            (sdk_message,) = re.findall(r"sent (msg_\w+)", run.stdout)
            wait_for_line(
                receiver_log, receiver, lambda s, m=sdk_message: s.startswith(f"verified {m} "), 60
            )

        assert "REFUSED" not in receiver_log.read_text()
        # One endpoint (the SDK found the curl quickstart's): three attempts, each a 204.
        deadline = time.monotonic() + 30
        while len(statuses := [a["responseStatusCode"] for a in attempts(port)]) < 3:
            assert time.monotonic() < deadline, statuses
            time.sleep(0.05)
        assert statuses == [204, 204, 204], statuses
    finally:
        if receiver is not None:
            stop_group(receiver)
        stop_group(server)
