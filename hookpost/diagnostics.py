"""``hookpost doctor``'s checks of a deployment's settings, run where its processes run, and
the one-line account of a database that cannot be opened (for every command that opens one).

Each check gives one line: what it found and, for a failure, what to do
(docs/decisions/0041-cli-for-daily-work.md)."""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hookpost.settings import Settings
from hookpost.store.migrate import HEAD_REVISION, current_revisions, known_revisions
from hookpost.store.secretbox import AeadBox, endpoint_keys_context, parse_main_key
from hookpost.wiring import (
    ConfigError,
    address_policy,
    build_store,
    check_database_url,
    is_postgres,
    sqlite_path,
)

OK, WARN, FAIL = "ok", "warn", "fail"
CONNECT_TIMEOUT_S = 5.0
CLOCK_OK_S = 1.0  # a skew beyond this is worth a warning
CLOCK_FAIL_S = 30.0  # ... and beyond this a failure (receivers check signature timestamps)
NTP_FIX = "sync this host's clock with NTP (e.g. `timedatectl set-ntp true`, or chrony)"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # OK, WARN or FAIL
    detail: str
    fix: str = ""


@dataclass(slots=True)
class Database:
    """What connecting to the database learned: its revisions and, on PostgreSQL, its clock."""

    ok: bool = False
    revisions: list[str] | None = None
    skew_s: float | None = None  # the database's clock minus this host's


async def run_checks(settings: Settings) -> list[Check]:
    """Every local check, in the order printed."""
    db_check, db = await check_database(settings)
    checks = [db_check]
    checks.append(check_migrations(db))
    checks.append(await check_main_key(settings, db))
    checks.append(check_ssrf(settings))
    checks.append(check_clock(db, settings))
    checks.append(await check_port(settings.host, settings.port))
    return checks


# --------------------------------------------------------------------------- database


async def check_database(settings: Settings) -> tuple[Check, Database]:
    url = settings.database_url
    db = Database()
    try:
        check_database_url(url)
    except ConfigError as exc:
        return Check("database", FAIL, str(exc)), db
    shown = redact(url)
    path = sqlite_path(url)
    if path is not None and (missing := sqlite_file_missing(path, shown)) is not None:
        if missing.status == OK:
            db.ok, db.revisions = True, []
        return missing, db
    try:
        if path is None:
            db.skew_s = await postgres_skew(url)
        db.revisions = await current_revisions(url)
    except Exception as exc:
        problem = database_problem(exc, url)
        if problem is None:
            detail = f"cannot open {shown}: {type(exc).__name__}: {exc}"
            return Check("database", FAIL, detail, "check HOOKPOST_DATABASE_URL (or --db)"), db
        return Check("database", FAIL, problem), db
    db.ok = True
    return Check("database", OK, f"{shown} answers"), db


def sqlite_file_missing(path: str, shown: str) -> Check | None:
    """The check of a SQLite file that does not exist yet (None when it does)."""
    if os.path.exists(path):
        return None
    parent = Path(path).resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        why = "does not exist" if not parent.is_dir() else "is not writable"
        fix = "create it, or point HOOKPOST_DATABASE_URL (or --db) elsewhere"
        return Check("database", FAIL, f"{shown}: its directory {parent} {why}", fix)
    return Check("database", OK, f"{shown} does not exist yet (created on first start)")


