"""The ``hookpost`` command line.

``hookpost serve`` runs the API and the worker (in a supervised child process when two or more
CPUs are available, see ``worker_process``) on a SQLite file by default; ``hookpost api``
and ``hookpost worker`` run one role each for scale-out. Every flag is also an environment
variable (``HOOKPOST_DATABASE_URL``, ``HOOKPOST_HOST``, ``HOOKPOST_PORT``, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hookpost import __version__, cli_alerts, listen, logs
from hookpost.commands import register_commands
from hookpost.commands.options import duration_s, iso_time, verb_group
from hookpost.diagnostics import database_problem
from hookpost.domain.errors import InvalidInput, NotFound
from hookpost.domain.models import PageRequest
from hookpost.settings import Settings
from hookpost.wiring import (
    ConfigError,
    Hookpost,
    address_policy,
    migrate_database,
    new_main_key,
    tune_process_for,
)
from hookpost.worker_process import WorkerProcess, run_worker_child, wants_worker_process

if TYPE_CHECKING:
    from hookpost.api.metrics import MetricsServer

log = logging.getLogger("hookpost")

EXIT_CONFIG = 2


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        database_url=getattr(args, "db", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def _bind(host: str, port: int) -> socket.socket:
    """Bind before starting anything, so a taken port is a clear error, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _banner(
    role: str,
    settings: Settings,
    token_source: str,
    token: str | None,
    sock: socket.socket | None,
    metrics: MetricsServer | None = None,
) -> None:
    lines = [f"hookpost {__version__} — {role}"]
    if sock is not None:
        host, port = sock.getsockname()[:2]
        lines.append(
            f"  API:       http://{host}:{port}/api/v1   (docs: http://{host}:{port}/docs)"
        )
    if metrics is not None and metrics.address is not None:
        host, port = metrics.address
        lines.append(f"  metrics:   http://{host}:{port}/metrics")
    lines.append(f"  database:  {_redact(settings.database_url)}")
    lines.append(_receivers_line(settings))
    if token is not None:
        lines.append(f"  admin token (shown once, store it now): {token}")
    else:
        lines.append(f"  admin token: from {token_source}")
    # Only hashes are stored: a lost token cannot be shown again, only replaced.
    lines.append(
        "  lost a token? `hookpost token create` makes a new admin token "
        "(`hookpost token list` / `revoke` retire the old one)"
    )
    print("\n".join(lines), flush=True)


def _receivers_line(settings: Settings) -> str:
    """What the SSRF guard lets the worker reach: a new user's local receiver is refused."""
    if not settings.ssrf_guard:
        return "  receivers: any address (the SSRF guard is off: HOOKPOST_SSRF_GUARD=0)"
    allowed = settings.allow_subnets.strip()
    if address_policy(settings).is_allowed_by_list("127.0.0.1"):
        return f"  receivers: public addresses and HOOKPOST_ALLOW_SUBNETS={allowed}"
    also = f" and HOOKPOST_ALLOW_SUBNETS={allowed}" if allowed else ""
    return (
        f"  receivers: public addresses{also}; localhost and other private addresses are "
        "refused until HOOKPOST_ALLOW_SUBNETS allows them (e.g. 127.0.0.0/8)"
    )


def _redact(url: str) -> str:
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"
    return url


async def _start_metrics(hp: Hookpost, settings: Settings) -> MetricsServer | None:
    """The metrics server of ``HOOKPOST_METRICS_PORT``, started; None when it is not set."""
    if not settings.metrics_port:
        return None
    from hookpost.api.metrics import MetricsServer

    server = MetricsServer(hp, settings.metrics_host or settings.host, settings.metrics_port)
    try:
        await server.start()
    except OSError as exc:
        raise ConfigError(str(exc.strerror or exc)) from None
    return server


async def _run_roles(settings: Settings, *, api: bool, worker: bool, role: str) -> None:
    sock = _bind(settings.host, settings.port) if api else None
    hp = Hookpost(settings)
    await hp.start(worker=worker)
    metrics = None
    try:
        metrics = await _start_metrics(hp, settings)
        source, plaintext = await hp.services.tokens.ensure_admin(settings.admin_token)
        _banner(role, settings, source, plaintext, sock, metrics)
        if api:
            await _serve_api(hp, sock)
        else:
            await _wait_for_signal()
    finally:
        if metrics is not None:
            await metrics.stop()
        await hp.stop()
        if sock is not None:
            sock.close()
        print("hookpost stopped", flush=True)


