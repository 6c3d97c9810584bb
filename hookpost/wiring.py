"""Wiring, in one place: settings -> store -> services -> sender -> worker.

``Hookpost`` is the assembled runtime. The CLI, the ASGI app and library users all build it
here, so every entry point gets the same store, secrets handling and delivery options::

    async with Hookpost.open("sqlite:///hooks.db") as hp:
        app = await hp.apps.create("Acme")
        await hp.endpoints.create(app.id, NewEndpoint(url="https://example.com/hook"))
        await hp.messages.send(app.id, "invoice.paid", {"id": 1})
        await hp.start_worker()   # deliver from this event loop
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hookpost.delivery.http import HttpSender
from hookpost.delivery.relay import RelayRoutingSender
from hookpost.delivery.ssrf import AddressPolicy, check_url_target
from hookpost.delivery.worker import DeliveryWorker, WorkerConfig
from hookpost.domain.errors import InvalidInput
from hookpost.domain.relay import relay_token
from hookpost.services import Services
from hookpost.services.alert_evaluator import AlertRunner
from hookpost.services.apps import AppService
from hookpost.services.endpoints import EndpointService, UrlCheck
from hookpost.services.event_types import EventTypeService
from hookpost.services.messages import MessageService
from hookpost.services.tasks import TaskRunner
from hookpost.services.tracing_env import TracingConfigError
from hookpost.services.tracing_env import load as load_tracing
from hookpost.settings import Settings
from hookpost.store.base import Store
from hookpost.store.migrate import is_current
from hookpost.store.secretbox import (
    AeadBox,
    endpoint_keys_context,
    generate_main_key,
    parse_main_key,
)

if TYPE_CHECKING:
    from hookpost.services.tracing import Tracing

log = logging.getLogger("hookpost")


class ConfigError(Exception):
    """A setting that prevents start-up; the message says how to fix it."""


def sqlite_path(database_url: str) -> str | None:
    if database_url.startswith("sqlite:///"):
        return database_url.removeprefix("sqlite:///")
    return None


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgresql://", "postgres://"))


def check_database_url(database_url: str) -> None:
    if sqlite_path(database_url):
        return
    if is_postgres(database_url):
        # asyncpg is the `postgres` extra: SQLite-only installs do not have it.
        if importlib.util.find_spec("asyncpg") is None:
            raise ConfigError(
                "a postgresql:// database needs the PostgreSQL driver, which is not installed: "
                "pip install 'hookpost[postgres]'"
            )
        return
    raise ConfigError(
        f"unsupported database URL {database_url!r}: use sqlite:///path/to/file.db "
        "or postgresql://user@host:port/dbname"
    )


def resolve_main_key(settings: Settings) -> bytes:
    """The key that seals endpoint secrets at rest.

    Set ``HOOKPOST_MAIN_KEY`` in production and for PostgreSQL (every process must share it).
    The embedded SQLite default keeps a generated key in a file beside the database.
    """
    if settings.main_key:
        try:
            return parse_main_key(settings.main_key)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    path = sqlite_path(settings.database_url)
    if settings.production or path is None:
        raise ConfigError(
            "HOOKPOST_MAIN_KEY is not set. It encrypts endpoint secrets at rest and every "
            "hookpost process must use the same one. Generate one with "
            "`hookpost keygen` and set HOOKPOST_MAIN_KEY=<that value>."
        )
    key_file = Path(f"{path}.key")
    try:
        return parse_main_key(read_or_create_key_file(key_file))
    except ValueError as exc:  # an empty or damaged key file: say which, not a traceback
        raise ConfigError(f"{key_file}: {exc}") from None


KEY_FILE_WAIT_S = 10.0
KEY_CHARS = 44  # base64 of 32 bytes


def read_or_create_key_file(key_file: Path) -> str:
    """The key file's key, generating it if there is none. Two processes starting at once:
    one creates it (``O_EXCL``), the other waits until the whole key is there."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_main_key() + "\n")
    deadline = time.monotonic() + KEY_FILE_WAIT_S
    while True:
        text = key_file.read_text()
        # A generated key is written whole with its newline; one written by hand may lack it.
        if text.endswith("\n") or len(text) >= KEY_CHARS or time.monotonic() > deadline:
            return text
        time.sleep(0.01)