async def postgres_skew(url: str) -> float:
    """The database's clock minus this host's, in seconds (from the middle of the query)."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    try:
        before = time.time()
        theirs = await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
        after = time.time()
    finally:
        await conn.close()
    return float(theirs) - (before + after) / 2


def check_migrations(db: Database) -> Check:
    if db.revisions is None:
        return Check("migrations", WARN, "not checked: the database cannot be read")
    if db.revisions == [HEAD_REVISION]:
        return Check("migrations", OK, f"at revision {HEAD_REVISION}, the latest")
    fix = "run `hookpost migrate` (serve, api and worker also migrate when they start)"
    if not db.revisions:
        return Check("migrations", WARN, "the schema is not created yet", fix)
    unknown = [r for r in db.revisions if r not in known_revisions()]
    if unknown:
        return Check(
            "migrations",
            FAIL,
            f"at revision {', '.join(unknown)}, which this hookpost does not know (a newer "
            f"version migrated it; this one is at {HEAD_REVISION})",
            "run the hookpost version that migrated it, or upgrade this one",
        )
    at = ", ".join(db.revisions)
    return Check("migrations", WARN, f"at revision {at}; this hookpost is at {HEAD_REVISION}", fix)


# --------------------------------------------------------------------------- main key


async def check_main_key(settings: Settings, db: Database) -> Check:
    keygen = "run `hookpost keygen` and set HOOKPOST_MAIN_KEY=<that value> in every process"
    path = sqlite_path(settings.database_url)
    if settings.main_key:
        source = "HOOKPOST_MAIN_KEY"
        try:
            key = parse_main_key(settings.main_key)
        except ValueError as exc:
            return Check("main key", FAIL, str(exc), keygen)
    elif path is None or settings.production:
        why = "PostgreSQL" if path is None else "HOOKPOST_PRODUCTION"
        return Check(
            "main key",
            FAIL,
            f"HOOKPOST_MAIN_KEY is not set ({why} needs it: it encrypts endpoint secrets at "
            "rest, and every process must use the same one)",
            keygen,
        )
    else:
        found = key_file_key(Path(f"{path}.key"))
        if isinstance(found, Check):
            return found
        key, source = found
    if not db.ok or db.revisions != [HEAD_REVISION]:
        return Check("main key", OK, f"from {source} (not tried on the database's secrets)")
    problem = await sealed_secrets_problem(settings, key)
    if problem is not None:
        return Check(
            "main key",
            FAIL,
            f"from {source}: {problem}",
            "use the key that sealed this database's secrets (the other processes' one)",
        )
    return Check("main key", OK, f"from {source}; opens this database's secrets")


def key_file_key(key_file: Path) -> Check | tuple[bytes, str]:
    """The SQLite key file's key and where it came from; or the check that ends there."""
    if not key_file.exists():
        return Check("main key", OK, f"{key_file} is generated on first start")
    try:
        return parse_main_key(key_file.read_text()), f"the key file {key_file}"
    except (OSError, ValueError) as exc:
        return Check(
            "main key",
            FAIL,
            f"{key_file}: {exc}",
            "restore the key file from a backup (the secrets it sealed need it)",
        )


async def sealed_secrets_problem(settings: Settings, key: bytes) -> str | None:
    """Why ``key`` cannot open the database's endpoint secrets (None: it can, or none exist)."""
    box = AeadBox(key)
    store = build_store(settings, box)
    await store.open()
    try:
        found = await store.any_sealed_keys()
    finally:
        await store.close()
    if found is None:
        return None
    endpoint_id, sealed = found
    try:
        box.open(sealed, endpoint_keys_context(endpoint_id))
    except ValueError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------- SSRF, clock, port


def check_ssrf(settings: Settings) -> Check:
    try:
        policy = address_policy(settings)
    except ConfigError as exc:
        return Check("ssrf", FAIL, str(exc), "write CIDRs separated by commas: 10.0.0.0/8,::1")
    https = "; https:// URLs only" if settings.https_only else ""
    if not policy.enabled:
        detail = "the guard is off (HOOKPOST_SSRF_GUARD=0): endpoints may reach any address, "
        detail += "including this host and cloud metadata services" + https
        fix = "unset HOOKPOST_SSRF_GUARD and allow what you need in HOOKPOST_ALLOW_SUBNETS"
        return Check("ssrf", FAIL if settings.production else WARN, detail, fix)
    if policy.allowed:
        allowed = ", ".join(str(n) for n in policy.allowed)
        return Check("ssrf", OK, f"guard on; private addresses allowed: {allowed}{https}")
    return Check(
        "ssrf",
        OK,
        "guard on: private, loopback and link-local addresses are refused (receivers on "
        "this host need HOOKPOST_ALLOW_SUBNETS=127.0.0.1/32)" + https,
    )


def check_clock(db: Database, settings: Settings) -> Check:
    if db.skew_s is None:
        if is_postgres(settings.database_url):
            return Check("clock", WARN, "not compared: the database cannot be read")
        return Check("clock", OK, "nothing to compare with (SQLite lives on this host)")
    return clock_check(db.skew_s, "the database's")


def clock_check(skew_s: float, whose: str) -> Check:
    """A check of this host's clock against another (``skew_s``: theirs minus ours)."""
    off = abs(skew_s)
    side = "behind" if skew_s > 0 else "ahead of"
    detail = f"this host's clock is {off:.1f} s {side} {whose}"
    if off <= CLOCK_OK_S:
        return Check("clock", OK, f"{detail} (within {CLOCK_OK_S:g} s)")
    if off <= CLOCK_FAIL_S:
        return Check("clock", WARN, detail, NTP_FIX)
    detail += ": receivers may refuse the signatures' timestamps"
    return Check("clock", FAIL, detail, NTP_FIX)


