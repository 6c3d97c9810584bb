"""SQLite's errors as the store's domain errors."""

from __future__ import annotations

import sqlite3

from hookpost.domain.errors import Conflict, StoreUnavailable

# Primary result codes that say the database cannot be used right now, not that the statement
# is wrong: locked or busy, an I/O error, the file cannot be opened, the disk is full.
TRANSIENT_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_PROTOCOL,
    }
)


def conflict(exc: sqlite3.IntegrityError, what: str) -> Conflict:
    return Conflict(f"{what} already exists") if "UNIQUE" in str(exc) else Conflict(str(exc))


def is_transient(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in TRANSIENT_CODES


def translate(exc: BaseException) -> BaseException:
    """A transient SQLite error as :class:`StoreUnavailable` (the API's 503, which a client may
    retry); any other error as it is (a bug or a statement SQLite refuses: a 500)."""
    return StoreUnavailable(f"sqlite: {exc}") if is_transient(exc) else exc
