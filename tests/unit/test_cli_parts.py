"""The CLI's pure parts: the server's errors as one line, URLs, times, payloads, the clock
check's thresholds, and database errors recognised through the exceptions that wrap them."""

from __future__ import annotations

import argparse
import io
import sqlite3
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hookpost.commands.attempts import Follower, _ms
from hookpost.commands.doctor import date_header_skew
from hookpost.commands.options import parse_time, read_json_object
from hookpost.commands.remote import CommandError, base_url, error_line
from hookpost.diagnostics import FAIL, OK, WARN, clock_check, database_problem


def test_error_lines() -> None:
    assert error_line(404, b'{"code":"not_found","detail":"application not found"}') == (
        "404 not_found: application not found"
    )
    validation = (
        b'{"detail":[{"loc":["body","url"],"msg":"bad scheme","type":"value_error"},'
        b'{"loc":["query","limit"],"msg":"too big","type":"x"}]}'
    )
    assert error_line(422, validation) == "422 invalid request: url: bad scheme; limit: too big"
    assert error_line(502, b"<html>\nBad gateway</html>") == (
        "502 from the server: <html> Bad gateway</html>"
    )


def test_base_url_accepts_the_banners_form() -> None:
    assert base_url("http://h:8071/api/v1/") == "http://h:8071"
    assert base_url("h:8071") == "http://h:8071"
    assert base_url("https://hooks.example.com") == "https://hooks.example.com"


def test_parse_time() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert parse_time("2h", now) == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert parse_time("2026-12-01T08:00:00", now) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="neither a duration"):
        parse_time("yesterday", now)


def test_read_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_json_object('{"a": 1}') == {"a": 1}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"b": 2}'))
    assert read_json_object("-") == {"b": 2}
    with pytest.raises(CommandError, match="not null"):
        read_json_object("null")


@pytest.mark.parametrize(
    ("skew", "status"), [(0.4, OK), (-0.9, OK), (5.0, WARN), (-29.0, WARN), (31.0, FAIL)]
)
def test_clock_thresholds(skew: float, status: str) -> None:
    check = clock_check(skew, "the database's")
    assert check.status == status
    assert ("behind" if skew > 0 else "ahead of") in check.detail
    assert bool(check.fix) == (status != OK)


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (100.0, 0.0),  # formatted at 100.x, up to a second before: agrees with [101.2, 101.3]
        (99.5, 0.0),
        (99.0, -0.2),  # at most 100.99...: 0.2 s behind
        (97.0, -2.2),  # at most 98.99...: 2.2 s behind
        (104.0, 2.7),  # at least 104.0: 2.7 s ahead
    ],
)
def test_a_date_header_skew_allows_for_its_resolution(date: float, expected: float) -> None:
    assert date_header_skew(date, 101.2, 101.3) == pytest.approx(expected)


class WrappedByTheDriverLayer(Exception):
    """As SQLAlchemy wraps a DBAPI error: the original on ``orig``."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__("wrapped")
        self.orig = orig


def test_database_problems_are_found_through_their_wrappers() -> None:
    url = "postgresql://app:secret@db.internal:6543/hooks"
    refused = WrappedByTheDriverLayer(ConnectionRefusedError(111, "Connection refused"))
    assert database_problem(refused, url) == (
        "cannot reach PostgreSQL at db.internal:6543 (connection refused): start the server, "
        "or fix HOOKPOST_DATABASE_URL (or --db)"
    )
    try:
        try:
            raise asyncpg.InvalidCatalogNameError('database "hooks" does not exist')
        except asyncpg.InvalidCatalogNameError as exc:
            raise RuntimeError("start-up failed") from exc
    except RuntimeError as outer:
        missing = database_problem(outer, url)
    assert missing is not None and "secret" not in missing
    assert missing.startswith('PostgreSQL at db.internal:6543 has no database "hooks"')
    assert "createdb -h db.internal -p 6543 -U app hooks" in missing
    group = ExceptionGroup("tasks", [ValueError("x"), TimeoutError()])
    assert "did not answer in time" in (database_problem(group, url) or "")
    assert database_problem(ValueError("a bug"), url) is None


def test_sqlite_problems_name_the_file() -> None:
    url = "sqlite:////srv/hookpost/h.db"
    denied = PermissionError(13, "Permission denied", "/srv/hookpost")
    assert database_problem(denied, url) == (
        "cannot open the SQLite database /srv/hookpost/h.db (Permission denied): check that the "
        "directory exists and that this user may write there, or fix HOOKPOST_DATABASE_URL "
        "(or --db)"
    )
    elsewhere = FileNotFoundError(2, "No such file or directory", "/etc/other.pem")
    assert database_problem(elsewhere, url) is None  # not about the database
    not_db = sqlite3.DatabaseError("file is not a database")
    assert "is not a SQLite database" in (database_problem(not_db, url) or "")


def attempt(n: int, ms: int) -> dict[str, Any]:
    when = datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    return {"id": f"atmpt_{n}", "timestamp": when}


class Lists:
    """One endpoint's attempts list, as the API pages it: newest first, after a time."""

    only = None

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def endpoints(self) -> list[str]:
        return ["ep_1"]

    async def newest(self, endpoint: str, limit: int, after_ms: int | None = None) -> list[Any]:
        rows = sorted(self.rows, key=lambda a: a["timestamp"], reverse=True)
        if after_ms is None:
            return rows[:limit]
        return [a for a in rows if _ms(a) > after_ms]


async def test_tail_prints_an_attempt_written_late_once() -> None:
    lists = Lists()
    lists.rows = [attempt(1, 1_000_000)]
    follower = Follower(lists)  # type: ignore[arg-type]
    assert [a["id"] for a in await follower.start(10)] == ["atmpt_1"]
    lists.rows.append(attempt(3, 1_003_000))
    assert [a["id"] for a in await follower.poll(False)] == ["atmpt_3"]
    # Another worker commits an attempt made before atmpt_3, after atmpt_3 was printed.
    lists.rows.append(attempt(2, 1_002_500))
    assert [a["id"] for a in await follower.poll(False)] == ["atmpt_2"]
    assert await follower.poll(False) == []  # each attempt once
