"""Versioned schema migrations through Alembic, for every backend."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from hookpost.store.sqlite.executor import create_private

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions (a test keeps it equal to Alembic's head). Lets a
# process see that the schema is current without importing Alembic (about 1-2 s at start-up).
HEAD_REVISION = "0022"
# Alembic keeps its migration context in module globals, so two threads of one process must
# not migrate at once; other processes are kept apart by the database (or file) lock.
_THREAD_LOCK = threading.Lock()


def sqlalchemy_url(database_url: str) -> str:
    """hookpost URLs (``sqlite:///x.db``, ``postgresql://...``) as SQLAlchemy URLs."""
    if database_url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    return database_url


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to ``revision``. Blocking: call it from a thread in async code."""
    with _THREAD_LOCK:
        _upgrade(database_url, revision)


def _upgrade(database_url: str, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(database_url)
    if database_url.startswith("sqlite:///"):
        # SQLite has no advisory locks: a lock file beside the database serialises processes.
        db_path = Path(database_url.removeprefix("sqlite:///"))
        db_path.parent.mkdir(parents=True, exist_ok=True)
        create_private(str(db_path))
        with open(f"{db_path}.migrate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            command.upgrade(cfg, revision)
        return
    command.upgrade(cfg, revision)


def _sqlite_versions(path: str) -> list[str]:
    if not os.path.exists(path):
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute(_VERSION_QUERY).fetchall()]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


async def _postgres_versions(database_url: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return [r[0] for r in await conn.fetch(_VERSION_QUERY)]
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


_VERSION_QUERY = "SELECT version_num FROM alembic_version"


async def current_revisions(database_url: str) -> list[str]:
    """The revisions the database is at (one, or none when it was never migrated); the
    driver's error when it cannot be read."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        return await asyncio.to_thread(_sqlite_versions, path)
    return await _postgres_versions(database_url)


async def is_current(database_url: str) -> bool:
    """True when the database is already at HEAD_REVISION (cheap: one query, no Alembic)."""
    try:
        return await current_revisions(database_url) == [HEAD_REVISION]
    except Exception:  # anything odd: let Alembic decide
        return False


_REVISION_LINE = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)


def known_revisions() -> set[str]:
    """The revisions this hookpost's migrations define (without importing Alembic)."""
    found = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        if match := _REVISION_LINE.search(path.read_text(encoding="utf-8")):
            found.add(match[1])
    return found
