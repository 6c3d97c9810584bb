"""The deployment recipes (issue 24): the systemd units pass ``systemd-analyze verify``, and the
Dockerfile and compose file say what docs/deploy.md promises. (No container engine here: the
image's build steps, deploy/install.sh, run in CI; its health check runs in
tests/multiprocess/test_wheel_install.py.)"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
ENV_REQUIRE = "HOOKPOST_REQUIRE_SYSTEMD_ANALYZE"  # CI sets it where it could install the tool
INSTALLED = "/opt/hookpost/bin/hookpost"  # where deploy/install.sh /opt/hookpost puts it


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get(ENV_REQUIRE) == "1":
            pytest.fail(f"systemd-analyze is not installed ({ENV_REQUIRE}=1)")
        pytest.skip("systemd-analyze is not installed (CI installs it: .ci/run)")
    return tool


def system_units() -> Path:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    pytest.fail("systemd-analyze is installed but its units (sysinit.target) are not")


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "verify", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=120,
    )


def image_root(tmp_path: Path) -> Path:
    """A root with systemd's own units, ours, their environment file and the installed
    command (verify checks that ExecStart is executable)."""
    root = tmp_path / "root"
    shutil.copytree(system_units(), root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(UNITS, root / "etc/systemd/system", ignore=shutil.ignore_patterns("*.example"))
    (root / "etc/hookpost").mkdir(parents=True)
    shutil.copy(UNITS / "hookpost.env.example", root / "etc/hookpost/hookpost.env")
    command = root / INSTALLED.lstrip("/")
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    return root


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root = image_root(tmp_path)
    done = verify(root, "hookpost-api.service", "hookpost-worker@1.service")
    # Unknown keys and bad values are warnings (exit 0): any output is a failure too.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done


def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key is reported."""
    root = image_root(tmp_path)
    unit = root / "etc/systemd/system/hookpost-api.service"
    unit.write_text(unit.read_text().replace("ExecStart=", "ExecStrat="))
    done = verify(root, "hookpost-api.service")
    assert "ExecStrat" in done.stdout + done.stderr, done


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_the_units_run_the_installed_command_as_an_unprivileged_user() -> None:
    for name, role in (("hookpost-api.service", "api"), ("hookpost-worker@.service", "worker")):
        service = unit(name)["Service"]
        assert service["ExecStart"] == f"{INSTALLED} {role}", name
        assert service["User"] == "hookpost" and service["NoNewPrivileges"] == "yes", name
        assert service["EnvironmentFile"] == "/etc/hookpost/hookpost.env", name
        # Longer than the shutdown grace (10 s by default), so in-flight work can finish.
        assert int(service["TimeoutStopSec"]) > 10, name


def test_the_dockerfile_builds_with_the_install_script_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "RUN /src/deploy/install.sh /opt/hookpost" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}, users
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert "HOOKPOST_HOST=0.0.0.0" in text  # reachable from outside the container


def test_the_compose_file_runs_api_workers_and_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"api", "worker", "postgres", "migrate"} <= set(services)
    assert services["api"]["command"] == ["hookpost", "api"]
    assert services["worker"]["command"] == ["hookpost", "worker"]
    assert services["migrate"]["command"] == ["hookpost", "migrate"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["HOOKPOST_DATABASE_URL"].startswith("postgresql://"), name
        assert "HOOKPOST_MAIN_KEY" in env and env["HOOKPOST_PRODUCTION"] == "1", name
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["postgres"]["image"].startswith("postgres:")
    assert "healthcheck" in services["postgres"]
