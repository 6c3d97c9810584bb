"""SQLite's constraint errors as the store's domain errors."""

from __future__ import annotations

import sqlite3

from hookpost.domain.errors import Conflict


def conflict(exc: sqlite3.IntegrityError, what: str) -> Conflict:
    return Conflict(f"{what} already exists") if "UNIQUE" in str(exc) else Conflict(str(exc))
