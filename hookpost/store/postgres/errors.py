"""Driver errors translated at the boundary (procrastinate's ``wrap_exceptions()`` idea).

Every public store method is wrapped once, so the methods themselves hold no try/except for
the common cases:

* a unique violation becomes :class:`Conflict`, a foreign-key violation :class:`NotFound`
  (the missing row's kind and key are read from the error detail);
* anything meaning "the database cannot be reached right now" (refused or dropped
  connections, a server shutting down or starting up, too many connections, a failover to a
  read-only standby, a statement timeout, a deadlock victim) becomes
  :class:`StoreUnavailable`, which callers may retry.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import asyncpg

from hookpost.domain.errors import Conflict, NotFound, StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")

# SQLSTATE classes / errors after which the same call may succeed later.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08, incl. ConnectionDoesNotExistError
    asyncpg.exceptions.OperatorInterventionError,  # 57: admin shutdown, cannot connect now, ...
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # 40: deadlock victim, serialization failure
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006: failed over to a standby
    OSError,  # refused, reset, unreachable, DNS; also ConnectionError and TimeoutError
    TimeoutError,  # connect or command timeout (an OSError too, listed for clarity)
)

_CLOSED_MARKERS = (
    "connection is closed",
    "connection was closed",
    "underlying connection",
    "released back to the pool",  # a pooled connection closed under the caller
)

# Which rows a unique violation on each table is about, in the SQLite backend's words.
_CONFLICT_SUBJECT = {
    "applications": "an application with this uid",
    "event_types": "an event type with this name",
    "endpoints": "an endpoint with this uid",
    "messages": "a message with this id",
    "attempts": "an attempt with this id",
    "api_tokens": "an API token with this hash",
}
_KIND = {"applications": "application", "endpoints": "endpoint", "messages": "message"}
_FK_DETAIL = re.compile(r'\)=\((?P<key>.*)\) is not present in table "(?P<table>[^"]+)"')


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, UNAVAILABLE):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        return any(marker in text for marker in _CLOSED_MARKERS)
    # A query sent in the instant between the server's "terminating connection" message and
    # the socket closing finds the protocol stuck ("another operation is in progress"). The
    # store never shares a connection between tasks, so this is that race; the connection
    # is seen closed a moment later and the pool replaces it on the next acquire.
    return isinstance(exc, asyncpg.exceptions.InternalClientError)


def conflict(exc: asyncpg.UniqueViolationError) -> Conflict:
    subject = _CONFLICT_SUBJECT.get(exc.table_name or "")
    if subject is None:
        return Conflict(f"duplicate key ({exc.constraint_name})")
    return Conflict(f"{subject} already exists")


def not_found(exc: asyncpg.ForeignKeyViolationError) -> NotFound:
    match = _FK_DETAIL.search(exc.detail or "")
    if match is None:
        return NotFound(exc.table_name or "row")
    table = match["table"]
    return NotFound(_KIND.get(table, table), match["key"])


def translate(exc: BaseException) -> BaseException | None:
    """The domain error for a driver error, or None to let it propagate unchanged."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return conflict(exc)
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return not_found(exc)
    if is_unavailable(exc):
        return StoreUnavailable(f"postgres: {type(exc).__name__}: {exc}".rstrip(": "))
    return None


def wrap_exceptions(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorate an async store method so driver errors leave it as domain errors."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
            OSError,
        ) as exc:
            domain = translate(exc)
            if domain is None:
                raise
            raise domain from exc

    return wrapper
