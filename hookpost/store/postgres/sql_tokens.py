"""The PostgreSQL store's fixed SQL for API tokens and idempotency keys (the rest is in
``sql``)."""

from __future__ import annotations

from hookpost.store.postgres.sql import KEY_UPDATE  # a key's update, shared with message create

# -- tokens and idempotency -----------------------------------------------------------------
TOKEN_INSERT = (
    "INSERT INTO api_tokens (id, token_hash, app_id, name, created_at, expires_at, hint) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
TOKEN_FIND = "SELECT * FROM api_tokens WHERE token_hash = $1"
TOKEN_DELETE = "DELETE FROM api_tokens WHERE token_hash = $1"
TOKEN_DELETE_ID = "DELETE FROM api_tokens WHERE id = $1 RETURNING *"
# One statement: delete the other admin tokens under the reserved name of HOOKPOST_ADMIN_TOKEN's
# (domain.permissions, $4), store this one unless its hash is there; how many were deleted.
ENV_TOKEN_REPLACE = (
    "WITH gone AS (DELETE FROM api_tokens WHERE app_id IS NULL AND name = $4 "
    "AND token_hash <> $2 RETURNING 1), "
    "added AS (INSERT INTO api_tokens "
    "(id, token_hash, app_id, name, created_at, expires_at, hint) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (token_hash) DO NOTHING RETURNING 1) "
    "SELECT count(*) FROM gone"
)
ADMIN_TOKENS = "SELECT count(*) FROM api_tokens WHERE app_id IS NULL"
# What a key holds: a request's answer (status, body), or the message its send created.
# A batch of keys, expired ones or those of a deleted application (their rows, by ctid).
KEYS_EXPIRED_DELETE = (
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2))"
)
KEYS_OF_APP_DELETE = (
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM idempotency_keys WHERE app_id = $1 LIMIT $2))"
)
IDEMPOTENT_GET = (
    "SELECT status, body, message_id FROM idempotency_keys"
    " WHERE scope = $1 AND key = $2 AND expires_at > $3"
)
# A request's answer ($3, $4) or a send's message ($5), unless the key holds something
# unexpired at $7 already (the first answer wins): no row then.
IDEMPOTENT_PUT = (
    "INSERT INTO idempotency_keys (scope, key, status, body, message_id, expires_at, app_id) "
    f"VALUES ($1, $2, $3, $4, $5, $6, $8) ON CONFLICT (scope, key) DO UPDATE SET {KEY_UPDATE} "
    "WHERE idempotency_keys.expires_at <= $7 RETURNING 1"
)