async def _run_serve_with_worker_process(settings: Settings) -> None:
    """``serve`` on two or more cores: the API here, the worker in a supervised child."""
    sock = _bind(settings.host, settings.port)
    hp = Hookpost(settings)
    await hp.start(worker=False)
    # The child reads its settings from the environment: the relay's address, from --port too.
    os.environ.setdefault("HOOKPOST_RELAY_URL", settings.relay_base())
    child = WorkerProcess(settings.database_url, settings.shutdown_grace_s)
    metrics = None
    try:
        metrics = await _start_metrics(hp, settings)
        source, plaintext = await hp.services.tokens.ensure_admin(settings.admin_token)
        hp.on_new_work(child.wake)
        hp.services.metrics.worker_source = child.metrics_text
        await child.start()
        _banner(f"API + worker (process {child.pid})", settings, source, plaintext, sock, metrics)
        await _serve_api(hp, sock)
    finally:
        if metrics is not None:
            await metrics.stop()
        await child.stop()
        await hp.stop()
        sock.close()
        print("hookpost stopped", flush=True)


async def _run_worker_child(
    settings: Settings, wake_fd: int | None, metrics_socket: str | None
) -> None:
    """``hookpost worker`` started by ``serve``: no banner, no token, stops with its parent."""
    hp = Hookpost(settings)
    await hp.start(worker=False)
    try:
        await run_worker_child(hp, wake_fd, metrics_socket)
    finally:
        await hp.stop()