# A lease outlasts a whole request by this share of the request timeout (at least
# LEASE_MARGIN_MIN_S): renewed every third of a lease, it still holds through one request, and
# the writing of its result, when a renewal comes late.
LEASE_MARGIN = 0.5
LEASE_MARGIN_MIN_S = 1.0


def longest_request_s(lease_s: float) -> float:
    """The longest request timeout ``check_lease`` accepts for this lease: an endpoint's
    ``timeoutSeconds`` is clamped to it (docs/decisions/0027)."""
    return min(lease_s - LEASE_MARGIN_MIN_S, lease_s / (1 + LEASE_MARGIN))


def check_lease(settings: Settings) -> None:
    timeout = settings.request_timeout_s
    least = timeout + max(LEASE_MARGIN_MIN_S, timeout * LEASE_MARGIN)
    if settings.lease_s < least:
        raise ConfigError(
            f"HOOKPOST_LEASE_S={settings.lease_s:g} is too short for "
            f"HOOKPOST_REQUEST_TIMEOUT_S={timeout:g}: a lease must outlast a whole request "
            "with room to spare, or a slow endpoint's delivery may be sent again while its "
            f"request is still running. Set HOOKPOST_LEASE_S to at least {least:g}, or lower "
            "HOOKPOST_REQUEST_TIMEOUT_S."
        )


MIN_PRODUCTION_ADMIN_TOKEN = 32


def check_admin_token(settings: Settings) -> None:
    """In production, refuse a guessable HOOKPOST_ADMIN_TOKEN (it may do everything)."""
    token = settings.admin_token
    if settings.production and token and len(token) < MIN_PRODUCTION_ADMIN_TOKEN:
        raise ConfigError(
            f"HOOKPOST_ADMIN_TOKEN is {len(token)} characters long; with HOOKPOST_PRODUCTION "
            f"on it must have at least {MIN_PRODUCTION_ADMIN_TOKEN}. Use a random value, "
            "e.g. `openssl rand -hex 32`."
        )


def check_retention(settings: Settings) -> None:
    if settings.payload_retention_days < 1:
        raise ConfigError(
            f"HOOKPOST_PAYLOAD_RETENTION_DAYS={settings.payload_retention_days}: must be at "
            "least 1 (days a message's payload is kept unless the message says otherwise)"
        )
    if settings.retention_days < 0:
        raise ConfigError(
            f"HOOKPOST_RETENTION_DAYS={settings.retention_days}: must be 0 (keep messages "
            "forever) or the days after which messages are deleted"
        )
    if settings.cleanup_every_s <= 0:
        raise ConfigError(f"HOOKPOST_CLEANUP_EVERY_S={settings.cleanup_every_s:g}: must be > 0")


def address_policy(settings: Settings) -> AddressPolicy:
    if not settings.ssrf_guard:
        return AddressPolicy.allow_all()
    try:
        return AddressPolicy.from_setting(settings.allow_subnets)
    except ValueError as exc:
        raise ConfigError(f"HOOKPOST_ALLOW_SUBNETS: {exc}") from None


def url_checker(settings: Settings, policy: AddressPolicy) -> UrlCheck:
    base = settings.relay_base()

    def check(url: str) -> None:
        if relay_token(url, base) is not None:
            return  # this deployment's own relay route (`hookpost listen`, docs/listen.md)
        if settings.https_only and not url.lower().startswith("https://"):
            raise InvalidInput("url", "must be an https:// URL (HOOKPOST_HTTPS_ONLY is on)")
        try:
            check_url_target(url, policy)
        except (OSError, ValueError) as exc:
            raise InvalidInput("url", str(exc)) from None

    return check


def new_main_key() -> str:
    """A fresh main key for ``HOOKPOST_MAIN_KEY`` (``hookpost keygen``)."""
    return generate_main_key()


