"""``hookpost doctor``: one line per check, a fix for each failure, exit 1 on a failure; run
on real SQLite files and a real PostgreSQL server (and an address where none listens)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
from collections.abc import Callable

import pytest

from hookpost.domain.inputs import NewEndpoint
from hookpost.store.secretbox import generate_main_key
from hookpost.wiring import Hookpost
from tests.conftest import with_database
from tests.support.cli import Result, free_port, hookpost

CHECKS = ["database", "migrations", "main key", "ssrf", "clock", "port"]
Doctor = Callable[..., Result]


@pytest.fixture
def doctor(monkeypatch: pytest.MonkeyPatch) -> Doctor:
    """``doctor(db, **env)``: ``hookpost doctor --db db`` on a free port, with only ``env``'s
    HOOKPOST_* variables."""
    for name in list(os.environ):
        if name.startswith("HOOKPOST_"):
            monkeypatch.delenv(name)

    def run(db: str, *flags: str, **env: str) -> Result:
        for key, value in env.items():
            monkeypatch.setenv(f"HOOKPOST_{key.upper()}", value)
        return hookpost("doctor", "--db", db, "--port", str(free_port()), *flags)

    return run


def lines(result: Result) -> dict[str, str]:
    """Each check's line, by check name (every line is one check)."""
    found = {}
    for line in result.out.splitlines():
        status, rest = line[:4], line[6:]
        assert status in ("ok  ", "warn", "FAIL"), line
        name = next(c for c in [*CHECKS, "settings"] if rest.startswith(c))
        found[name] = line
    return found


def test_a_fresh_sqlite_deployment_passes(doctor: Doctor, fresh_sqlite_url: str) -> None:
    result = doctor(fresh_sqlite_url)
    assert result.code == 0, result.out
    found = lines(result)
    assert list(found) == CHECKS
    assert found["database"].startswith("ok    database      sqlite:///")
    assert "does not exist yet" in found["database"]
    assert (
        found["migrations"].startswith("warn")
        and "-> fix: run `hookpost migrate`" in (found["migrations"])
    )
    assert "generated on first start" in found["main key"]
    assert "HOOKPOST_ALLOW_SUBNETS=127.0.0.1/32" in found["ssrf"]
    assert found["port"].startswith("ok") and "is free" in found["port"]


def test_json_output(doctor: Doctor, migrated_sqlite_url: str) -> None:
    result = doctor(migrated_sqlite_url, "--json")
    assert result.code == 0
    checks = result.json()
    assert [c["check"] for c in checks] == CHECKS
    assert {c["status"] for c in checks} == {"ok"}
    assert checks[1]["detail"].startswith("at revision ") and checks[1]["detail"].endswith(
        ", the latest"
    )


def test_missing_main_key_on_postgres_fails_with_the_fix(
    doctor: Doctor, migrated_postgres_url: str
) -> None:
    result = doctor(migrated_postgres_url)
    assert result.code == 1
    found = lines(result)
    assert found["database"].startswith("ok")
    assert found["migrations"].startswith("ok")
    assert found["clock"].startswith("ok") and "the database's" in found["clock"]
    line = found["main key"]
    assert line.startswith("FAIL  main key      HOOKPOST_MAIN_KEY is not set (PostgreSQL needs it")
    assert line.endswith(
        "-> fix: run `hookpost keygen` and set HOOKPOST_MAIN_KEY=<that value> in every process"
    )
    assert lines(doctor(migrated_postgres_url, main_key=generate_main_key()))[
        "main key"
    ].startswith("ok")


def test_unreachable_postgres_fails_in_one_line(doctor: Doctor) -> None:
    result = doctor("postgresql://postgres@127.0.0.1:1/hookpost", main_key=generate_main_key())
    assert result.code == 1 and result.err == ""
    found = lines(result)
    assert found["database"] == (
        "FAIL  database      cannot reach PostgreSQL at 127.0.0.1:1 (connection refused): start "
        "the server, or fix HOOKPOST_DATABASE_URL (or --db)"
    )
    assert found["migrations"].startswith("warn") and "not checked" in found["migrations"]
    assert found["clock"].startswith("warn")