async def _serve_api(hp: Hookpost, sock: socket.socket | None) -> None:
    from hookpost.api.app import create_app
    from hookpost.api.server import ApiServer, build_server

    class Server(ApiServer):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises SIGTERM after its own shutdown, which would kill the process
            # before the worker and the store are stopped; hookpost finishes first instead.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    app = create_app(hp)
    server = build_server(app, hp.settings, Server)
    try:
        # On SIGINT/SIGTERM uvicorn stops accepting and finishes open requests, then we return.
        await server.serve(sockets=[sock] if sock else None)
    finally:
        await app.state.metrics_page.gauges.close()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _tune_process(settings: Settings) -> None:
    """Process-wide tuning for the long-running roles, which own their interpreter (a program
    embedding hookpost is left alone). Fewer garbage collections: requests in flight survive
    several generation-0 collections; freezing what start-up created keeps it out of every full
    collection (see docs/decisions/0005-gc-tuning-in-the-cli-processes.md)."""
    tune_process_for(settings)
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _run(settings: Settings, coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    _tune_process(settings)
    try:
        import uvloop

        uvloop.run(coro_fn())
    except ImportError:  # pragma: no cover - a dependency wherever CPython runs (pyproject)
        asyncio.run(coro_fn())


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _settings(args)
    try:
        separate = wants_worker_process(args.worker or settings.serve_worker)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if separate:
        _run(settings, lambda: _run_serve_with_worker_process(settings))
    else:
        _run(settings, lambda: _run_roles(settings, api=True, worker=True, role="API + worker"))


def cmd_api(args: argparse.Namespace) -> None:
    settings = _settings(args)
    _run(settings, lambda: _run_roles(settings, api=True, worker=False, role="API"))


def cmd_worker(args: argparse.Namespace) -> None:
    settings = _settings(args)
    if args.wake_fd is not None or args.metrics_socket:
        _run(settings, lambda: _run_worker_child(settings, args.wake_fd, args.metrics_socket))
    else:
        _run(settings, lambda: _run_roles(settings, api=False, worker=True, role="worker"))


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = _settings(args)
    migrate_database(settings.database_url)
    print(f"database {_redact(settings.database_url)} is at the latest schema")


def _with_runtime(args: argparse.Namespace, fn: Callable[[Hookpost], Awaitable[int]]) -> None:
    """Run ``fn`` on a started runtime (no worker) and exit with its status."""
    settings = _settings(args)

    async def run() -> int:
        hp = Hookpost(settings)
        await hp.start()
        try:
            return await fn(hp)
        finally:
            await hp.stop()

    status = asyncio.run(run())
    if status:
        sys.exit(status)


def parse_age(value: str) -> int:
    """``--older-than``: a duration (``30d``, ``12h``, ``3600``), in milliseconds."""
    seconds = duration_s(value)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration (3600, 90m, 12h, 30d)")
    return seconds * 1000


def parse_expiry(value: str, now: datetime | None = None) -> int:
    """``--expires``: a duration (``3600``, ``90m``, ``12h``, ``30d``) or an ISO 8601 date and
    time (``2027-01-31T00:00:00Z``; UTC if it names no zone); seconds from now."""
    seconds = duration_s(value)
    if seconds is None:
        when = iso_time(value, "a duration (3600, 90m, 12h, 30d)")
        seconds = int((when - (now or datetime.now(UTC))).total_seconds())
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not in the future")
    return seconds


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_token_create(args: argparse.Namespace) -> None:
    async def create(hp: Hookpost) -> int:
        app_id = None
        if args.app:
            app_id = (await hp.services.apps.get(args.app)).id
        token, _ = await hp.services.tokens.create(
            app_id=app_id, name=args.name or "", ttl_s=args.expires
        )
        print(token)
        return 0

    _with_runtime(args, create)


def cmd_token_list(args: argparse.Namespace) -> None:
    async def list_tokens(hp: Hookpost) -> int:
        app_id = None if args.app is None else (await hp.services.apps.get(args.app)).id
        print("id\tname\tapp\tcreated\texpires\thint")
        page = PageRequest(limit=250)
        while True:
            found = await hp.services.tokens.list(page, app_id)
            for t in found.items:
                app = t.app_id or "(admin)"
                created, expires = _iso(t.created_at), _iso(t.expires_at)
                print(f"{t.id}\t{t.name}\t{app}\t{created}\t{expires}\t{t.hint or '-'}")
            if found.done or not found.items:
                return 0
            page = replace(page, iterator=found.items[-1].id)

    _with_runtime(args, list_tokens)


def cmd_token_revoke(args: argparse.Namespace) -> None:
    async def revoke(hp: Hookpost) -> int:
        tokens = hp.services.tokens
        try:
            record = await tokens.revoke_id(args.token)
            revoked = f"token {record.id}" + (f" ({record.name})" if record.name else "")
        except NotFound:
            if not await tokens.revoke(args.token):  # the token itself, not its id
                print("hookpost: no such token (give its id or the token)", file=sys.stderr)
                return 1
            revoked = "the token"
        print(f"revoked {revoked}: running API processes refuse it within a few seconds")
        return 0

    _with_runtime(args, revoke)


def cmd_cleanup(args: argparse.Namespace) -> None:
    async def cleanup(hp: Hookpost) -> int:
        retention = hp.services.retention
        done = await retention.cleanup(args.older_than, dry_run=args.dry_run)
        verb = "would erase" if args.dry_run else "erased"
        print(f"{verb} {done.payloads} expired payloads")
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} {done.tokens} API tokens expired more than 7 days ago")
        if args.older_than is None and retention.policy.horizon_days is None:
            print("no horizon (--older-than or HOOKPOST_RETENTION_DAYS): no message deleted")
        else:
            verb = "would delete" if args.dry_run else "deleted"
            print(
                f"{verb} {done.messages} messages, {done.deliveries} deliveries, "
                f"{done.attempts} attempts (never one still pending or sending), "
                f"{done.tasks} finished background tasks"
            )
        return 0

    _with_runtime(args, cleanup)


