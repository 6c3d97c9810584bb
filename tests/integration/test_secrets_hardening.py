"""Issue 25.3 and 25.12: secrets at rest, the gaps.

* The SQLite database and its ``-wal``/``-shm`` files are created 0600.
* A sealed endpoint key is bound to its row (AES-GCM associated data: the endpoint's id and
  the format version); keys sealed before that still open, and are bound when next written.
* Custom header values that hold secrets (``Authorization``, ``Cookie``, ``X-Api-Key``, any
  name that suggests one: ``domain.headers``) are sealed at rest, and still sent.
* Two processes starting at once on a fresh database agree on one main key: the one that did
  not create ``<db>.key`` waits for the whole key instead of reading a half-written file.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import asyncpg
import orjson
import pytest

from hookpost import wiring
from hookpost.domain.inputs import NewEndpoint
from hookpost.settings import Settings
from hookpost.store.secretbox import AeadBox, generate_main_key, parse_main_key
from hookpost.wiring import Hookpost
from tests.support.receiver import Receiver


@pytest.fixture(autouse=True)
def _no_hookpost_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HOOKPOST_"):
            monkeypatch.delenv(name)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_sqlite_files_are_created_private(fresh_sqlite_url: str):
    old = os.umask(0o022)  # a usual umask: files would be 0644
    try:
        async with Hookpost.open(fresh_sqlite_url) as hp:
            app = await hp.apps.create("Private")
            await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/hook"))
            path = Path(fresh_sqlite_url.removeprefix("sqlite:///"))
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            assert {str(f): mode(f) for f in files} == {str(f): 0o600 for f in files}
    finally:
        os.umask(old)


def test_key_file_half_written_by_another_process_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Another process created ``<db>.key`` (O_EXCL) and has written part of its key: this one
    waits for the rest instead of failing on (or, worse, using) the part."""
    key = generate_main_key()
    key_path = tmp_path / "hookpost.db.key"
    key_path.write_text(key[:10])
    waits = []

    def other_process_finishes(seconds: float) -> None:
        waits.append(seconds)
        key_path.write_text(key + "\n")

    monkeypatch.setattr(wiring.time, "sleep", other_process_finishes)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hookpost.db'}")
    assert wiring.resolve_main_key(settings) == parse_main_key(key)
    assert waits


def test_a_key_file_left_empty_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A process that died between creating ``<db>.key`` and writing it left it empty: start-up
    says which file is wrong (a ConfigError), after the wait, instead of a traceback."""
    key_path = tmp_path / "hookpost.db.key"
    key_path.write_text("")
    monkeypatch.setattr(wiring, "KEY_FILE_WAIT_S", 0.0)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hookpost.db'}")
    with pytest.raises(wiring.ConfigError, match=r"hookpost\.db\.key"):
        wiring.resolve_main_key(settings)


def test_processes_starting_at_once_share_one_key(tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hookpost.db'}")
    starters = 8
    barrier = threading.Barrier(starters)
    keys: list[bytes] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            keys.append(wiring.resolve_main_key(settings))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(keys) == starters and len(set(keys)) == 1
    assert mode(tmp_path / "hookpost.db.key") == 0o600


def run_sql(url: str, statement: str, *params: object) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


async def test_sealed_keys_moved_to_another_endpoint_do_not_open(fresh_sqlite_url: str):
    """A sealed key is bound to its endpoint's row: copied into another endpoint's row (by
    someone who can write the database but not read the main key) it does not open there,
    so it cannot make that endpoint sign with the first one's secret."""
    async with Hookpost.open(fresh_sqlite_url) as hp:
        app = await hp.apps.create("Bound")
        a = await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/a"))
        b = await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/b"))
    run_sql(
        fresh_sqlite_url,
        "UPDATE endpoints SET keys = (SELECT keys FROM endpoints WHERE id = ?) WHERE id = ?",
        a.id,
        b.id,
    )
    async with Hookpost.open(fresh_sqlite_url) as hp:
        assert (await hp.endpoints.get(app.id, a.id)).secret == a.secret
        with pytest.raises(ValueError):
            moved = await hp.endpoints.get(app.id, b.id)
            assert moved.secret != a.secret, "endpoint b opened endpoint a's secret"


async def test_keys_sealed_before_binding_still_open_and_are_bound_when_written(
    fresh_sqlite_url: str,
):
    key = generate_main_key()
    async with Hookpost.open(fresh_sqlite_url, main_key=key) as hp:
        app = await hp.apps.create("Old")
        ep = await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/a"))
    old = AeadBox(parse_main_key(key)).seal(orjson.dumps([[ep.secret, None]]))  # v1, unbound
    assert old.startswith("v1:")
    run_sql(fresh_sqlite_url, "UPDATE endpoints SET keys = ? WHERE id = ?", old, ep.id)
    async with Hookpost.open(fresh_sqlite_url, main_key=key) as hp:
        assert (await hp.endpoints.get(app.id, ep.id)).secret == ep.secret
        await hp.endpoints.rotate_secret(app.id, ep.id)
    conn = sqlite3.connect(fresh_sqlite_url.removeprefix("sqlite:///"))
    try:
        (sealed,) = conn.execute("SELECT keys FROM endpoints WHERE id = ?", (ep.id,)).fetchone()
    finally:
        conn.close()
    assert sealed.startswith("v2:")


async def stored_headers(url: str, endpoint_id: str) -> str:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            query = "SELECT headers FROM endpoints WHERE id = ?"
            return str(conn.execute(query, (endpoint_id,)).fetchone()[0])
        finally:
            conn.close()
    pg = await asyncpg.connect(url)
    try:
        return str(await pg.fetchval("SELECT headers FROM endpoints WHERE id = $1", endpoint_id))
    finally:
        await pg.close()


async def test_sensitive_header_values_are_sealed_at_rest_and_still_sent(
    any_database_url: str, receiver: Receiver
):
    secret_values = {
        "Authorization": "Bearer authz-value-5c1d",
        "Cookie": "session=cookie-value-77ab",
        "X-Api-Key": "apikey-value-0e9f",
        "X-Service-Token": "token-value-3b2a",  # a name that suggests a secret
    }
    headers = {**secret_values, "X-Plain": "plain-value-visible"}
    url = receiver.url("/headers-hook")
    async with Hookpost.open(
        any_database_url,
        worker=True,
        allow_subnets="127.0.0.0/8",
        poll_interval_s=0.05,
        main_key=generate_main_key(),
    ) as hp:
        app = await hp.apps.create("Headers")
        ep = await hp.endpoints.create(app.id, NewEndpoint(url=url, headers=headers))
        assert (await hp.endpoints.get(app.id, ep.id)).headers == headers
        await hp.messages.send(app.id, "a.b", {"n": 1})
        await receiver.wait_for(1, "/headers-hook")
        (got,) = receiver.on("/headers-hook")
        for name, value in headers.items():
            assert got.headers[name] == value
    stored = await stored_headers(any_database_url, ep.id)
    assert "plain-value-visible" in stored  # a control: the column is the one read
    for value in secret_values.values():
        assert value not in stored and value.split("=")[-1] not in stored