def test_missing_postgres_database_says_how_to_create_it(doctor: Doctor, postgres_url: str) -> None:
    url = with_database(postgres_url, "hookpost_doctor_missing")
    result = doctor(url, main_key=generate_main_key())
    assert result.code == 1
    line = lines(result)["database"]
    assert line.startswith("FAIL  database      PostgreSQL at 127.0.0.1:") and (
        'has no database "hookpost_doctor_missing": create it (`createdb' in line
    )


def test_a_main_key_that_cannot_open_the_secrets(doctor: Doctor, migrated_sqlite_url: str) -> None:
    key = generate_main_key()

    async def endpoint_sealed_with_key() -> None:
        async with Hookpost.open(
            migrated_sqlite_url, main_key=key, allow_subnets="127.0.0.1"
        ) as hp:
            app = await hp.services.apps.create("Acme")
            await hp.services.endpoints.create(app.id, NewEndpoint(url="http://127.0.0.1:9/"))

    asyncio.run(endpoint_sealed_with_key())
    assert (
        "opens this database's secrets"
        in lines(doctor(migrated_sqlite_url, main_key=key))["main key"]
    )
    result = doctor(migrated_sqlite_url, main_key=generate_main_key())
    assert result.code == 1
    line = lines(result)["main key"]
    assert line.startswith("FAIL  main key      from HOOKPOST_MAIN_KEY: ")
    assert line.endswith(
        "-> fix: use the key that sealed this database's secrets (the other processes' one)"
    )


def test_migration_levels(doctor: Doctor, migrated_sqlite_url: str) -> None:
    path = migrated_sqlite_url.removeprefix("sqlite:///")

    def set_revision(revision: str) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))

    set_revision("0016")
    behind = lines(doctor(migrated_sqlite_url))["migrations"]
    assert behind.startswith("warn  migrations    at revision 0016; this hookpost is at ")
    assert "-> fix: run `hookpost migrate`" in behind
    set_revision("9999")
    result = doctor(migrated_sqlite_url)
    assert result.code == 1
    assert lines(result)["migrations"].startswith(
        "FAIL  migrations    at revision 9999, which this hookpost does not know"
    )


def test_ssrf_settings(doctor: Doctor, fresh_sqlite_url: str) -> None:
    bad = doctor(fresh_sqlite_url, allow_subnets="10.0.0.1/8")
    assert bad.code == 1
    assert lines(bad)["ssrf"].startswith(
        "FAIL  ssrf          HOOKPOST_ALLOW_SUBNETS: invalid subnet"
    )
    allowed = lines(doctor(fresh_sqlite_url, allow_subnets="127.0.0.1"))["ssrf"]
    assert allowed.startswith("ok") and "127.0.0.1/32" in allowed
    off = doctor(fresh_sqlite_url, allow_subnets="", ssrf_guard="0")
    assert off.code == 0 and lines(off)["ssrf"].startswith("warn  ssrf          the guard is off")
    production = doctor(fresh_sqlite_url, ssrf_guard="0", production="1")
    found = lines(production)
    assert production.code == 1 and found["ssrf"].startswith("FAIL")
    assert found["main key"].startswith("FAIL")  # production: HOOKPOST_MAIN_KEY, not a file


def test_a_port_taken_by_another_program(doctor: Doctor, fresh_sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = hookpost("doctor", "--db", fresh_sqlite_url, "--port", str(port))
    assert result.code == 1
    assert lines(result)["port"] == (
        f"FAIL  port          127.0.0.1:{port} is in use by another program -> fix: stop it, "
        "or set HOOKPOST_PORT (or --port) to a free port"
    )


def test_a_bad_setting_is_one_failed_check(doctor: Doctor, fresh_sqlite_url: str) -> None:
    result = doctor(fresh_sqlite_url, retry_schedule="1,soon")
    assert result.code == 1
    assert result.out.startswith("FAIL  settings      HOOKPOST_RETRY_SCHEDULE='1,soon'")
