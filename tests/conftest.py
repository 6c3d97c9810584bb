"""Shared fixtures and the PostgreSQL policy for the whole test suite.

PostgreSQL policy
-----------------
* Tests that need PostgreSQL request ``postgres_url`` (the shared test database) or
  ``fresh_postgres_url`` (an empty throwaway database per test), directly or through another
  fixture. Such tests are marked ``postgres`` automatically.
* The server is located by ``HOOKPOST_TEST_DATABASE_URL`` (default below). If the server is up
  but the database is missing, it is created. Under pytest-xdist each worker gets a database of
  its own beside it (``hookpost_test_gw0``, ...; see ``worker_database_url``), so nothing a test
  leaves in ``postgres_url`` is seen by another worker.
* No server: the tests are skipped and a banner at the end says how many. With
  ``HOOKPOST_REQUIRE_POSTGRES=1`` (CI) the fixture fails instead, and any skipped
  ``postgres`` test makes the session exit non-zero.

This module must not import ``hookpost`` at module level (import it lazily inside a fixture if
one ever needs it), so that the harness works while the package is incomplete.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import pytest

ENV_URL = "HOOKPOST_TEST_DATABASE_URL"
ENV_REQUIRE = "HOOKPOST_REQUIRE_POSTGRES"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/hookpost_test"
CONNECT_TIMEOUT = 5.0  # seconds, for each connection attempt made by the fixtures
SKIP_PREFIX = "PostgreSQL not reachable at"
POSTGRES_FIXTURES = frozenset({"postgres_url", "fresh_postgres_url"})
THROUGHPUT_PROPERTY = "hookpost_throughput"  # a user property: a line for the end-of-run report

T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def require_postgres() -> bool:
    return os.environ.get(ENV_REQUIRE, "").strip().lower() in {"1", "true", "yes", "on"}


def configured_url() -> str:
    return os.environ.get(ENV_URL) or DEFAULT_URL


def xdist_worker() -> str | None:
    """This process's pytest-xdist worker id ("gw0", ...), or None outside xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER") or None


def worker_database_url(url: str) -> str:
    """``url`` itself, or under xdist the same server with a database per worker (its name
    suffixed with the worker id), so that parallel workers never share a database."""
    worker = xdist_worker()
    return url if worker is None else with_database(url, f"{database_name(url)}_{worker}")


