"""The SQLite backend's fixed statements (queries built per call keep their pieces beside them).

``{values}`` marks where ``multirow.execute_values`` puts its rows; the columns of a ``VALUES``
list are ``column1``, ``column2``...
"""

from __future__ import annotations

from hookpost.domain.health import SUCCESS_REFRESH_MS
from hookpost.domain.throttle import gather_sql
from hookpost.store.rows import (
    ATTEMPT_COLUMNS,
    ENDPOINT_COLUMNS,
    HEALTH_FIELDS,
    endpoint_update_sql,
    message_head,
)

# -- applications ---------------------------------------------------------------------------
APP_INSERT = (
    "INSERT INTO applications (id, uid, name, metadata, throttle_rate, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# The id wins over another row's uid (one written before such uids were refused).
APP_GET = (
    "SELECT * FROM applications WHERE (id = ?1 OR uid = ?1) AND NOT deleted"
    " ORDER BY id = ?1 DESC LIMIT 1"
)
APP_UPDATE = (
    "UPDATE applications SET uid = ?, name = ?, metadata = ?, throttle_rate = ?, "
    "updated_at = ? WHERE id = ? AND NOT deleted"
)
APP_LIVE = "SELECT 1 FROM applications WHERE id = ? AND NOT deleted"
# Deleting an application or an endpoint (store.purge): flag it, then delete its rows.
APP_FLAG = "UPDATE applications SET deleted = 1, uid = NULL WHERE id = ? AND NOT deleted"
APP_ENDPOINTS_FLAG = "UPDATE endpoints SET deleted = 1, disabled = 1, uid = NULL WHERE app_id = ?"
APP_TOKENS_DELETE = "DELETE FROM api_tokens WHERE app_id = ?"
APP_ENDPOINT_IDS = "SELECT id FROM endpoints WHERE app_id = ?"
FLAGGED_APPS = "SELECT id FROM applications WHERE deleted"
FLAGGED_ENDPOINTS = "SELECT app_id, id FROM endpoints WHERE deleted"

# -- event types ----------------------------------------------------------------------------
EVENT_TYPE_INSERT = (
    "INSERT INTO event_types (name, description, schemas, archived, deprecated, "
    "feature_flag, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
EVENT_TYPE_GET = "SELECT * FROM event_types WHERE name = ?"
EVENT_TYPE_UPDATE = (
    "UPDATE event_types SET description = ?, schemas = ?, archived = ?, "
    "deprecated = ?, feature_flag = ?, updated_at = ?, retry_schedule = ? WHERE name = ?"
)
EVENT_TYPE_DELETE = "DELETE FROM event_types WHERE name = ?"
EVENT_TYPE_COUNT = "SELECT count(*) FROM event_types"

# -- endpoints ------------------------------------------------------------------------------
ENDPOINT_INSERT = (
    f"INSERT INTO endpoints ({', '.join(ENDPOINT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in ENDPOINT_COLUMNS)})"
)
ENDPOINT_UPDATE = endpoint_update_sql(lambda column: f":{column}", ":expected_updated_at")
ENDPOINT_GET = (
    "SELECT * FROM endpoints WHERE app_id = ?1 AND (id = ?2 OR uid = ?2) AND NOT deleted"
    " ORDER BY id = ?2 DESC LIMIT 1"
)
ENDPOINT_EXISTS = "SELECT 1 FROM endpoints WHERE app_id = ? AND id = ? AND NOT deleted"
ENDPOINT_COUNT = "SELECT count(*) FROM endpoints WHERE app_id = ? AND NOT deleted"
ENDPOINT_FLAG = (
    "UPDATE endpoints SET deleted = 1, disabled = 1, uid = NULL "
    "WHERE app_id = ? AND id = ? AND NOT deleted"
)
ANY_SEALED_KEYS = "SELECT id, keys FROM endpoints LIMIT 1"

# -- messages -------------------------------------------------------------------------------
MESSAGE_GET = "SELECT * FROM messages WHERE app_id = ? AND (id = ? OR event_id = ?) LIMIT 1"
MESSAGES_LIST = f"SELECT {message_head('messages')} FROM messages"
PAYLOADS = "SELECT id, payload FROM messages WHERE id IN (SELECT value FROM json_each(?))"
MESSAGE_EXPUNGE = (
    "UPDATE messages SET payload = ?, expunged = 1, payload_expires_at = NULL"
    " WHERE app_id = ? AND id = ?"
)
MESSAGES_INSERT = (
    "INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, expunged, "
    "created_at, payload_sha256, payload_expires_at) VALUES {values}"
)
MESSAGE_BY_EVENT_ID = "SELECT * FROM messages WHERE app_id = ? AND event_id = ?"
# The enabled endpoints of each app, one row per app holding a JSON array of
# [id, event_types, channels, payload_filter, ordered]: one statement for any number of apps and
# endpoints.
APPS_ENDPOINTS = (
    "SELECT app_id, json_group_array("
    "json_array(id, json(event_types), json(channels), payload_filter, ordered)) "
    "FROM endpoints WHERE app_id IN (SELECT value FROM json_each(?)) AND disabled = 0 "
    "GROUP BY app_id"
)
# The deliveries as one JSON array of [app_id, message_id, now_ms, [endpoint_id, ...]]. Each
# json_extract parses its argument again, so the per-message values are taken out once per
# message in a subquery, which LIMIT keeps SQLite from flattening into the join (flattened,
# they were extracted again for every delivery: 4x slower at 22 endpoints per message).
DELIVERIES_CREATE = (
    "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger, "
    "due_at, next_attempt_at, updated_at) "
    "SELECT m.app_id, m.message_id, e.value, 0, 0, 0, m.now, m.now, m.now FROM ("
    " SELECT json_extract(value, '$[0]') AS app_id, json_extract(value, '$[1]') AS message_id,"
    " json_extract(value, '$[2]') AS now, json_extract(value, '$[3]') AS endpoints"
    " FROM json_each(?) LIMIT -1) AS m, json_each(m.endpoints) AS e"
)

# -- the delivery queue ---------------------------------------------------------------------
# What a claim reads, in the order queue.SqliteQueue._claimed unpacks it: plain rows (see
# docs/decisions/0018-sqlite-claims-read-plain-rows.md).
_CLAIM_COLUMNS = (
    "d.id, d.app_id, d.message_id, d.endpoint_id, d.attempts, d.trigger, m.event_type, "
    "m.payload, m.created_at AS msg_created_at, e.url, e.headers, e.keys, e.signature_scheme, "
    "e.retry_schedule, e.disabled, d.due_at, e.signature_header, e.ordered"
)
# The endpoints with due rows and their oldest due time (domain.scheduling's heads): a loose
# index scan of ix_deliveries_endpoint_due, two probes per endpoint with a queued row, however
# many rows each has queued (docs/decisions/0023-per-endpoint-claims.md).
_HEADS = (
    "WITH RECURSIVE ep(id) AS ("
    " SELECT (SELECT endpoint_id FROM deliveries WHERE due_at IS NOT NULL"
    " ORDER BY endpoint_id LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT endpoint_id FROM deliveries WHERE due_at IS NOT NULL AND endpoint_id > ep.id"
    " ORDER BY endpoint_id LIMIT 1) FROM ep WHERE ep.id IS NOT NULL), "
    "heads(id, head) AS ("
    " SELECT ep.id, (SELECT due_at FROM deliveries WHERE endpoint_id = ep.id"
    " AND due_at IS NOT NULL ORDER BY due_at LIMIT 1) FROM ep WHERE ep.id IS NOT NULL) "
)
CLAIM_HEADS = (
    f"{_HEADS}SELECT h.id, h.head, e.disabled, e.throttle_rate, e.throttle_at FROM heads h"
    " JOIN endpoints e ON e.id = h.id WHERE h.head <= ?"
)
# An endpoint's pace and its oldest pending due time (domain.throttle.PaceState).
ENDPOINT_PACE = (
    "SELECT e.throttle_rate, e.throttle_at, (SELECT due_at FROM deliveries"
    " WHERE endpoint_id = e.id AND due_at IS NOT NULL AND status = 0 ORDER BY due_at LIMIT 1)"
    " FROM endpoints e WHERE e.id = ?"
)
# Where a claim moves a throttled endpoint's pace (domain.throttle): (throttle_at, id).
THROTTLE_MOVE = "UPDATE endpoints SET throttle_at = ? WHERE id = ?"
# One endpoint's share: its oldest due rows ($1 endpoint, $2 now, $3 how many), + the caller's
# own in flight left out (CLAIM_NOT_HELD), if any, + CLAIM_ORDER.
CLAIM = (
    f"SELECT {_CLAIM_COLUMNS} "
    "FROM deliveries d JOIN messages m ON m.id = d.message_id "
    "JOIN endpoints e ON e.id = d.endpoint_id "
    "WHERE d.endpoint_id = ? AND d.due_at <= ?"
)
CLAIM_ORDER = " ORDER BY d.due_at LIMIT ?"
CLAIM_NOT_HELD = " AND d.id NOT IN (SELECT value FROM json_each(?))"  # the caller's in flight
# A disabled endpoint's share, to be canceled.
CLAIM_CANCELED = (
    "SELECT id FROM deliveries WHERE endpoint_id = ? AND due_at <= ? ORDER BY due_at LIMIT ?"
)
DELIVERIES_LEASE = (
    "UPDATE deliveries SET status = 1, due_at = ?, lease = ?, updated_at = ? "
    "WHERE id IN (VALUES {values})"
)
DELIVERIES_CANCEL = (
    "UPDATE deliveries SET status = 4, due_at = NULL, lease = NULL, updated_at = ? "
    "WHERE id IN (VALUES {values})"
)
# Each cancel is logged for the stats (domain.stats.Canceled), before it: (now, ids).
CANCELS_LOG = (
    "INSERT INTO stats_cancellations (canceled_at, app_id, endpoint_id, event_type)"
    " SELECT ?, d.app_id, d.endpoint_id, m.event_type FROM deliveries d"
    " JOIN messages m ON m.id = d.message_id WHERE d.id IN (VALUES {values})"
)
# A late attempt's (application, hour), to be rolled up again (domain.stats.late_hours).
STATS_DIRTY = (
    "INSERT INTO stats_dirty (app_id, hour, gen) VALUES (?, ?, 1)"
    " ON CONFLICT (app_id, hour) DO UPDATE SET gen = gen + 1"
)
# Skips the attempt of a delivery whose message or endpoint was deleted while it was in
# flight (the cascade would have removed it anyway), instead of failing the whole batch.
# Columns of a VALUES list are column1, column2...: here in ATTEMPT_COLUMNS order (3 is the
# message id, 4 the endpoint id).
ATTEMPTS_INSERT = (
    f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) "
    f"SELECT {', '.join(f'column{i + 1}' for i in range(len(ATTEMPT_COLUMNS)))} "
    "FROM (VALUES {values}) "
    "WHERE EXISTS (SELECT 1 FROM messages WHERE id = column3) "
    "AND EXISTS (SELECT 1 FROM endpoints WHERE id = column4)"
)
# Only where the lease still matches: a result that lost its lease is stale.
DELIVERIES_FINISH = (
    "UPDATE deliveries SET status = v.column1, attempts = v.column2, next_attempt_at = v.column3, "
    "due_at = v.column4, lease = NULL, trigger = 0, updated_at = v.column5 "
    "FROM (VALUES {values}) AS v WHERE deliveries.id = v.column6 AND deliveries.lease = v.column7"
)
# An endpoint's run of successes in a batch (domain.health.succeeded), here in SQL: a healthy
# batch then reads no endpoint, and writes one only when its record changes (at most once a
# second). tests/contract/test_endpoint_health.py holds it to the domain's rule. Rows: (id,
# its last success's time and status code).
ENDPOINTS_RESET = (
    "UPDATE endpoints SET consecutive_failures = 0, first_failure_at = NULL, "
    "last_success_at = v.column2, last_status_code = v.column3 "
    "FROM (VALUES {values}) AS v WHERE endpoints.id = v.column1 AND (consecutive_failures > 0 "
    f"OR last_success_at IS NULL OR v.column2 - last_success_at >= {SUCCESS_REFRESH_MS} "
    "OR last_status_code IS NOT v.column3)"
)
# The health of the endpoints with a failure in a batch, replayed by domain.health.
ENDPOINTS_HEALTH = (
    f"SELECT id, {', '.join(HEALTH_FIELDS)} "
    "FROM endpoints WHERE id IN (SELECT value FROM json_each(?))"
)
ENDPOINTS_HEALTH_UPDATE = (
    "UPDATE endpoints SET "
    + ", ".join(f"{c} = v.column{i}" for i, c in enumerate(HEALTH_FIELDS, 2))
    + " FROM (VALUES {values}) AS v WHERE endpoints.id = v.column1"
)
DELIVERIES_RELEASE = (  # leading: due_at, updated_at; rows: (id, lease)
    "UPDATE deliveries SET status = 0, due_at = ?, lease = NULL, updated_at = ? "
    "FROM (VALUES {values}) AS v WHERE deliveries.id = v.column1 AND deliveries.lease = v.column2"
)  # a join, not (id, lease) IN (...): SQLite scans the whole table for a row-value IN
# (delivery id, lease) pairs, as one JSON array of [id, lease]: one statement for any number.
_LEASES = (
    "(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS lease "
    "FROM json_each(?)) AS v"
)
# The heartbeat: (due_at, the pairs). A lease already lost stays lost.
DELIVERIES_RENEW = (
    f"UPDATE deliveries SET due_at = ? FROM {_LEASES} "
    "WHERE deliveries.id = v.id AND deliveries.lease = v.lease"
)
LEASES_HELD = (
    f"SELECT d.id, d.lease FROM deliveries d JOIN {_LEASES} ON d.id = v.id AND d.lease = v.lease"
)
QUEUE_DUE = "SELECT count(*), min(due_at) FROM deliveries WHERE due_at <= ?"
# Parked rows (behind an ordered endpoint's head) are due later too.
QUEUE_SCHEDULED = (
    "SELECT (SELECT count(*) FROM deliveries WHERE due_at > ? AND status = 0)"
    " + (SELECT count(*) FROM deliveries WHERE status = 0 AND due_at IS NULL)"
)
# The oldest of the endpoints' heads (there is no global due index: decision 0023), a
# throttled endpoint's no sooner than its next slot (domain.throttle).
NEXT_DUE = (
    f"{_HEADS}SELECT min(max(h.head, coalesce(e.throttle_at + "
    f"{gather_sql('e.throttle_rate', 'max')}, 0)))"
    " FROM heads h JOIN endpoints e ON e.id = h.id"
)

# -- deliveries and attempts as operators see them ------------------------------------------
RESEND = (
    "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, "
    "trigger, due_at, next_attempt_at, updated_at) VALUES (?, ?, ?, 0, 0, 1, ?, ?, ?) "
    "ON CONFLICT (message_id, endpoint_id) DO UPDATE SET status = 0, trigger = 1, "
    "due_at = excluded.due_at, next_attempt_at = excluded.next_attempt_at, "
    "lease = NULL, updated_at = excluded.updated_at"
)
# A batch of recover: the next deliveries to look at (+ the WHERE clause and RECOVER_ORDER),
# then those of them still failed or canceled queued again.
RECOVER_NEXT = "SELECT id, message_id FROM deliveries WHERE "
RECOVER_ORDER = " ORDER BY message_id LIMIT ?"
RECOVER = (
    "UPDATE deliveries SET status = 0, attempts = 0, trigger = 0, due_at = ?, "
    "next_attempt_at = ?, lease = NULL, updated_at = ? "
    "WHERE id IN (SELECT value FROM json_each(?)) AND status IN (3, 4)"
)
DELIVERY_GET = "SELECT * FROM deliveries WHERE message_id = ? AND endpoint_id = ?"
ATTEMPT_GET = "SELECT * FROM attempts WHERE app_id = ? AND message_id = ? AND id = ?"
ATTEMPT_EXPUNGE = "UPDATE attempts SET response = '' WHERE app_id = ? AND message_id = ? AND id = ?"
DELIVERIES_OF_MESSAGE = (
    "SELECT e.*, d.id AS d_id, d.app_id AS d_app_id, d.message_id AS d_message_id, "
    "d.endpoint_id AS d_endpoint_id, d.status AS d_status, d.attempts AS d_attempts, "
    "d.next_attempt_at AS d_next_attempt_at, d.updated_at AS d_updated_at "
    "FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
)
DELIVERIES_OF_ENDPOINT = (  # the messages without their payloads (store.paging.content_rows)
    f"SELECT {message_head('m')}, "
    "d.id AS d_id, d.app_id AS d_app_id, d.message_id AS d_message_id, "
    "d.endpoint_id AS d_endpoint_id, d.status AS d_status, d.attempts AS d_attempts, "
    "d.next_attempt_at AS d_next_attempt_at, d.updated_at AS d_updated_at "
    "FROM deliveries d JOIN messages m ON m.id = d.message_id"
)

# -- tokens ---------------------------------------------------------------------------------
TOKEN_INSERT = (
    "INSERT INTO api_tokens (id, token_hash, app_id, name, created_at, "
    "expires_at, hint) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
TOKEN_FIND = "SELECT * FROM api_tokens WHERE token_hash = ?"
TOKEN_DELETE = "DELETE FROM api_tokens WHERE token_hash = ?"
TOKEN_DELETE_ID = "DELETE FROM api_tokens WHERE id = ? RETURNING *"
TOKEN_INSERT_NEW = TOKEN_INSERT + " ON CONFLICT (token_hash) DO NOTHING"
# The admin tokens under the reserved name of HOOKPOST_ADMIN_TOKEN's (domain.permissions).
ENV_TOKENS_DELETE = "DELETE FROM api_tokens WHERE app_id IS NULL AND name = ? AND token_hash <> ?"
ADMIN_TOKENS = "SELECT count(*) FROM api_tokens WHERE app_id IS NULL"

# -- idempotency keys -----------------------------------------------------------------------
# What a key holds: a request's answer (status, body), or the message its send created.
IDEMPOTENT_GET = (
    "SELECT status, body, message_id FROM idempotency_keys "
    "WHERE scope = ? AND key = ? AND expires_at > ?"
)
# A batch of keys, expired ones or those of a deleted application (their rows, by rowid).
KEYS_EXPIRED_DELETE = (
    "DELETE FROM idempotency_keys WHERE rowid IN "
    "(SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)"
)
KEYS_OF_APP_DELETE = (
    "DELETE FROM idempotency_keys WHERE rowid IN "
    "(SELECT rowid FROM idempotency_keys WHERE app_id = ? LIMIT ?)"
)
IDEMPOTENT_STORED = (
    "SELECT status, body, message_id FROM idempotency_keys WHERE scope = ? AND key = ?"
)
# What some of a group's idempotency keys hold already: one statement for the group, over a
# JSON array of [scope, key, now_ms] (the array index comes back with each row).
KEYS_FOUND = (
    "SELECT CAST(j.key AS INTEGER), i.status, i.body, i.message_id FROM json_each(?) AS j "
    "JOIN idempotency_keys AS i ON i.scope = json_extract(j.value, '$[0]') "
    "AND i.key = json_extract(j.value, '$[1]') WHERE i.expires_at > json_extract(j.value, '$[2]')"
)
# Rows of (scope, key, status, body, message_id, expires_at). The sends' keys are recorded with
# their messages (checked in the same transaction, see messages._replayed).
KEYS_PUT = (
    "INSERT INTO idempotency_keys (scope, key, status, body, message_id, expires_at) "
    "VALUES {values} ON CONFLICT (scope, key) DO UPDATE SET status = excluded.status, "
    "body = excluded.body, message_id = excluded.message_id, app_id = excluded.app_id, "
    "expires_at = excluded.expires_at"
)
# A request's answer, unless a key unexpired at the last parameter is there already.
ANSWER_PUT_FIRST = (
    "INSERT INTO idempotency_keys (scope, key, status, body, message_id, app_id, expires_at) "
    "VALUES (?, ?, ?, ?, NULL, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET "
    "status = excluded.status, body = excluded.body, message_id = excluded.message_id, "
    "app_id = excluded.app_id, expires_at = excluded.expires_at "
    "WHERE idempotency_keys.expires_at <= ?"
)

# delivery_options: the few rows with an option set (a partial index serves the endpoints').
OPTION_TYPE_SCHEDULES = (
    "SELECT name, retry_schedule FROM event_types WHERE retry_schedule IS NOT NULL"
)
OPTION_TIMEOUTS = "SELECT id, timeout_s FROM endpoints WHERE timeout_s IS NOT NULL"
OPTION_TRACEPARENT = "SELECT id, send_traceparent FROM endpoints WHERE send_traceparent IS NOT NULL"

# -- ordered endpoints (domain.ordering; docs/decisions/0031-ordered-delivery.md) -------------
# An endpoint's queue as domain.ordering.settle reads it: whether it is ordered and its oldest
# parked row (ix_deliveries_parked), then its live rows (ix_deliveries_endpoint_due).
ORDER_ENDPOINT = (
    "SELECT ordered, (SELECT min(id) FROM deliveries WHERE endpoint_id = ?1"
    " AND status = 0 AND due_at IS NULL) FROM endpoints WHERE id = ?1"
)
ORDER_LIVE = (
    "SELECT count(*) FILTER (WHERE status = 1), count(*) FILTER (WHERE status = 0),"
    " min(id) FILTER (WHERE status = 0) FROM deliveries"
    " WHERE endpoint_id = ? AND due_at IS NOT NULL"
)
# (updated_at, endpoint, the row to keep or NULL)
ORDER_PARK = (
    "UPDATE deliveries SET due_at = NULL, updated_at = ?"
    " WHERE endpoint_id = ? AND status = 0 AND due_at IS NOT NULL AND id IS NOT ?"
)
# (now, now, now, row)
ORDER_PROMOTE = (
    "UPDATE deliveries SET due_at = ?, next_attempt_at = ?, updated_at = ?"
    " WHERE id = ? AND status = 0 AND due_at IS NULL"
)
# (now, now, now, endpoint)
ORDER_UNPARK = (
    "UPDATE deliveries SET due_at = ?, next_attempt_at = ?, updated_at = ?"
    " WHERE endpoint_id = ? AND status = 0 AND due_at IS NULL"
)
# Rows just queued for an ordered endpoint join it parked: (updated_at, endpoint, message ids
# as a JSON array).
ORDER_PARK_NEW = (
    "UPDATE deliveries SET due_at = NULL, updated_at = ? WHERE endpoint_id = ?"
    " AND message_id IN (SELECT value FROM json_each(?)) AND status = 0"
)
# A disabled endpoint's parked rows, canceled with its head by a claim: (now, endpoint).
ORDER_CANCEL_PARKED = (
    "UPDATE deliveries SET status = 4, updated_at = ?"
    " WHERE endpoint_id = ? AND status = 0 AND due_at IS NULL"
)
ORDER_CANCEL_PARKED_LOG = (  # logged before (domain.stats.Canceled): (now, endpoint)
    "INSERT INTO stats_cancellations (canceled_at, app_id, endpoint_id, event_type)"
    " SELECT ?, d.app_id, d.endpoint_id, m.event_type FROM deliveries d"
    " JOIN messages m ON m.id = d.message_id"
    " WHERE d.endpoint_id = ? AND d.status = 0 AND d.due_at IS NULL"
)
# The sweep: endpoints with parked rows (a loose index scan of ix_deliveries_parked, one probe
# per such endpoint) that no longer are ordered or have no live row.
ORDER_UNSETTLED = (
    "WITH RECURSIVE p(id) AS ("
    " SELECT (SELECT endpoint_id FROM deliveries WHERE status = 0 AND due_at IS NULL"
    " ORDER BY endpoint_id LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT endpoint_id FROM deliveries WHERE status = 0 AND due_at IS NULL"
    " AND endpoint_id > p.id ORDER BY endpoint_id LIMIT 1) FROM p WHERE p.id IS NOT NULL) "
    "SELECT p.id FROM p JOIN endpoints e ON e.id = p.id WHERE NOT e.ordered OR NOT EXISTS"
    " (SELECT 1 FROM deliveries l WHERE l.endpoint_id = p.id AND l.due_at IS NOT NULL)"
)
