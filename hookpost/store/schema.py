"""The schema, defined once for every backend.

Migrations (``store/migrations``) are the source of truth for a live database; this
definition is what a fresh schema must equal, and a test compares the two on each backend.
JSON is stored as text and times as epoch milliseconds (BIGINT) so both backends behave alike.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# SQLite's INTEGER PRIMARY KEY is its rowid; PostgreSQL gets an identity column.
_delivery_pk = BigInteger().with_variant(Integer(), "sqlite")
# Ids sort by creation time only under byte-wise comparison. SQLite compares TEXT byte-wise
# by default; PostgreSQL follows the database's collation (often a locale where 'Z' > 'a'),
# so id columns pin the "C" collation there. Paging and time filters depend on it.
Id = Text().with_variant(Text(collation="C"), "postgresql")

applications = Table(
    "applications",
    metadata,
    Column("id", Id, primary_key=True),
    Column("uid", Text, nullable=True, unique=True),
    Column("name", Text, nullable=False),
    Column("metadata", Text, nullable=False, server_default="{}"),
    Column("throttle_rate", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Deleted, its rows being purged in batches (store/purge.py): hidden from every read.
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Index(
        "ix_applications_deleted",
        "id",
        postgresql_where=text("deleted"),
        sqlite_where=text("deleted"),
    ),
)

event_types = Table(
    "event_types",
    metadata,
    Column("name", Id, primary_key=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("schemas", Text, nullable=True),
    Column("archived", Boolean, nullable=False, server_default=text("false")),
    Column("deprecated", Boolean, nullable=False, server_default=text("false")),
    Column("feature_flag", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("retry_schedule", Text, nullable=True),  # Svix's per-event-type schedule (JSON)
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", Id, primary_key=True),
    Column("app_id", Id, ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("uid", Text, nullable=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("event_types", Text, nullable=True),
    Column("channels", Text, nullable=True),
    Column("headers", Text, nullable=False, server_default="{}"),
    Column("metadata", Text, nullable=False, server_default="{}"),
    Column("keys", Text, nullable=False),  # sealed by the store's secret box
    Column("throttle_rate", Integer, nullable=True),
    # The default's old name, kept: changing a default rebuilds the table on SQLite. Rows are
    # always written with a name; domain.signing.LEGACY_NAMES reads the old one.
    Column("signature_scheme", Text, nullable=False, server_default="standard-v1"),
    Column("retry_schedule", Text, nullable=True),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("first_failure_at", BigInteger, nullable=True),
    Column("disabled_reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # As applications.deleted; a deleted endpoint is also disabled, so that nothing is queued
    # for it or sent to it while its rows are purged.
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    # Renames the hex/stripe schemes' signature header (null: the scheme's own).
    Column("signature_header", Text, nullable=True),
    Column("payload_filter", Text, nullable=True),  # JSON (domain.filters); NULL: none
    # retryPolicy as given (JSON); retry_schedule holds what it expands to (migration 0010).
    Column("retry_policy", Text, nullable=True),
    Column("timeout_s", Integer, nullable=True),
    # domain.health: the last success (at most a second behind) and failure, and the last
    # attempt's status code
    Column("last_success_at", BigInteger, nullable=True),
    Column("last_failure_at", BigInteger, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    # domain.throttle's next allowed send time (ms, on the due times' clock; migration 0012)
    Column("throttle_at", Float, nullable=True),
    # FIFO delivery (domain.ordering): one live delivery at a time, the others parked.
    Column("ordered", Boolean, nullable=False, server_default=text("false")),
    # sendTraceparent (docs/decisions/0035-tracing.md); NULL: HOOKPOST_SEND_TRACEPARENT
    Column("send_traceparent", Boolean, nullable=True),
    UniqueConstraint("app_id", "uid", name="uq_endpoints_app_uid"),
    Index("ix_endpoints_app_id", "app_id", "id"),
    Index(  # the worker's delivery_options reads the few endpoints with a timeout
        "ix_endpoints_timeout",
        "id",
        postgresql_where=text("timeout_s IS NOT NULL"),
        sqlite_where=text("timeout_s IS NOT NULL"),
    ),
    Index(  # and those with sendTraceparent
        "ix_endpoints_traceparent",
        "id",
        postgresql_where=text("send_traceparent IS NOT NULL"),
        sqlite_where=text("send_traceparent IS NOT NULL"),
    ),
    Index(
        "ix_endpoints_deleted",
        "id",
        postgresql_where=text("deleted"),
        sqlite_where=text("deleted"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True),
    Column("app_id", Id, ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("event_id", Text, nullable=True),
    Column("channels", Text, nullable=True),
    Column("payload", LargeBinary, nullable=False),
    Column("expunged", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", BigInteger, nullable=False),
    # hex SHA-256 of the payload as created, kept when it is expunged (migration 0009)
    Column("payload_sha256", Text, nullable=True),
    # domain.retention: when the payload is erased; NULL once it is (migration 0015)
    Column("payload_expires_at", BigInteger, nullable=True),
    UniqueConstraint("app_id", "event_id", name="uq_messages_app_event_id"),
    Index("ix_messages_app_id", "app_id", "id"),
    Index(  # the payloads still to erase, soonest first (docs/decisions/0032-retention.md)
        "ix_messages_payload_expires_at",
        "payload_expires_at",
        postgresql_where=text("payload_expires_at IS NOT NULL"),
        sqlite_where=text("payload_expires_at IS NOT NULL"),
    ),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", _delivery_pk, primary_key=True, autoincrement=True),
    Column("app_id", Id, nullable=False),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", Id, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("trigger", SmallInteger, nullable=False, server_default="0"),
    # When the worker should look at it next: the retry time while pending, the lease expiry
    # while sending, NULL once final or while parked behind an ordered endpoint's head
    # (migration 0013). A claim reads it per endpoint, from the head of each endpoint's queue
    # (ix_deliveries_endpoint_due, migration 0006); there is no global due index
    # (docs/decisions/0023-per-endpoint-claims.md).
    Column("due_at", BigInteger, nullable=True),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("lease", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("message_id", "endpoint_id", name="uq_deliveries_msg_endpoint"),
    Index(
        "ix_deliveries_endpoint_due",
        "endpoint_id",
        "due_at",
        postgresql_where=text("due_at IS NOT NULL"),
        sqlite_where=text("due_at IS NOT NULL"),
    ),
    Index("ix_deliveries_endpoint", "endpoint_id", "message_id"),
    # An ordered endpoint's parked deliveries (pending, no due time), in queue order:
    # domain.ordering, docs/decisions/0031-ordered-delivery.md.
    Index(
        "ix_deliveries_parked",
        "endpoint_id",
        "id",
        postgresql_where=text("status = 0 AND due_at IS NULL"),
        sqlite_where=text("status = 0 AND due_at IS NULL"),
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("app_id", Id, nullable=False),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", Id, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("trigger", SmallInteger, nullable=False),
    Column("response_status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # The request's headers as sent, in domain.attempt_headers' compact form (migration 0023;
    # NULL for the attempts recorded before).
    Column("headers", Text, nullable=True),
    Index("ix_attempts_message", "message_id", "id"),
    Index("ix_attempts_endpoint", "endpoint_id", "id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("app_id", Id, ForeignKey("applications.id", ondelete="CASCADE"), nullable=True),
    Column("name", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("hint", Text, nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    # A request's answer; NULL for a send's key, which holds the message it created instead.
    Column("status", Integer, nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("message_id", Id, nullable=True),
    # The application a stored answer's route resolved: deleted with it.
    Column("app_id", Id, nullable=True),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
    Index(
        "ix_idempotency_keys_app_id",
        "app_id",
        postgresql_where=text("app_id IS NOT NULL"),
        sqlite_where=text("app_id IS NOT NULL"),
    ),
)

# Background tasks (domain.tasks): written running by the API, claimed by one worker at a time
# under a lease (lease_until on the claimer's clock), finished with their data.
background_tasks = Table(
    "background_tasks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("params", Text, nullable=False, server_default="{}"),  # JSON: what it was asked
    Column("data", Text, nullable=False, server_default="{}"),  # JSON: what it reports
    Column("lease", Text, nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("runs", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(  # the claim reads the few running ones
        "ix_background_tasks_running",
        "id",
        postgresql_where=text("status = 'running'"),
        sqlite_where=text("status = 'running'"),
    ),
)

# Alert rules (domain.alerts, migration 0021): the rules, each application's evaluator cursor
# and lease, the bucketed aggregates rules share (per series), and pushed-metric samples.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Id, primary_key=True),
    Column("app_id", Id, ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("spec", Text, nullable=False),  # JSON: the rule's API fields
    Column("state", Text, nullable=False, server_default="{}"),  # JSON: domain.alerts.RuleState
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_alert_rules_app", "app_id", "id"),
)

alert_cursors = Table(
    "alert_cursors",
    metadata,
    Column("app_id", Id, ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True),
    Column("cursor", Id, nullable=False),  # the last message id counted into the buckets
    Column("next_run_at", BigInteger, nullable=False),
    Column("lease", Text, nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Index("ix_alert_cursors_next_run", "next_run_at"),
)

alert_buckets = Table(
    "alert_buckets",
    metadata,
    Column("app_id", Id, ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True),
    Column("series", Text, primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("total", Float, nullable=False),
    Column("low", Float, nullable=True),
    Column("high", Float, nullable=True),
    Column("cells", Text, nullable=True),  # JSON: the p95 sketch's cells, when a rule needs it
)

alert_samples = Table(
    "alert_samples",
    metadata,
    Column("app_id", Id, ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_alert_samples", "app_id", "name", "at"),
)

# The W3C trace context of the request that created a message, written only while tracing is
# on; no foreign key: written just before its message (docs/decisions/0035-tracing.md).
message_traces = Table(
    "message_traces",
    metadata,
    Column("id", Id, primary_key=True),  # the message's id
    Column("app_id", Id, nullable=False),
    Column("traceparent", Text, nullable=False),
    Column("tracestate", Text, nullable=True),
    Index("ix_message_traces_app_id", "app_id"),
)

# Attempt statistics (domain.stats): hourly rollups of the attempts table, filled for closed
# hours by a background pass (docs/decisions/0033-stats.md); the delivery path writes only a
# cancellation's row and, rarely, a late attempt's dirty mark. Keyed by application first (its
# queries), with an index per endpoint.
stats_hourly = Table(
    "stats_hourly",
    metadata,
    Column("app_id", Id, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("endpoint_id", Id, primary_key=True),
    Column("event_type", Id, primary_key=True),
    Column("succeeded", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Index("ix_stats_hourly_endpoint", "endpoint_id", "hour"),
    sqlite_with_rowid=False,
)

stats_latency = Table(  # attempts per latency bucket (domain.stats.LATENCY_BOUNDS)
    "stats_latency",
    metadata,
    Column("app_id", Id, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("endpoint_id", Id, primary_key=True),
    Column("bucket", SmallInteger, primary_key=True),
    Column("attempts", BigInteger, nullable=False),
    Index("ix_stats_latency_endpoint", "endpoint_id", "hour"),
    sqlite_with_rowid=False,
)

stats_latency_app = Table(  # the same summed over the application's endpoints
    "stats_latency_app",
    metadata,
    Column("app_id", Id, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("bucket", SmallInteger, primary_key=True),
    Column("attempts", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

stats_failures = Table(  # failed attempts per reason (domain.stats.failure_reason)
    "stats_failures",
    metadata,
    Column("app_id", Id, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("endpoint_id", Id, primary_key=True),
    Column("reason", Text, primary_key=True),
    Column("attempts", BigInteger, nullable=False),
    Index("ix_stats_failures_endpoint", "endpoint_id", "hour"),
    sqlite_with_rowid=False,
)

# Cancellations, counted at their time as attempts are (migration 0022): the cancel writes a
# row here, the pass rolls an hour of them up into stats_canceled.
stats_cancellations = Table(
    "stats_cancellations",
    metadata,
    Column("canceled_at", BigInteger, nullable=False),
    Column("app_id", Id, nullable=False),
    Column("endpoint_id", Id, nullable=False),
    Column("event_type", Id, nullable=False),
    Index("ix_stats_cancellations_time", "canceled_at"),
)

stats_canceled = Table(
    "stats_canceled",
    metadata,
    Column("app_id", Id, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("endpoint_id", Id, primary_key=True),
    Column("event_type", Id, primary_key=True),
    Column("deliveries", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

stats_dirty = Table(  # (application, hour) rolled up before a late attempt of it was written
    "stats_dirty",
    metadata,
    Column("app_id", Id, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("gen", BigInteger, nullable=False),  # bumped by each late write
    sqlite_with_rowid=False,
)

stats_rollup_state = Table(  # one row: every hour before rolled_until is in the rollups
    "stats_rollup_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("rolled_until", BigInteger, nullable=False),
)