def redact(url: str) -> str:
    """The URL with any password replaced, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(name, safe="")))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, in its own event loop.

    Uses a worker thread so that it also works if the calling thread already runs a loop.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="conftest-run-sync")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def ensure_database(url: str) -> str | None:
    """Check that ``url`` accepts connections, creating its database if only that is missing.

    Returns None when usable, else a one-line reason.
    """
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except asyncpg.InvalidCatalogNameError:
        name = database_name(url)
        try:
            await execute(with_database(url, "postgres"), f"CREATE DATABASE {quote_ident(name)}")
        except asyncpg.DuplicateDatabaseError:
            pass  # created concurrently by another test run
        except Exception as exc:
            return f"database {name!r} is missing and could not be created: {describe(exc)}"
        try:
            conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            return describe(exc)
    except Exception as exc:  # refused, timeout, auth, bad DSN, ...
        return describe(exc)
    try:
        await conn.fetchval("SELECT 1")
    except Exception as exc:
        return describe(exc)
    finally:
        await conn.close()
    return None


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the shared PostgreSQL test database (created if missing).

    Skips (or fails, with HOOKPOST_REQUIRE_POSTGRES=1) when no server is reachable. pytest
    caches the outcome, so an unreachable server costs one connection attempt per session.
    """
    url = worker_database_url(configured_url())
    reason = run_sync(ensure_database(url))
    if reason is not None:
        message = f"{SKIP_PREFIX} {redact(url)}: {reason}"
        if require_postgres():
            pytest.fail(f"{message} ({ENV_REQUIRE}=1)", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """URL of a new, empty database on the test server; dropped after the test."""
    name = f"hookpost_t_{secrets.token_hex(6)}"
    run_sync(execute(postgres_url, f"CREATE DATABASE {quote_ident(name)}"))
    try:
        yield with_database(postgres_url, name)
    finally:
        run_sync(execute(postgres_url, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)"))


@pytest.fixture(scope="session")
def migrated_template_url(postgres_url: str) -> Iterator[str]:
    """A database migrated to the latest schema once per session, used as a template."""
    from hookpost.store.migrate import upgrade

    name = f"hookpost_tpl_{secrets.token_hex(6)}"
    run_sync(execute(postgres_url, f"CREATE DATABASE {quote_ident(name)}"))
    url = with_database(postgres_url, name)
    try:
        # In a thread of its own: the migration runs its own event loop, and this fixture may
        # be requested from inside a running one.
        run_sync(asyncio.to_thread(upgrade, url))
        yield url
    finally:
        run_sync(execute(postgres_url, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)"))


@pytest.fixture
def migrated_postgres_url(postgres_url: str, migrated_template_url: str) -> Iterator[str]:
    """A new database already at the latest schema (a copy of the template); dropped after."""
    name = f"hookpost_t_{secrets.token_hex(6)}"
    template = quote_ident(database_name(migrated_template_url))
    run_sync(execute(postgres_url, f"CREATE DATABASE {quote_ident(name)} TEMPLATE {template}"))
    try:
        yield with_database(postgres_url, name)
    finally:
        run_sync(execute(postgres_url, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)"))


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hookpost.store.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "hookpost.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def migrated_sqlite_url(tmp_path: Path, migrated_sqlite_template: Path) -> str:
    """A SQLite database file already at the latest schema."""
    import shutil

    target = tmp_path / "hookpost.db"
    shutil.copyfile(migrated_sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def fresh_sqlite_url(tmp_path: Path) -> str:
    """URL of a not-yet-existing SQLite database file in the test's tmp dir."""
    return f"sqlite:///{tmp_path / 'hookpost.db'}"


@pytest.fixture
async def receiver() -> AsyncIterator[Any]:
    """A loopback webhook receiver (``tests.support.receiver.Receiver``), the default a module
    overrides by defining its own."""
    from tests.support.receiver import Receiver

    r = await Receiver().start()
    yield r
    await r.stop()


# --------------------------------------------------------------------------- parallel runs

ENV_WORKERS = "HOOKPOST_TEST_WORKERS"
DEFAULT_WORKERS = 4  # see docs/decisions/0037-test-suite-speed.md


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """The number of xdist workers for ``-n auto`` (pyproject's addopts): HOOKPOST_TEST_WORKERS
    if set; else none (one process) when the command line names only test files or test ids,
    as when working on one area, where starting workers costs more than it saves; else
    DEFAULT_WORKERS. ``-n N`` on the command line overrides all of this."""
    if env := os.environ.get(ENV_WORKERS, "").strip():
        return int(env)
    paths = [a for a in config.args if not a.startswith("-")]
    if paths and all("::" in a or Path(a).is_file() for a in paths):
        return 0
    return DEFAULT_WORKERS


# Under xdist, the tests whose node id starts with one of a group's prefixes run one after
# another in one worker, as one unit of work, beside the other workers' tests. Every test of
# tests/multiprocess starts processes of its own, so at most two such tests run at once (one per
# group), on two cores; the clusters that load PostgreSQL with several processes share a group,
# so two of them never run at once (connections). The groups take about equal time (see
# docs/decisions/0037-test-suite-speed.md); a new file of tests/multiprocess joins "processes".
# (Not the xdist_group marker: pytest-xdist 3.8 cannot rename pytest 9's node ids, so
# --dist loadgroup groups nothing.)
SERIAL_GROUPS: dict[str, tuple[str, ...]] = {
    "clusters": (
        "tests/multiprocess/test_bench_smoke.py",
        "tests/multiprocess/test_scaleout.py",
        "tests/multiprocess/test_scaleout_faults.py",
    ),
    "processes": ("tests/multiprocess/",),  # the rest of the directory
}


def serial_group(nodeid: str) -> str | None:
    for group, prefixes in SERIAL_GROUPS.items():
        if nodeid.startswith(prefixes):
            return group
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist load`` (the default) with SERIAL_GROUPS kept together: every other test is a
    unit of its own, handed to whichever worker is free; the largest units go out first."""
    if config.getoption("dist") != "load":
        return None  # another --dist asked for on the command line: xdist's own
    from xdist.scheduler import LoadScopeScheduling

    class GroupedScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return serial_group(nodeid) or nodeid

    return GroupedScheduling(config, log)


# --------------------------------------------------------------------------- policy hooks


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Auto-mark tests that use a PostgreSQL fixture (directly or via other fixtures;
    item.fixturenames is the transitive closure). tryfirst: before `-m` deselection, so
    `-m "not postgres"` sees the added markers."""
    for item in items:
        fixturenames = set(getattr(item, "fixturenames", ()))
        if fixturenames & POSTGRES_FIXTURES and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    # The policy below runs where reports are read: under xdist that is the controller, which
    # never sees the items, so each report says whether its test is a PostgreSQL one (an
    # attribute of the report travels with it from the worker).
    report = yield
    report.hookpost_postgres = item.get_closest_marker("postgres") is not None
    return report


class PostgresPolicy:
    """Counts PostgreSQL tests that did not run, reports them, and enforces the CI rule.

    Registered in the process that reports (not in xdist workers): it reads only test reports.
    """

    def __init__(self) -> None:
        self.postgres_seen: set[str] = set()  # postgres tests that reported anything
        self.passed: set[str] = set()
        self.skipped: list[str] = []  # postgres tests skipped (any reason)
        self.unreachable: list[str] = []  # postgres tests errored: no server, REQUIRE set
        self.reasons: list[str] = []

    def _note(self, bucket: list[str], nodeid: str, reason: str) -> None:
        if nodeid not in bucket:
            bucket.append(nodeid)
        if reason and reason not in self.reasons:
            self.reasons.append(reason)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        is_postgres = bool(getattr(report, "hookpost_postgres", False))
        if is_postgres:
            self.postgres_seen.add(report.nodeid)
        # An expected failure ran (on PostgreSQL too): pytest reports it as skipped.
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = ""
            # A tuple here, a list once an xdist worker's report has been serialized.
            if isinstance(report.longrepr, tuple | list) and len(report.longrepr) == 3:
                reason = str(report.longrepr[2]).removeprefix("Skipped: ")
            if is_postgres or reason.startswith(SKIP_PREFIX):
                self._note(self.skipped, report.nodeid, reason)
        elif report.failed and report.when == "setup":
            text = str(report.longrepr)
            if SKIP_PREFIX in text:
                self._note(self.unreachable, report.nodeid, text.strip().splitlines()[-1])
        elif report.passed and report.when == "call" and is_postgres:
            self.passed.add(report.nodeid)

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.skipped and require_postgres() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    # A tryfirst wrapper is the outermost one, so the banner comes after pytest's own
    # "short test summary info" and just before the final "N passed, ..." line.
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Iterator[None]:
        yield
        self._banner(terminalreporter)

    def _banner(self, tr: Any) -> None:
        required = require_postgres()
        url = redact(configured_url())
        if not self.skipped and not self.unreachable:
            if required and self.postgres_seen and not self.passed:
                tr.write_sep("=", "WARNING: no PostgreSQL test passed", yellow=True, bold=True)
            return
        n = len(self.skipped) + len(self.unreachable)
        tests = "test" if n == 1 else "tests"
        why = (
            f"no server at {url}"
            if any(r.startswith(SKIP_PREFIX) or SKIP_PREFIX in r for r in self.reasons)
            else "see reasons"
        )
        if required:
            outcome = "SKIPPED" if not self.unreachable else "NOT RUN"
            title = f"{n} PostgreSQL {tests} {outcome} ({why}); {ENV_REQUIRE}=1: run FAILS"
            tr.write_sep("=", title, red=True, bold=True)
        else:
            were = "was" if n == 1 else "were"
            tr.write_sep(
                "=", f"{n} PostgreSQL {tests} {were} SKIPPED ({why})", yellow=True, bold=True
            )
        for reason in self.reasons[:5]:
            tr.write_line(f"  reason: {reason}")
        tr.write_line(
            f"  Set {ENV_URL} to a reachable server (default {DEFAULT_URL};"
            " the database is created if missing), or start PostgreSQL, to run them."
        )
        if not required:
            tr.write_line(
                f"  CI sets {ENV_REQUIRE}=1, which turns a missing server into a failure."
            )


class ThroughputReport:
    """Prints the lines that tests gave the ``report_throughput`` fixture
    (tests/multiprocess/conftest.py), read from their reports."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":  # the last report holds every line the test gave
            self.lines += [v for k, v in report.user_properties if k == THROUGHPUT_PROPERTY]

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.write_sep("-", "scale-out throughput (measured, not asserted)")
            for line in self.lines:
                terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # an xdist worker: the controller reports
        config.pluginmanager.register(PostgresPolicy(), "hookpost-postgres-policy")
        config.pluginmanager.register(ThroughputReport(), "hookpost-throughput-report")