def migrate_database(database_url: str) -> None:
    """Bring the database to the latest schema (``hookpost migrate``; safe from many processes)."""
    check_database_url(database_url)
    from hookpost.store.migrate import upgrade  # Alembic is slow to import: only here

    upgrade(database_url)


def tune_process_for(settings: Settings) -> None:
    """The process-wide tuning the store for ``settings`` wants: for the ``hookpost`` CLI's
    own processes only (see ``hookpost.store.sqlite.executor.tune_process``)."""
    if sqlite_path(settings.database_url) is not None:
        from hookpost.store.sqlite.executor import tune_process

        tune_process()


def build_store(settings: Settings, box: AeadBox) -> Store:
    check_database_url(settings.database_url)
    path = sqlite_path(settings.database_url)
    if path is not None:
        from hookpost.store.sqlite.store import SqliteStore

        return SqliteStore(path, box, synchronous=settings.sqlite_synchronous)
    from hookpost.store.postgres.store import PostgresStore

    store: Store = PostgresStore(settings.database_url, box)
    return store


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        retry_schedule=settings.retry_schedule,
        max_in_flight=settings.max_in_flight,
        max_in_flight_per_endpoint=settings.max_in_flight_per_endpoint,
        lease_s=settings.lease_s,
        poll_interval_s=settings.poll_interval_s,
        claim_batch=settings.claim_batch,
        disable_after_s=settings.disable_after_s,
        disable_after_failures=settings.disable_after_failures,
        shutdown_grace_s=settings.shutdown_grace_s,
        signature_header_prefix=settings.signature_header_prefix,
        max_request_timeout_s=longest_request_s(settings.lease_s),
        options_refresh_s=settings.options_refresh_s,
        send_traceparent=settings.send_traceparent,
    )


