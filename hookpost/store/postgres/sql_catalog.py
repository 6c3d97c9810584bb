"""The PostgreSQL store's fixed SQL for applications, event types and endpoints (the rest
is in ``sql``)."""

from __future__ import annotations

from hookpost.store.rows import (
    ENDPOINT_COLUMNS,
    ENDPOINT_UPDATE_PARAMS,
    endpoint_update_sql,
)

# -- applications / event types / endpoints -------------------------------------------------
APP_INSERT = (
    "INSERT INTO applications (id, uid, name, metadata, throttle_rate, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
# The id wins over another row's uid (one written before such uids were refused).
APP_GET = (
    "SELECT * FROM applications WHERE (id = $1 OR uid = $1) AND NOT deleted"
    " ORDER BY id = $1 DESC LIMIT 1"
)
APP_UPDATE = (
    "UPDATE applications SET uid = $2, name = $3, metadata = $4, throttle_rate = $5, "
    "updated_at = $6 WHERE id = $1 AND NOT deleted"
)
# Taken to create an endpoint: concurrent creates in one application count one after the other.
# NO KEY UPDATE does not block the key-share locks that inserting its messages takes.
APP_LOCK = "SELECT 1 FROM applications WHERE id = $1 AND NOT deleted FOR NO KEY UPDATE"
# Deleting an application or an endpoint (store.purge): flag it, then delete its rows.
APP_FLAG = "UPDATE applications SET deleted = true, uid = NULL WHERE id = $1 AND NOT deleted"
APP_ENDPOINTS_FLAG = (
    "UPDATE endpoints SET deleted = true, disabled = true, uid = NULL WHERE app_id = $1"
)
APP_TOKENS_DELETE = "DELETE FROM api_tokens WHERE app_id = $1"
APP_ENDPOINT_IDS = "SELECT id FROM endpoints WHERE app_id = $1"
FLAGGED_APPS = "SELECT id FROM applications WHERE deleted"
FLAGGED_ENDPOINTS = "SELECT app_id, id FROM endpoints WHERE deleted"

EVENT_TYPE_INSERT = (
    "INSERT INTO event_types (name, description, schemas, archived, deprecated, feature_flag, "
    "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
EVENT_TYPE_GET = "SELECT * FROM event_types WHERE name = $1"
EVENT_TYPE_UPDATE = (
    "UPDATE event_types SET description = $2, schemas = $3, archived = $4, deprecated = $5, "
    "feature_flag = $6, updated_at = $7, retry_schedule = $8 WHERE name = $1"
)
EVENT_TYPE_DELETE = "DELETE FROM event_types WHERE name = $1"
# Taken to create an event type under a cap: creates count one after the other (reads go on).
EVENT_TYPES_LOCK = "LOCK TABLE event_types IN SHARE ROW EXCLUSIVE MODE"
EVENT_TYPE_COUNT = "SELECT count(*) FROM event_types"

ENDPOINT_INSERT = (
    f"INSERT INTO endpoints ({', '.join(ENDPOINT_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(ENDPOINT_COLUMNS) + 1))})"
)
# Parameters: ENDPOINT_UPDATE_PARAMS in order.
ENDPOINT_UPDATE_COLUMNS = ENDPOINT_UPDATE_PARAMS
# ... and then the updated_at the row must still have (NULL: any).
ENDPOINT_UPDATE = endpoint_update_sql(
    lambda column: f"${ENDPOINT_UPDATE_PARAMS.index(column) + 1}",
    f"${len(ENDPOINT_UPDATE_PARAMS) + 1}::bigint",
)
ENDPOINT_EXISTS = (
    "SELECT EXISTS (SELECT 1 FROM endpoints WHERE app_id = $1 AND id = $2 AND NOT deleted)"
)
ENDPOINT_GET = (
    "SELECT * FROM endpoints WHERE app_id = $1 AND (id = $2 OR uid = $2) AND NOT deleted"
    " ORDER BY id = $2 DESC LIMIT 1"
)
ENDPOINT_COUNT = "SELECT count(*) FROM endpoints WHERE app_id = $1 AND NOT deleted"
ENDPOINT_FLAG = (
    "UPDATE endpoints SET deleted = true, disabled = true, uid = NULL"
    " WHERE app_id = $1 AND id = $2 AND NOT deleted"
)
