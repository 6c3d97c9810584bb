"""One hookpost deployment under test: SQLite (`hookpost serve`, or `api`/`worker` roles on the
same file) or PostgreSQL (`hookpost api` + `hookpost worker` processes on a throwaway database)."""

from __future__ import annotations

from pathlib import Path

from bench.api import Api, ApiError
from bench.common import free_port, run
from bench.pg import PgDatabases
from bench.procs import HookpostProc, spawn, wait_banner


class Stack:
    def __init__(
        self,
        backend: str,
        label: str,
        workdir: Path,
        settings: dict[str, str],
        pg: PgDatabases | None,
        pg_workers: int = 1,
    ) -> None:
        self.backend = backend
        self.label = label
        self.dir = workdir / f"{backend}-{label}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pg = pg
        self.pg_workers = pg_workers
        if backend == "sqlite":
            self.db_url = f"sqlite:///{self.dir / 'hookpost.db'}"
        else:
            assert pg is not None
            self.db_url = pg.create(label)
        self.settings = {**settings, "database_url": self.db_url}
        self.port = free_port()
        self.procs: list[HookpostProc] = []
        self.api = Api(f"http://127.0.0.1:{self.port}", settings["admin_token"])

    @property
    def pg_db_name(self) -> str | None:
        return self.db_url.rsplit("/", 1)[-1] if self.backend == "postgres" else None

    @property
    def sqlite_path(self) -> str | None:
        return self.db_url.removeprefix("sqlite:///") if self.backend == "sqlite" else None

    def full_roles(self) -> list[str]:
        return ["serve"] if self.backend == "sqlite" else ["api"] + ["worker"] * self.pg_workers

    def worker_roles(self) -> list[str]:
        """What drains the queue: `serve` for SQLite (the headline config), workers for PG."""
        return ["serve"] if self.backend == "sqlite" else ["worker"] * self.pg_workers

    def start(self, roles: list[str], extra: dict[str, str] | None = None) -> list[HookpostProc]:
        """Start the roles (API-serving ones first, so migrations run once), wait until ready."""
        started = []
        settings = {**self.settings, **(extra or {})}
        ordered = sorted(roles, key=lambda r: r == "worker")
        for role in ordered:
            listens = role in ("serve", "api")
            log = self.dir / f"{role}-{len(self.procs)}.log"
            p = spawn(role, settings, log, self.port if listens else None)
            self.procs.append(p)
            started.append(p)
            wait_banner(p)
            if listens:
                try:
                    run(self.api.wait_ready())
                except ApiError as exc:
                    state = "running" if p.alive() else f"exited with {p.proc.returncode}"
                    raise ApiError(
                        f"{exc}\nhookpost {role} ({state}), log tail:\n{p.log_tail()}"
                    ) from None
        return started

    def stop(self, procs: list[HookpostProc] | None = None, timeout: float = 15.0) -> None:
        for p in list(procs if procs is not None else self.procs):
            p.stop(timeout)
            if p in self.procs:
                self.procs.remove(p)

    def close(self, timeout: float = 15.0) -> None:
        self.stop(timeout=timeout)
        if self.backend == "postgres" and self.pg is not None:
            self.pg.drop(self.db_url)
