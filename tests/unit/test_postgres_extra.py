"""asyncpg is the ``postgres`` extra: without it a PostgreSQL URL is refused with one line that
says what to install, and SQLite needs none of it. (The wheel-install test checks the same with
asyncpg really absent: tests/multiprocess/test_wheel_install.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hookpost.settings import Settings
from hookpost.wiring import ConfigError, Hookpost, check_database_url, migrate_database

URL = "postgresql://hookpost@127.0.0.1:5432/hookpost"


@pytest.fixture
def no_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # what find_spec and import see as absent


@pytest.mark.usefixtures("no_asyncpg")
def test_a_postgres_url_without_asyncpg_says_to_install_the_extra() -> None:
    for start in (
        lambda: check_database_url(URL),
        lambda: migrate_database(URL),
        lambda: Hookpost(Settings(database_url=URL)),
    ):
        with pytest.raises(ConfigError, match=r"pip install 'hookpost\[postgres\]'"):
            start()


@pytest.mark.usefixtures("no_asyncpg")
def test_sqlite_does_not_need_asyncpg(tmp_path: Path) -> None:
    check_database_url(f"sqlite:///{tmp_path}/h.db")


def test_with_asyncpg_a_postgres_url_passes_the_check() -> None:
    check_database_url(URL)
