"""Deployment settings: defaults, overridable by ``HOOKPOST_*`` environment variables and flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from hookpost.domain.limits import (
    DEFAULT_MAX_ENDPOINTS_PER_APP,
    DEFAULT_MAX_EVENT_TYPES,
    DEFAULT_MAX_PAGE_CONTENT_BYTES,
    Limits,
)
from hookpost.domain.relay import relay_base
from hookpost.domain.retention import DEFAULT_PAYLOAD_RETENTION_DAYS, RetentionPolicy
from hookpost.domain.retry import DEFAULT_SCHEDULE, parse_schedule

ENV_PREFIX = "HOOKPOST_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///hookpost.db"
    host: str = "127.0.0.1"
    port: int = 8071
    # delivery
    retry_schedule: tuple[int, ...] = DEFAULT_SCHEDULE
    request_timeout_s: float = 15.0
    connect_timeout_s: float = 5.0
    max_in_flight: int = 256
    max_in_flight_per_endpoint: int = 32
    lease_s: float = 60.0  # a crashed worker's deliveries are sent again after this
    poll_interval_s: float = 1.0
    claim_batch: int = 128
    disable_after_s: float = 5 * 24 * 3600.0
    # also disable an endpoint after this many failed attempts in a row (0: off)
    disable_after_failures: int = 0
    shutdown_grace_s: float = 10.0
    signature_header_prefix: str = "webhook"  # or "svix"
    # How stale a worker's copy of the event types' retry schedules and the endpoints'
    # timeoutSeconds may be (docs/decisions/0027)
    options_refresh_s: float = 5.0
    # security
    allow_subnets: str = ""
    ssrf_guard: bool = True
    https_only: bool = False
    # Where workers reach this deployment's relay route (`hookpost listen`, docs/listen.md);
    # "": http://HOOKPOST_HOST:HOOKPOST_PORT (a wildcard host as loopback)
    relay_url: str = ""
    main_key: str = ""  # base64 AEAD key for secrets at rest
    admin_token: str = ""
    max_payload_bytes: int = 1024 * 1024
    # Off: an endpoint's secret is shown only in the answers to its creation and rotation,
    # and GET .../secret answers 403 (docs/decisions/0026)
    reveal_secrets: bool = True
    # Requests per second per API token, per process (token bucket, burst 2x); 0 = off.
    # Generous: above one process's measured peak (~6,000 req/s), so it only stops a
    # runaway client; lower it where app-portal tokens are handed to untrusted tenants.
    api_rate_limit: int = 10_000
    # quotas (0 = no limit): see hookpost.domain.limits
    max_endpoints_per_app: int = DEFAULT_MAX_ENDPOINTS_PER_APP
    max_event_types: int = DEFAULT_MAX_EVENT_TYPES
    max_page_content_bytes: int = DEFAULT_MAX_PAGE_CONTENT_BYTES
    # API connections: at most this many at once (then 503; 0: no limit), and the seconds a
    # client may take to send a request's head, and then its body (0: no limit)
    max_connections: int = 2048
    request_head_timeout_s: float = 10.0
    request_body_timeout_s: float = 60.0
    # /metrics: a bearer token it then needs; a port of its own (0: on the API's port) and the
    # address that port listens on ("": HOOKPOST_HOST)
    metrics_token: str = ""
    metrics_port: int = 0
    metrics_host: str = ""
    # `hookpost serve`: auto (the worker in a child process on 2+ CPUs), process or inline
    serve_worker: str = "auto"
    # the catalog: messages and subscriptions must name live event types, and payloads must
    # match their event type's JSON Schemas (docs/decisions/0026)
    strict_event_types: bool = False
    # logs: the root level (DEBUG, INFO, WARNING, ERROR), "text" or "json" (one object per
    # line), and one line per API request (method, route, status, duration) when on
    log_level: str = "INFO"
    log_format: str = "text"
    access_log: bool = False
    # tracing (OTEL_* variables turn it on: docs/decisions/0035-tracing.md): send each
    # attempt's W3C trace context to the endpoint as a `traceparent` header
    send_traceparent: bool = False
    # retention (domain.retention): how long a payload is kept unless its message says; a
    # horizon beyond which messages are deleted (0: none); how often a worker cleans up
    payload_retention_days: int = DEFAULT_PAYLOAD_RETENTION_DAYS
    retention_days: int = 0
    cleanup_every_s: float = 300.0
    # the app portal and the dashboard (docs/portal.md): who may frame the portal (a CSP
    # frame-ancestors value, e.g. "'self' https://app.example.com"), its cookie's SameSite
    # (none: for a portal embedded by another site; then Secure and Partitioned), and how
    # long a portal or dashboard session lasts
    portal_frame_ancestors: str = "'self'"
    portal_cookie_samesite: str = "lax"
    ui_session_ttl_s: int = 8 * 3600
    # storage
    sqlite_synchronous: str = "FULL"  # an answered message survives power loss too
    production: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw, getattr(cls, f.name, None))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(self.payload_retention_days, self.retention_days or None)

    def relay_base(self) -> str:
        return self.relay_url.rstrip("/") or relay_base(self.host, self.port)

    def limits(self) -> Limits:
        return Limits(
            max_endpoints_per_app=self.max_endpoints_per_app or None,
            max_event_types=self.max_event_types or None,
            max_page_content_bytes=self.max_page_content_bytes or None,
        )


def _parse(name: str, raw: str, default: Any) -> Any:
    try:
        if name == "retry_schedule":
            return parse_schedule(raw)
        if name == "log_level":
            level = raw.upper()
            if level not in LOG_LEVELS:
                raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
            return level
        if name == "log_format":
            if raw.lower() not in LOG_FORMATS:
                raise ValueError(f"expected one of {', '.join(LOG_FORMATS)}")
            return raw.lower()
        if name == "portal_cookie_samesite":
            if raw.lower() not in ("lax", "strict", "none"):
                raise ValueError("expected lax, strict or none")
            return raw.lower()
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected 1/0, true/false, yes/no or on/off")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from None
    return raw
