"""Fixtures for the multi-process tests: clusters of real processes, receivers, a private
PostgreSQL server, log tails on failure, and a throughput report at the end of the run; and,
from the integration tests, ``serve_api`` and ``any_database_url``.

Under xdist the tests of this directory run in two groups, each one test at a time in one
worker (see ``SERIAL_GROUPS`` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENV_REQUIRE, THROUGHPUT_PROPERTY, require_postgres
from tests.integration.conftest import any_database_url as any_database_url
from tests.integration.conftest import serve_api as serve_api
from tests.support.cluster import (
    Cluster,
    CountingReceiver,
    PrivatePostgres,
    find_pg_bindir,
    private_postgres_unavailable,
)

CLUSTERS = pytest.StashKey[list[Cluster]]()


@pytest.fixture
async def make_cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., Cluster]]:
    """``make_cluster(database_url, **settings)``: processes are stopped after the test."""
    clusters: list[Cluster] = []
    request.node.stash[CLUSTERS] = clusters

    def make(database_url: str, **settings: str) -> Cluster:
        workdir = tmp_path / f"cluster{len(clusters) + 1}"
        workdir.mkdir()
        cluster = Cluster(database_url, workdir, **settings)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        await cluster.close()


@pytest.fixture
async def make_receiver() -> AsyncIterator[Callable[..., Awaitable[CountingReceiver]]]:
    receivers: list[CountingReceiver] = []

    async def make(delay_s: float = 0.0) -> CountingReceiver:
        receiver = await CountingReceiver(delay_s).start()
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        await receiver.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own, which it may stop and start.

    Skipped when the server binaries are missing, or failed with HOOKPOST_REQUIRE_POSTGRES=1
    (tests using it carry the ``postgres`` marker, so a skip also fails CI there).
    """
    reason = private_postgres_unavailable()
    bindir = find_pg_bindir()
    if reason is not None or bindir is None:
        message = f"cannot run a private PostgreSQL server: {reason}"
        if require_postgres():
            pytest.fail(f"{message} ({ENV_REQUIRE}=1)", pytrace=False)
        pytest.skip(message)
    server = PrivatePostgres(bindir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def report_throughput(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def report(line: str) -> None:
        # Through the test's report, which reaches the reporting process under xdist too; the
        # lines are printed at the end of the run (tests/conftest.py).
        request.node.user_properties.append((THROUGHPUT_PROPERTY, f"{request.node.name}: {line}"))

    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.failed:
        clusters = item.stash.get(CLUSTERS, [])
        for n, cluster in enumerate(clusters, 1):
            report.sections.append((f"hookpost process logs (cluster {n})", cluster.logs(60)))
    return report