def cmd_keygen(args: argparse.Namespace) -> None:
    print(new_main_key())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookpost",
        description="Self-hosted webhook delivery.",
        epilog="The daily-work commands (app ... replay) talk to a hookpost server: --url or "
        "HOOKPOST_URL (default http://127.0.0.1:8071), --token or HOOKPOST_TOKEN. "
        "`hookpost COMMAND --help` for each; docs/cli.md for all.",
    )
    parser.add_argument("--version", action="version", version=f"hookpost {__version__}")
    sub = parser.add_subparsers(dest="command")

    def db_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="database URL (HOOKPOST_DATABASE_URL; sqlite:///hookpost.db)")

    def listen_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="listen address (HOOKPOST_HOST; 127.0.0.1)")
        p.add_argument("--port", type=int, help="listen port (HOOKPOST_PORT; 8071)")

    for name, fn, helptext, listens in (
        ("serve", cmd_serve, "API + delivery worker (the embedded default)", True),
        ("api", cmd_api, "the API only (scale-out)", True),
        ("worker", cmd_worker, "the delivery worker only (scale-out)", False),
        ("migrate", cmd_migrate, "bring the database schema up to date", False),
    ):
        p = sub.add_parser(name, help=helptext)
        db_flag(p)
        if listens:
            listen_flags(p)
        p.set_defaults(fn=fn)
        if name == "serve":
            p.add_argument(
                "--worker",
                choices=("auto", "process", "inline"),
                help="where the delivery worker runs (HOOKPOST_SERVE_WORKER; auto = in a "
                "child process when 2+ CPUs are available, else in this process)",
            )
        if name == "worker":  # set by `serve` for the child it supervises
            p.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
            p.add_argument("--metrics-socket", help=argparse.SUPPRESS)

    token = verb_group(sub, "token", "API tokens")
    create = token.add_parser("create", help="create an API token and print it once")
    db_flag(create)
    create.add_argument("--app", help="scope the token to this application (id or uid)")
    create.add_argument("--name", help="a label for the token")
    create.add_argument(
        "--expires",
        type=parse_expiry,
        help="when it expires: a duration (3600, 90m, 12h, 30d) or an ISO 8601 time "
        "(default: never; revoke it instead)",
    )
    create.set_defaults(fn=cmd_token_create)
    listing = token.add_parser("list", help="list the API tokens (never the tokens themselves)")
    db_flag(listing)
    listing.add_argument("--app", help="only this application's tokens (id or uid)")
    listing.set_defaults(fn=cmd_token_list)
    revoke = token.add_parser("revoke", help="revoke an API token, admin or app-scoped")
    db_flag(revoke)
    revoke.add_argument("token", help="the token's id (see `hookpost token list`) or the token")
    revoke.set_defaults(fn=cmd_token_revoke)

    cleanup = sub.add_parser(
        "cleanup",
        help="erase expired payloads and delete old messages (for cron; workers also do it)",
    )
    db_flag(cleanup)
    cleanup.add_argument(
        "--older-than",
        type=parse_age,
        help="delete the messages (with their deliveries and attempts) created longer ago "
        "than this duration (30d, 12h, 3600), except those still pending or sending "
        "(default: HOOKPOST_RETENTION_DAYS; unset: delete none)",
    )
    cleanup.add_argument(
        "--dry-run", action="store_true", help="only count what would be erased and deleted"
    )
    cleanup.set_defaults(fn=cmd_cleanup)

    cli_alerts.register(sub, db_flag, _with_runtime)
    keygen = sub.add_parser("keygen", help="print a new HOOKPOST_MAIN_KEY")
    keygen.set_defaults(fn=cmd_keygen)
    listen.add_parser(sub)
    register_commands(sub)  # hookpost/commands/: the daily-work commands and doctor
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `hookpost`
        parser.print_help()
        return
    try:
        # Logging from the environment alone (no flag changes it): `serve`'s worker child,
        # which inherits that environment, logs the same way.
        logs.configure(Settings.from_env())
        args.fn(args)
    except ConfigError as exc:
        print(f"hookpost: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except ValueError as exc:  # bad settings from the environment
        print(f"hookpost: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except (NotFound, InvalidInput) as exc:  # e.g. `token create --app` naming no application
        print(f"hookpost: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # a database that cannot be opened: one line, not a traceback
        opens_database = hasattr(args, "db")  # the commands with --db
        problem = database_problem(exc, _database_url(args)) if opens_database else None
        if problem is None:
            raise
        print(f"hookpost: {problem}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


def _database_url(args: argparse.Namespace) -> str:
    try:
        return _settings(args).database_url
    except ValueError:
        return ""


if __name__ == "__main__":
    main()
