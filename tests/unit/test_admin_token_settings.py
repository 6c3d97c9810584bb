"""HOOKPOST_PRODUCTION refuses an admin token shorter than 32 characters; ``--expires``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from hookpost.cli import parse_expiry
from hookpost.settings import Settings
from hookpost.wiring import ConfigError, check_admin_token


def test_production_refuses_a_short_admin_token() -> None:
    with pytest.raises(ConfigError, match="HOOKPOST_ADMIN_TOKEN") as refused:
        check_admin_token(Settings(production=True, admin_token="x" * 31))
    assert "x" * 31 not in str(refused.value)  # the value itself is never echoed
    check_admin_token(Settings(production=True, admin_token="x" * 32))
    check_admin_token(Settings(production=True))  # none set: one is generated (long)
    check_admin_token(Settings(admin_token="short"))  # not in production


def test_parse_expiry() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry("3600") == 3600
    assert parse_expiry("90m") == 5400
    assert parse_expiry("12h") == 43200
    assert parse_expiry("30D") == 30 * 86400
    assert parse_expiry("2026-01-02T00:00:00Z", now) == 86400
    assert parse_expiry("2026-01-01T01:00:00", now) == 3600  # no zone: UTC
    for bad in ("", "soon", "0", "-5", "1w", "2025-12-31T00:00:00Z"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_expiry(bad, now)
