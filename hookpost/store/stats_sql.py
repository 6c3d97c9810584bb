"""The SQL both backends share for attempt statistics (domain.stats): the latency bucket as a
CASE over domain.stats.LATENCY_BOUNDS, and the statements' parts that do not differ."""

from __future__ import annotations

from hookpost.domain.stats import HOUR_MS, LATENCY_BOUNDS


def bucket_case(column: str) -> str:
    """``domain.stats.latency_bucket(column)`` as a binary tree of CASEs (a few comparisons a
    row, not one per bound)."""

    def node(lo: int, hi: int) -> str:
        if lo == hi:
            return str(lo)
        mid = (lo + hi) // 2
        return (
            f"CASE WHEN {column} <= {LATENCY_BOUNDS[mid]} THEN {node(lo, mid)}"
            f" ELSE {node(mid + 1, hi)} END"
        )

    return node(0, len(LATENCY_BOUNDS))


def cells_select(error_class: str) -> str:
    """domain.stats.cells_of over attempts (alias a) joined to their messages (alias m);
    ``error_class``: the backend's domain.retry.error_class of ``a.error``. The caller adds
    the WHERE clause and then ``CELLS_GROUP``."""
    reason = (
        "CASE WHEN a.status = 0 THEN '' WHEN a.error IS NOT NULL THEN "
        f"{error_class} ELSE CAST(a.response_status_code AS TEXT) END"
    )
    return (
        f"SELECT (a.created_at / {HOUR_MS}) * {HOUR_MS}, a.app_id, a.endpoint_id, m.event_type,"
        f" a.status, {bucket_case('a.duration_ms')}, {reason}, count(*)"
        " FROM attempts a JOIN messages m ON m.id = a.message_id"
    )


CELLS_GROUP = " GROUP BY 1, 2, 3, 4, 5, 6, 7"
# The rollups' marginals; "{where}" is the scope and the hours.
SUMS = "CAST(sum(succeeded) AS BIGINT), CAST(sum(failed) AS BIGINT)"  # (PostgreSQL's too)
_ATTEMPTS = "CAST(sum(attempts) AS BIGINT)"
BY_TYPE = f"SELECT event_type, {SUMS} FROM stats_hourly{{where}} GROUP BY event_type"
BY_HOUR = f"SELECT hour, {SUMS} FROM stats_hourly{{where}} GROUP BY hour"
BY_ENDPOINT = f"SELECT endpoint_id, {SUMS} FROM stats_hourly{{where}} GROUP BY endpoint_id"
LATENCY = f"SELECT bucket, {_ATTEMPTS} FROM stats_latency{{where}} GROUP BY bucket"
# An application's: the per-application table, a row per hour and bucket.
APP_LATENCY = f"SELECT bucket, {_ATTEMPTS} FROM stats_latency_app{{where}} GROUP BY bucket"
REASONS = f"SELECT reason, {_ATTEMPTS} FROM stats_failures{{where}} GROUP BY reason"
# Cancellations of the log as domain.stats.Canceled rows: the caller adds the WHERE clause
# (times first) and "GROUP BY 1, 2, 3, 4".
CANCELED_CELLS = (
    f"SELECT (canceled_at / {HOUR_MS}) * {HOUR_MS}, app_id, endpoint_id, event_type, count(*)"
    " FROM stats_cancellations"
)
# Svix's app attempt stats from the rollups: (event type, succeeded, failed, canceled); "{where}"
# is the scope and the hours, bound twice.
TYPES_WITH_CANCELED = (
    "SELECT event_type, CAST(sum(s) AS BIGINT), CAST(sum(f) AS BIGINT), CAST(sum(c) AS BIGINT)"
    " FROM (SELECT event_type, sum(succeeded) AS s, sum(failed) AS f, 0 AS c FROM stats_hourly"
    "{where} GROUP BY event_type UNION ALL SELECT event_type, 0, 0, sum(deliveries)"
    " FROM stats_canceled{where} GROUP BY event_type) t GROUP BY event_type"
)
# The oldest (application, hour) marked dirty by a late attempt, and the mark's generation.
DIRTY_NEXT = "SELECT app_id, hour, gen FROM stats_dirty ORDER BY hour, app_id LIMIT 1"