async def check_port(host: str, port: int) -> Check:
    where = f"{host}:{port}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            failure = exc
        else:
            return Check("port", OK, f"{where} is free for the API")
    if failure.errno == errno.EADDRINUSE:
        if await answers_as_hookpost(host, port):
            return Check("port", OK, f"{where} is taken by a hookpost that answers there")
        return Check(
            "port",
            FAIL,
            f"{where} is in use by another program",
            "stop it, or set HOOKPOST_PORT (or --port) to a free port",
        )
    fix = "use a port above 1023" if failure.errno == errno.EACCES else "set HOOKPOST_HOST"
    return Check("port", FAIL, f"cannot listen on {where}: {failure.strerror}", fix)


async def answers_as_hookpost(host: str, port: int) -> bool:
    import aiohttp

    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    netloc = f"[{target}]:{port}" if ":" in target else f"{target}:{port}"
    timeout = aiohttp.ClientTimeout(total=3)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://{netloc}/api/v1/health/ping") as resp,
        ):
            return resp.status == 204
    except (aiohttp.ClientError, TimeoutError):
        return False


# --------------------------------------------------------------------------- database errors


def database_problem(exc: BaseException, database_url: str) -> str | None:
    """One line that says why the database cannot be opened and what to do, or None when
    ``exc`` (or what it wraps) is not such an error."""
    for error in _causes(exc):
        if is_postgres(database_url):
            problem = _postgres_problem(error, database_url)
        else:
            problem = _sqlite_problem(error, sqlite_path(database_url) or database_url)
        if problem is not None:
            return problem
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it wraps: its cause, context, SQLAlchemy's ``orig``, a group's."""
    queue: list[object] = [exc]
    seen: set[int] = set()
    while queue:
        error = queue.pop(0)
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        queue += [getattr(error, "orig", None), error.__cause__, error.__context__]
        if isinstance(error, BaseExceptionGroup):
            queue += list(error.exceptions)


def _postgres_problem(error: BaseException, url: str) -> str | None:
    import asyncpg

    parts = urlsplit(url)
    host = parts.hostname or "the local socket"
    port = parts.port or 5432
    where = f"{host}:{port}" if parts.hostname else host
    server = f"-h {host} -p {port} " if parts.hostname else ""
    name = unquote(parts.path.lstrip("/")) or parts.username or "postgres"
    user = parts.username or "postgres"
    fix_url = "fix HOOKPOST_DATABASE_URL (or --db)"
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        return (
            f'PostgreSQL at {where} has no database "{name}": create it (`createdb {server}'
            f"-U {user} {name}`), or {fix_url}; `hookpost migrate` then creates the schema"
        )
    if isinstance(
        error, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return f"PostgreSQL at {where} refused user {user!r} ({error}): {fix_url}"
    if isinstance(error, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return (
            f"PostgreSQL at {where} takes no connection now ({error}): retry later, or raise "
            "its max_connections"
        )
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the database host {host!r} ({error.strerror}): {fix_url}"
    if isinstance(error, TimeoutError):
        return (
            f"PostgreSQL at {where} did not answer in time: check the host and port "
            f"({fix_url}) and that no firewall is in the way"
        )
    if isinstance(error, OSError) and error.errno is not None:
        reason = "connection refused" if isinstance(error, ConnectionRefusedError) else None
        return (
            f"cannot reach PostgreSQL at {where} ({reason or error.strerror}): start the "
            f"server, or {fix_url}"
        )
    return None


def _sqlite_problem(error: BaseException, path: str) -> str | None:
    fix = "check that the directory exists and that this user may write there, or fix "
    fix += "HOOKPOST_DATABASE_URL (or --db)"
    if isinstance(error, OSError) and _names(error.filename, path):
        return f"cannot open the SQLite database {path} ({error.strerror}): {fix}"
    if isinstance(error, sqlite3.DatabaseError):
        text = str(error)
        if "unable to open" in text or "readonly" in text:
            return f"cannot open the SQLite database {path} ({text}): {fix}"
        if "not a database" in text:
            return f"{path} is not a SQLite database ({text}): {fix}"
    return None


def _names(filename: object, path: str) -> bool:
    """Whether an OSError's ``filename`` is the database file, or a directory above it (or a
    file beside it: its key file, its lock file)."""
    if not isinstance(filename, str) or not filename:
        return False
    named, full = Path(os.path.abspath(filename)), Path(os.path.abspath(path))
    return str(named).startswith(str(full)) or named in full.parents


def redact(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