class Hookpost:
    """The assembled runtime: a store, the services over it, and optionally a worker."""

    def __init__(self, settings: Settings, *, tracing: Tracing | None = None) -> None:
        """``tracing``: the caller's (the caller shuts it down); else the ``OTEL_*``
        environment's (services.tracing_env), None when it asks for none."""
        self.settings = settings
        check_lease(settings)
        check_admin_token(settings)
        check_retention(settings)
        self.policy = address_policy(settings)
        check_database_url(settings.database_url)
        self.box = AeadBox(resolve_main_key(settings))
        self.store = build_store(settings, self.box)
        self._own_tracing = tracing is None
        if tracing is None:
            try:
                tracing = load_tracing(os.environ)
            except TracingConfigError as exc:
                raise ConfigError(str(exc)) from None
        self.services = Services.build(
            self.store,
            url_check=url_checker(settings, self.policy),
            max_payload_bytes=settings.max_payload_bytes,
            limits=settings.limits(),
            strict_event_types=settings.strict_event_types,
            reveal_secrets=settings.reveal_secrets,
            retention=settings.retention(),
            tracing=tracing,
        )
        self.worker: DeliveryWorker | None = None
        self._sender: HttpSender | None = None
        self._purge: asyncio.Task[None] | None = None
        self._key_purge: asyncio.Task[None] | None = None
        self._cleanup: asyncio.Task[None] | None = None
        self._rollup: asyncio.Task[None] | None = None
        self.tasks: TaskRunner | None = None
        self.alerts: AlertRunner | None = None

    # the library surface
    @property
    def apps(self) -> AppService:
        return self.services.apps

    @property
    def endpoints(self) -> EndpointService:
        return self.services.endpoints

    @property
    def event_types(self) -> EventTypeService:
        return self.services.event_types

    @property
    def messages(self) -> MessageService:
        return self.services.messages

    @classmethod
    @asynccontextmanager
    async def open(
        cls, database_url: str | None = None, *, worker: bool = False, **overrides: Any
    ) -> AsyncIterator[Hookpost]:
        settings = Settings.from_env(database_url=database_url, **overrides)
        hp = cls(settings)
        await hp.start(worker=worker)
        try:
            yield hp
        finally:
            await hp.stop()

    def on_new_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when deliveries become due now (``DeliveryQueue.on_new_work``)."""
        self.store.on_new_work(callback)

    async def start(self, *, worker: bool = False, migrate: bool = True) -> None:
        if migrate and not await is_current(self.settings.database_url):
            from hookpost.store.migrate import upgrade  # Alembic is slow to import: only here

            await asyncio.to_thread(upgrade, self.settings.database_url)
        await self.store.open()
        await self._check_main_key()
        if worker:
            await self.start_worker()

    async def _check_main_key(self) -> None:
        """Refuse to start with a main key that cannot open this database's secrets (a lost
        key file, a mistyped HOOKPOST_MAIN_KEY), instead of failing every delivery later."""
        found = await self.store.any_sealed_keys()
        if found is None:
            return
        endpoint_id, sealed = found
        try:
            self.box.open(sealed, endpoint_keys_context(endpoint_id))
        except ValueError as exc:
            await self.store.close()
            raise ConfigError(str(exc)) from None

    async def start_worker(self) -> DeliveryWorker:
        if self.worker is not None:
            return self.worker
        s = self.settings
        # Relay URLs (`hookpost listen`) take a sender of their own: see delivery/relay.py.
        self._sender = RelayRoutingSender(
            self.policy,
            s.relay_base(),
            total_timeout_s=s.request_timeout_s,
            connect_timeout_s=s.connect_timeout_s,
            # Both of the worker's pools: max_in_flight, plus as many requests gone slow.
            limit=2 * s.max_in_flight,
        )
        await self._sender.start()
        self.worker = DeliveryWorker(
            self.store,
            self._sender,
            worker_config(s),
            metrics=self.services.metrics,
            events=self.services.events,
            tracing=self.services.tracing,
            traces=self.store,
        )
        self.worker.start()
        self.tasks = TaskRunner(self.services.tasks, poll_s=max(s.poll_interval_s, 0.05))
        self.store.on_new_work(self.tasks.wake)
        self.tasks.start()
        self.alerts = AlertRunner(self.services.alerts)  # alert rules: decision 0038
        self.alerts.start()
        self._purge = asyncio.create_task(self._purge_deleted(), name="hookpost-purge")
        self._key_purge = asyncio.create_task(
            self.services.idempotency.purge_forever(), name="hookpost-key-purge"
        )
        # Every worker process runs it; the store lets one at a time do the work.
        self._cleanup = asyncio.create_task(
            self.services.retention.cleanup_forever(s.cleanup_every_s), name="hookpost-cleanup"
        )
        # Stats rollups: every worker process too, one at a time (decision 0033).
        self._rollup = asyncio.create_task(
            self.services.stats.roll_up_forever(), name="hookpost-stats-rollup"
        )
        return self.worker

    async def _purge_deleted(self) -> None:
        """Finish, in the background, the deletions a crash interrupted (store.purge)."""
        try:
            purged = await self.services.apps.purge_deleted()
        except Exception:  # retried at the next start; the rows stay hidden meanwhile
            log.exception("could not finish interrupted deletions")
            return
        if purged:
            log.info("finished %d interrupted deletions", purged)

    async def stop_worker(self) -> None:
        for task in (self._purge, self._key_purge, self._cleanup, self._rollup):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._purge = self._key_purge = self._cleanup = self._rollup = None
        if self.tasks is not None:
            await self.tasks.stop()  # its task released: the next worker takes it at once
            self.tasks = None
        if self.alerts is not None:
            await self.alerts.stop()
            self.alerts = None
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        if self._sender is not None:
            await self._sender.close()
            self._sender = None

    async def stop(self) -> None:
        await self.stop_worker()
        await self.store.close()
        if self._own_tracing and self.services.tracing is not None:
            await asyncio.to_thread(self.services.tracing.shutdown)  # exports what is left


def asgi_app(settings: Settings | None = None, worker: bool = True) -> Any:
    """A self-contained ASGI app (for ``uvicorn --factory hookpost.wiring:asgi_app``): its
    lifespan builds, starts and stops a ``Hookpost`` from the environment's settings."""
    from hookpost.api.app import create_app_from_settings

    return create_app_from_settings(settings or Settings.from_env(), Hookpost, worker)
