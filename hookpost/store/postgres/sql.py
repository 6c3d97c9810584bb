"""The fixed SQL of the PostgreSQL store (dynamic list queries are built in store.py); the
catalog's is in ``sql_catalog``, tokens' and idempotency keys' in ``sql_tokens``, and
``clocked`` binds the statements that read the clock.

Hot paths are single statements where the semantics allow it: one round trip and, outside an
explicit transaction, one implicit transaction each. Data-modifying CTEs always run to
completion, even when the main query does not read them.
"""

from __future__ import annotations

from hookpost.domain.health import SUCCESS_REFRESH_MS
from hookpost.domain.throttle import gather_sql
from hookpost.store.rows import (
    ATTEMPT_COLUMNS,
    HEALTH_FIELDS,
    message_head,
)

NOTIFY_CHANNEL = "hookpost_work"
# The database's clock, in ms: due times and leases follow it (see Clocked).
DB_NOW = "(SELECT floor(extract(epoch from now()) * 1000)::bigint)"  # once per statement

# -- messages -------------------------------------------------------------------------------
# Inserts the message unless its eventId is taken (then no row comes back at all), and reads
# the app's enabled endpoints in the same round trip: one row per endpoint, or one row of
# NULLs when the app has none.
MESSAGE_INSERT = (
    "WITH ins AS ("
    " INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, expunged,"
    " created_at, payload_sha256, payload_expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, false, $7, $8, $9)"
    " ON CONFLICT ON CONSTRAINT uq_messages_app_event_id DO NOTHING"
    " RETURNING app_id) "
    "SELECT e.id, e.event_types, e.channels, e.payload_filter FROM ins"
    " LEFT JOIN endpoints e ON e.app_id = ins.app_id AND NOT e.disabled "
    "ORDER BY e.id"
)
MESSAGE_BY_EVENT_ID = "SELECT * FROM messages WHERE app_id = $1 AND event_id = $2"

# create_message in ONE statement (one round trip, one implicit transaction): the message and
# its deliveries, or nothing. domain.matching.filters_match stays the definition of matching;
# the SQL below mirrors it exactly for the filters it can express, and answers `fallback`
# (writing nothing) when an enabled endpoint of the app has any other filter, so that the
# store then matches in Python (MESSAGE_INSERT + DELIVERIES_INSERT in a transaction).
# A filter SQL can express: NULL, or a JSON array of strings without escapes or control
# characters, as orjson writes a list[str] (so the jsonb cast can neither fail nor change a
# string). A new kind of filter (a new column) must make an endpoint not `exact`: a payload
# filter does (docs/decisions/0024-payload-filters.md).
_PLAIN_STRINGS = r"""'^\[("[^"\\[:cntrl:]]*"(,"[^"\\[:cntrl:]]*")*)?\]$'"""
_EXACT = (
    f"(e.event_types IS NULL OR e.event_types ~ {_PLAIN_STRINGS})"
    f" AND (e.channels IS NULL OR e.channels ~ {_PLAIN_STRINGS})"
    " AND e.payload_filter IS NULL"
)


def _match(event_type: str, channels: str) -> str:
    """filters_match over `eps`: (no type filter or the type is listed or matches a pattern
    of domain.matching: `*`, `prefix.*`) and (no channel filter or the channels overlap); an
    empty list is no filter. ``event_type`` is a text expression, ``channels`` a text[] one
    (may be empty). CASE, unlike AND/OR, guarantees the cast only ever sees an `exact` value.
    Only a filter whose text holds a `*` has its patterns expanded."""
    return (
        "CASE WHEN eps.exact THEN"
        " (eps.event_types IS NULL OR eps.event_types = '[]'"
        f" OR eps.event_types::jsonb ? {event_type}"
        " OR (strpos(eps.event_types, '*') > 0 AND EXISTS ("
        " SELECT 1 FROM jsonb_array_elements_text(eps.event_types::jsonb) AS p(t)"
        " WHERE p.t = '*'"
        f" OR (right(p.t, 2) = '.*' AND starts_with({event_type}, left(p.t, -1))))))"
        " AND (eps.channels IS NULL OR eps.channels = '[]'"
        f" OR eps.channels::jsonb ?| {channels}) ELSE false END"
    )


# $3 the event type, $9 the message's channels as text[].
_MATCH = _match("$3", "$9::text[]")
# The message's columns (MESSAGE_INSERT's, payload_sha256 last, as $10: the statements that
# use it take $8 and $9 for themselves).
_MESSAGE_ROW = (
    "$1::text, $2::text, $3::text, $4::text, $5::text, $6::bytea, false, $7::bigint, $10::text,"
    " $11::bigint"
)
_DELIVERY_COLUMNS = (
    "deliveries (app_id, message_id, endpoint_id, status, attempts, trigger, due_at,"
    " next_attempt_at, updated_at)"
)


# An ordered endpoint's new delivery joins its queue parked (domain.ordering.joins_parked): no
# due time. The caller then settles the endpoints named by `parked` (PostgresBase._settle).
def _due_unless(ordered: str) -> str:
    return f"CASE WHEN {ordered} THEN NULL ELSE {DB_NOW} END"


_PARKED_ENDPOINT = "CASE WHEN due_at IS NULL THEN endpoint_id END AS parked"
_PARKED = "ARRAY(SELECT DISTINCT parked FROM dl WHERE parked IS NOT NULL) AS parked"
_CREATED = (
    f"(SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM dl) AS deliveries, {_PARKED}"
)
# $1-$7 the message (as MESSAGE_INSERT), $8 now, $9 the message's channels as text[], $10 its
# payload_sha256, $11 its payload_expires_at.
# `inserted` 0 without `fallback`: the eventId is taken (read the first message).
MESSAGE_CREATE = (
    "WITH eps AS MATERIALIZED ("
    f" SELECT e.id, e.event_types, e.channels, e.ordered, {_EXACT} AS exact"
    " FROM endpoints e WHERE e.app_id = $2 AND NOT e.disabled), "
    "fb AS (SELECT EXISTS (SELECT 1 FROM eps WHERE NOT eps.exact) AS fallback), "
    "ins AS ("
    " INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, expunged,"
    f" created_at, payload_sha256, payload_expires_at) SELECT {_MESSAGE_ROW} FROM fb"
    " WHERE NOT fb.fallback"
    " ON CONFLICT ON CONSTRAINT uq_messages_app_event_id DO NOTHING"
    " RETURNING id), "
    "dl AS ("
    f" INSERT INTO {_DELIVERY_COLUMNS}"
    f" SELECT $2, ins.id, eps.id, 0, 0, 0, {_due_unless('eps.ordered')}, {DB_NOW}, $8::bigint"
    f" FROM ins, eps WHERE {_MATCH} ORDER BY eps.id"
    f" RETURNING {_PARKED_ENDPOINT}) "
    f"SELECT fb.fallback, {_CREATED} FROM fb"
)
# An idempotency key's row replaced whole: what an expired key held goes.
KEY_UPDATE = (
    "status = excluded.status, body = excluded.body, message_id = excluded.message_id,"
    " app_id = excluded.app_id, expires_at = excluded.expires_at"
)
# MESSAGE_CREATE for many messages in one statement (PostgresStore's group commit of
# concurrent creates). $1-$7 the messages' columns as arrays (in MESSAGE_INSERT's order;
# channels as their JSON text, which must not hold a NUL), $8 each one's `now`, $9 the distinct
# app ids (named as `= ANY(array)` so that apps and endpoints are index lookups on any
# statistics, see the queue section below). One row per
# message, in input order: `fallback` (nothing written for it: an endpoint of its app has a
# filter only Python can evaluate), `inserted` (false without `fallback`: its eventId is taken,
# by an earlier message or an earlier one of this batch, or its app does not exist, which is
# checked here so that one such message does not fail the whole batch on the foreign key),
# `deliveries`. The caller creates each message not inserted alone, which answers each case.
# $13: each message's payload_sha256, $14 its payload_expires_at.
# $10-$12: each message's idempotency key (scope, key; NULL for none) and its expires_at. A key
# that holds something already (unexpired at its `now`) wins: the message is not inserted, and
# `replayed` with `replay_status`/`replay_body`/`replay_message_id` return what it holds.
# Otherwise the key is recorded with the message's id if the message is inserted. The caller
# must not give one key twice (ON CONFLICT cannot update a row twice in a statement).
MESSAGE_CREATE_MANY = (
    "WITH b AS MATERIALIZED ("
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::bytea[], $7::bigint[], $8::bigint[], $10::text[], $11::text[], $12::bigint[],"
    " $13::text[], $14::bigint[])"
    " WITH ORDINALITY AS b(id, app_id, event_type, event_id, channels, payload, created_at,"
    " now, key_scope, key_key, key_expires_at, payload_sha256, payload_expires_at, ord)), "
    "seen AS MATERIALIZED ("
    " SELECT b.ord, k.status, k.body, k.message_id FROM b JOIN idempotency_keys k"
    " ON k.scope = b.key_scope AND k.key = b.key_key WHERE k.expires_at > b.now), "
    "eps AS MATERIALIZED ("
    f" SELECT e.id, e.app_id, e.event_types, e.channels, e.ordered, {_EXACT} AS exact"
    " FROM unnest($9::text[]) AS a(id) CROSS JOIN LATERAL ("
    "  SELECT * FROM endpoints WHERE app_id = a.id AND NOT disabled) e), "
    "fb AS MATERIALIZED ("
    " SELECT ARRAY(SELECT DISTINCT app_id FROM eps WHERE NOT eps.exact) AS apps), "
    "ins AS ("
    " INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, expunged,"
    " created_at, payload_sha256, payload_expires_at)"
    " SELECT b.id, b.app_id, b.event_type, b.event_id, b.channels, b.payload, false,"
    " b.created_at, b.payload_sha256, b.payload_expires_at FROM b, fb"
    " WHERE b.app_id <> ALL(fb.apps)"
    " AND b.app_id = ANY(ARRAY(SELECT id FROM applications WHERE id = ANY($9::text[])))"
    " AND NOT EXISTS (SELECT 1 FROM seen WHERE seen.ord = b.ord)"
    " ORDER BY b.ord"
    " ON CONFLICT ON CONSTRAINT uq_messages_app_event_id DO NOTHING"
    " RETURNING id, app_id, event_type, channels), "
    "keys AS ("
    " INSERT INTO idempotency_keys (scope, key, message_id, expires_at)"
    " SELECT b.key_scope, b.key_key, b.id, b.key_expires_at"
    " FROM ins JOIN b ON b.id = ins.id WHERE b.key_key IS NOT NULL"
    " ORDER BY b.key_scope, b.key_key"
    f" ON CONFLICT (scope, key) DO UPDATE SET {KEY_UPDATE}), "
    "dl AS ("
    f" INSERT INTO {_DELIVERY_COLUMNS}"
    f" SELECT ins.app_id, ins.id, eps.id, 0, 0, 0, {_due_unless('eps.ordered')}, {DB_NOW}, b.now"
    " FROM ins JOIN b ON b.id = ins.id JOIN eps ON eps.app_id = ins.app_id"
    " WHERE "
    + _match(
        "ins.event_type",
        "ARRAY(SELECT jsonb_array_elements_text(ins.channels::jsonb))",
    )
    + f" ORDER BY ins.id, eps.id RETURNING message_id, {_PARKED_ENDPOINT}), "
    "dc AS (SELECT message_id, count(*) AS n FROM dl GROUP BY message_id), "
    f"pk AS MATERIALIZED (SELECT {_PARKED}) "
    "SELECT b.app_id = ANY(fb.apps) AS fallback, ins.id IS NOT NULL AS inserted,"
    " coalesce(dc.n, 0) AS deliveries, seen.ord IS NOT NULL AS replayed,"
    " seen.status AS replay_status, seen.body AS replay_body,"
    " seen.message_id AS replay_message_id, pk.parked"
    " FROM b CROSS JOIN fb CROSS JOIN pk LEFT JOIN ins ON ins.id = b.id"
    " LEFT JOIN dc ON dc.message_id = b.id"
    " LEFT JOIN seen ON seen.ord = b.ord"
    " ORDER BY b.ord"
)
# Taken before MESSAGE_CREATE_MANY, in its transaction, for the batch's idempotency keys ($1,
# sorted by the caller: two batches take shared keys in one order and cannot deadlock). A
# send of one of these keys by another process waits until this transaction ends; its
# statement then starts after our commit, and its snapshot (READ COMMITTED) sees our answer.
IDEMPOTENCY_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k"
)
# The same for explicit endpoints (test events): $9 endpoint ids, filters ignored.
MESSAGE_CREATE_FOR = (
    "WITH ins AS ("
    " INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, expunged,"
    f" created_at, payload_sha256, payload_expires_at) VALUES ({_MESSAGE_ROW})"
    " ON CONFLICT ON CONSTRAINT uq_messages_app_event_id DO NOTHING"
    " RETURNING id), "
    "dl AS ("
    f" INSERT INTO {_DELIVERY_COLUMNS}"
    f" SELECT $2, ins.id, e.id, 0, 0, 0, {_due_unless('e.ordered')}, {DB_NOW}, $8::bigint"
    " FROM ins, endpoints e"
    " WHERE e.app_id = $2 AND NOT e.disabled AND e.id = ANY($9::text[]) ORDER BY e.id"
    f" RETURNING {_PARKED_ENDPOINT}) "
    f"SELECT false AS fallback, {_CREATED}"
)
# The join drops endpoints deleted since they were read.
DELIVERIES_INSERT = (
    "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger,"
    " due_at, next_attempt_at, updated_at)"
    f" SELECT $1, $2, e.id, 0, 0, 0, {_due_unless('e.ordered')}, {DB_NOW}, $4"
    f" FROM endpoints e WHERE e.id = ANY($3::text[]) RETURNING {_PARKED_ENDPOINT}"
)
MESSAGE_GET = "SELECT * FROM messages WHERE app_id = $1 AND (id = $2 OR event_id = $2) LIMIT 1"
MESSAGES_LIST = f"SELECT {message_head('messages')} FROM messages"
PAYLOADS = "SELECT id, payload FROM messages WHERE id = ANY($1::text[])"
MESSAGE_EXPUNGE = (
    "UPDATE messages SET payload = $3, expunged = true, payload_expires_at = NULL"
    " WHERE app_id = $1 AND id = $2"
)

# -- the delivery queue ---------------------------------------------------------------------
# Due times and lease expiry are on the database's clock (ms), so that workers and APIs on
# hosts whose clocks disagree agree on them: a host ahead cannot take in-flight deliveries
# whose lease has not expired, a host behind does not wait for due ones. The callers' now_ms
# stays what they record (updated_at), and translates their times to and from the database's
# (a retry's due time, the next due time). `Clocked` has these statements on either clock.

# A statement's plan is cached for the life of its connection. One planned while the tables
# were nearly empty (a new database, before autovacuum first analyzes them) would join a batch
# of ids to `deliveries` or `messages` by hashing a sequential scan of the whole table, and
# keep doing so on every claim and every batch of results as the tables grow. So the hot
# statements also name the batch's keys as `= ANY(array)` on the primary key, a lookup the
# planner takes on any statistics (tests/postgres/test_postgres_plans.py checks the plans).

# A claim reads each endpoint's queue, not the due backlog (domain.scheduling;
# docs/decisions/0023-per-endpoint-claims.md). CLAIM_HEADS: the endpoints with due rows, their
# oldest due time, and whether they are disabled: a loose index scan of
# ix_deliveries_endpoint_due, one probe per endpoint with a queued row ($1 now).
_HEADS = (
    "WITH RECURSIVE ep AS ("
    " (SELECT endpoint_id, due_at FROM deliveries WHERE due_at IS NOT NULL"
    " ORDER BY endpoint_id, due_at LIMIT 1)"
    " UNION ALL"
    " SELECT n.endpoint_id, n.due_at FROM ep CROSS JOIN LATERAL ("
    "  SELECT endpoint_id, due_at FROM deliveries"
    "  WHERE due_at IS NOT NULL AND endpoint_id > ep.endpoint_id"
    "  ORDER BY endpoint_id, due_at LIMIT 1) n) "
)
CLAIM_HEADS = (
    f"{_HEADS}SELECT ep.endpoint_id, ep.due_at, e.disabled, e.throttle_rate, e.throttle_at,"
    f" {DB_NOW}::bigint AS now"
    f" FROM ep JOIN endpoints e ON e.id = ep.endpoint_id WHERE ep.due_at <= {DB_NOW}"
)
# $1 now, $2/$3 the shares (endpoint ids, how many rows each), $4 lease ms, $5 lease token,
# $6 delivery ids never to take (the claimer's own, still in flight), $7 the endpoints whose
# rows are canceled (disabled since they were queued). Each share takes the oldest due rows of
# its endpoint that no other claim has locked. Each endpoint and message is read once, however
# many of the claimed deliveries share it. The caller orders the rows (domain.scheduling).
# Throttled shares (domain.throttle): $8 their endpoints, $9 the throttle_at each had when the
# heads were read, $10 the base of its slots, $11 the length of a slot (ms). Such a share takes
# rows only if its endpoint's pace is still as read (no other claim took its slots since) and
# no other claim holds it (`thr`), and moves the pace past the rows taken (`pace`: the step of
# domain.throttle.advance).
_CLAIM = (
    "WITH thr AS MATERIALIZED ("
    " SELECT e.id FROM endpoints e JOIN unnest($8::text[], $9::float8[]) AS p(id, seen)"
    " ON e.id = p.id WHERE e.throttle_at IS NOT DISTINCT FROM p.seen"
    " FOR NO KEY UPDATE OF e SKIP LOCKED), "
    "taken AS MATERIALIZED ("
    " SELECT d.id, d.due_at, d.endpoint_id, d.message_id"
    " FROM unnest($2::text[], $3::int[]) AS share(endpoint_id, take) CROSS JOIN LATERAL ("
    "  SELECT id, due_at, endpoint_id, message_id FROM deliveries"
    f"  WHERE endpoint_id = share.endpoint_id AND due_at <= {DB_NOW}"
    "  AND id <> ALL($6::bigint[])"
    "  AND (share.endpoint_id <> ALL($8::text[])"
    "   OR EXISTS (SELECT 1 FROM thr WHERE thr.id = share.endpoint_id))"
    "  ORDER BY due_at LIMIT share.take FOR UPDATE SKIP LOCKED) d), "
    "pace AS ("
    " UPDATE endpoints e SET throttle_at = p.base + n.taken * p.step"
    " FROM unnest($8::text[], $10::float8[], $11::float8[]) AS p(id, base, step),"
    " (SELECT endpoint_id, count(*) AS taken FROM taken GROUP BY endpoint_id) n"
    " WHERE e.id = p.id AND n.endpoint_id = p.id AND e.id IN (SELECT id FROM thr)), "
    "ep AS MATERIALIZED ("
    " SELECT id, url, headers, keys, signature_scheme, signature_header, retry_schedule,"
    " ordered FROM endpoints WHERE id = ANY($2::text[]) AND id <> ALL($7::text[])), "
    "msg AS MATERIALIZED ("
    " SELECT id, event_type, payload, created_at FROM messages"
    " WHERE id = ANY(ARRAY(SELECT message_id FROM taken WHERE endpoint_id <> ALL($7::text[])))), "
    "upd AS ("
    " UPDATE deliveries d SET"
    " status = CASE WHEN d.endpoint_id = ANY($7::text[]) THEN 4 ELSE 1 END,"
    f" due_at = CASE WHEN d.endpoint_id = ANY($7::text[]) THEN NULL ELSE {DB_NOW} + $4::bigint END,"
    " lease = CASE WHEN d.endpoint_id = ANY($7::text[]) THEN NULL ELSE $5::text END,"
    " updated_at = $1"
    " WHERE d.id = ANY(ARRAY(SELECT id FROM taken))"
    " RETURNING d.id, d.app_id, d.message_id, d.endpoint_id, d.attempts, d.trigger, d.status) "
    "{log}SELECT upd.id, upd.app_id, upd.message_id, upd.endpoint_id, upd.attempts, upd.trigger,"
    " ep.url, ep.headers, ep.keys, ep.signature_scheme, ep.signature_header, ep.retry_schedule,"
    " ep.ordered, msg.event_type, msg.payload, msg.created_at AS msg_created_at, taken.due_at"
    " FROM upd JOIN taken ON taken.id = upd.id JOIN ep ON ep.id = upd.endpoint_id"
    " JOIN msg ON msg.id = upd.message_id"
    " WHERE upd.status = 1 "
    "ORDER BY taken.due_at, upd.id"
)
# A claim that cancels ($7 not empty) logs each cancel for the stats (domain.stats.Canceled);
# a claim that cancels nothing runs without this part.
CLAIM_CANCELING = _CLAIM.replace(
    "{log}",
    ", log AS (INSERT INTO stats_cancellations (canceled_at, app_id, endpoint_id, event_type)"
    " SELECT $1, u.app_id, u.endpoint_id, m.event_type FROM upd u"
    " JOIN messages m ON m.id = u.message_id WHERE u.status = 4) ",
)
CLAIM = _CLAIM.replace("{log}", "")

# finish_attempts. The attempts are inserted first; an attempt id already present means the
# batch was written before (a retry after a lost commit acknowledgement), so its delivery and
# endpoint are left alone: writing a batch twice changes nothing. Attempts of a message or an
# endpoint deleted meanwhile are dropped with them.
_ATT_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "text",
    "smallint",
    "smallint",
    "int",
    "text",
    "int",
    "text",
    "bigint",
)
# The last column (headers, migration 0023) is the statements' last parameter, $20, so that
# the others kept their numbers.
assert len(_ATT_TYPES) + 1 == len(ATTEMPT_COLUMNS) and ATTEMPT_COLUMNS[-1] == "headers"
_ATT_CTE = (
    "att AS ("
    f" INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)})"
    " SELECT a.* FROM unnest("
    + ", ".join(f"${i}::{t}[]" for i, t in enumerate(_ATT_TYPES, 1))
    + f", $20::text[]) AS a({', '.join(ATTEMPT_COLUMNS)})"
    " WHERE EXISTS (SELECT 1 FROM messages m WHERE m.id = a.message_id AND m.id = ANY($3))"
    " AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = a.endpoint_id AND e.id = ANY($4))"
    " ON CONFLICT (id) DO NOTHING"
    " RETURNING id, endpoint_id)"
)
# $13 now, $14.. delivery id, lease, status, attempts, next_attempt_at, due_at (per result).
# Only a result whose lease is held changes its delivery (`del` returns their attempt ids, and
# each one's time, status code and place in the batch) and its endpoint's health; the others
# are stale.
_DEL_CTE = (
    "del AS ("
    " UPDATE deliveries d SET status = r.status, attempts = r.attempts,"
    f" next_attempt_at = r.next_at - $13 + {DB_NOW}, due_at = r.due - $13 + {DB_NOW},"
    " lease = NULL, trigger = 0, updated_at = $13"
    " FROM unnest($14::bigint[], $15::text[], $16::smallint[], $17::int[], $18::bigint[],"
    " $19::bigint[], $1::text[], $12::bigint[], $8::int[]) WITH ORDINALITY"
    " AS r(id, lease, status, attempts, next_at, due, attempt_id, at, code, i)"
    " WHERE d.id = r.id AND d.id = ANY($14) AND d.lease = r.lease"
    " AND r.attempt_id IN (SELECT id FROM att)"
    " RETURNING d.endpoint_id, r.attempt_id, r.at, r.code, r.i)"
)


# An endpoint's run of successes in a batch (domain.health.succeeded, which
# tests/contract/test_endpoint_health.py holds this to): ends its streak and records its last
# success whose lease was held (the last in batch order of its rows in `del`), writing the row
# only when that record changes (at most once a second for a healthy endpoint, as on SQLite).
# ``only``: which rows of `del` are successes of endpoints with only successes in the batch.
def _successes_ctes(only: str) -> str:
    return (
        "ok AS ("
        " SELECT DISTINCT ON (endpoint_id) endpoint_id AS id, at, code FROM del"
        f" WHERE {only} ORDER BY endpoint_id, i DESC), "
        "rst AS ("
        " UPDATE endpoints e SET consecutive_failures = 0, first_failure_at = NULL,"
        " last_success_at = ok.at, last_status_code = ok.code"
        " FROM ok WHERE e.id = ok.id AND e.id = ANY($4::text[])"
        " AND (e.consecutive_failures > 0 OR e.last_success_at IS NULL"
        f" OR ok.at - e.last_success_at >= {SUCCESS_REFRESH_MS}"
        " OR e.last_status_code IS DISTINCT FROM ok.code)"
        " RETURNING 1)"
    )


# Every result succeeded: one statement.
FINISH_SUCCESSES = (
    f"WITH {_ATT_CTE}, {_DEL_CTE}, {_successes_ctes('true')} "
    "SELECT (SELECT count(*) FROM del) AS updated, (SELECT count(*) FROM rst) AS reset"
)
# Some failed: the successes of endpoints without a failure in the batch are written as above;
# the endpoints with one ($21) are locked (in id order, so concurrent batches cannot deadlock
# on them) and read. Their health is then replayed result by result by domain.health, as on
# SQLite, and written by ENDPOINT_HEALTH_UPDATE in the same transaction.
FINISH_WITH_FAILURES = (
    f"WITH {_ATT_CTE}, {_DEL_CTE}, {_successes_ctes('endpoint_id <> ALL($21::text[])')}, "
    "lk AS ("
    f" SELECT id, {', '.join(HEALTH_FIELDS)} FROM endpoints"
    " WHERE id = ANY($21::text[])"
    " ORDER BY id FOR NO KEY UPDATE), "
    "s AS (SELECT (SELECT count(*) FROM del) AS updated,"
    " ARRAY(SELECT attempt_id FROM del) AS finished, (SELECT count(*) FROM rst) AS reset) "
    "SELECT s.updated, s.finished, lk.* FROM s LEFT JOIN lk ON true"
)
_HEALTH_TYPES = ("int", "bigint", "bool", "text", "bigint", "bigint", "bigint", "int")
assert len(_HEALTH_TYPES) == len(HEALTH_FIELDS)
ENDPOINT_HEALTH_UPDATE = (
    "UPDATE endpoints e SET "
    + ", ".join(f"{c} = x.{c}" for c in HEALTH_FIELDS)
    + " FROM unnest($1::text[], "
    + ", ".join(f"${i}::{t}[]" for i, t in enumerate(_HEALTH_TYPES, 2))
    + f") AS x(id, {', '.join(HEALTH_FIELDS)}) WHERE e.id = x.id"
)

# $1 now, $2 delivery ids, $3 leases.
RELEASE = (
    f"UPDATE deliveries d SET status = 0, due_at = {DB_NOW}, lease = NULL, updated_at = $1"
    " FROM unnest($2::bigint[], $3::text[]) AS x(id, lease)"
    " WHERE d.id = x.id AND d.id = ANY($2) AND d.lease = x.lease"
)
# A batch of recover: $1 now, $2 app, $3 endpoint, $4 the batch's size, $5 the message ids to
# look at (at or after), $6 before (NULL: any), $7 after this one (the previous batch's last;
# NULL: none). It walks the endpoint's deliveries in message order (ix_deliveries_endpoint), so
# a delivery that fails again meanwhile is not queued twice by one recover.
RECOVER = (
    "WITH batch AS ("
    " SELECT id, message_id FROM deliveries"
    " WHERE endpoint_id = $3 AND app_id = $2 AND status IN (3, 4) AND message_id >= $5"
    " AND ($6::text IS NULL OR message_id < $6) AND ($7::text IS NULL OR message_id > $7)"
    " ORDER BY message_id LIMIT $4), "
    "upd AS ("
    " UPDATE deliveries d SET status = 0, attempts = 0, trigger = 0,"
    f" due_at = {_due_unless('(SELECT ordered FROM endpoints WHERE id = $3)')},"
    f" next_attempt_at = {DB_NOW}, lease = NULL, updated_at = $1"
    " FROM batch WHERE d.id = batch.id AND d.status IN (3, 4) RETURNING d.due_at) "
    "SELECT (SELECT count(*) FROM upd) AS recovered, (SELECT count(*) FROM batch) AS scanned,"
    " (SELECT max(message_id) FROM batch) AS last,"
    " EXISTS (SELECT 1 FROM upd WHERE due_at IS NULL) AS parked"
)

# The heartbeat: $1 lease ms, $2 delivery ids, $3 leases (and $4 now, on the callers' clock).
# Rows locked meanwhile are skipped, not waited for: a result being written (it ends the
# lease), or another worker claiming a lease that expired (it is lost already).
RENEW = (
    f"UPDATE deliveries d SET due_at = {DB_NOW} + $1::bigint FROM ("
    " SELECT h.id FROM unnest($2::bigint[], $3::text[]) AS x(id, lease)"
    " JOIN deliveries h ON h.id = x.id AND h.lease = x.lease WHERE h.id = ANY($2)"
    " FOR UPDATE OF h SKIP LOCKED) AS held"
    " WHERE d.id = held.id AND d.id = ANY($2)"
)
# $1 app, $2 message, $3 endpoint, $4 now. Inserts nothing unless both belong to the app.
RESEND = (
    "INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger,"
    " due_at, next_attempt_at, updated_at)"
    f" SELECT m.app_id, m.id, e.id, 0, 0, 1, {_due_unless('e.ordered')}, {DB_NOW}, $4"
    " FROM messages m, endpoints e"
    " WHERE m.id = $2 AND m.app_id = $1 AND e.id = $3 AND e.app_id = $1 AND NOT e.deleted"
    " ON CONFLICT (message_id, endpoint_id) DO UPDATE SET status = 0, trigger = 1,"
    " due_at = excluded.due_at, next_attempt_at = excluded.next_attempt_at, lease = NULL,"
    " updated_at = excluded.updated_at RETURNING due_at IS NULL AS parked"
)
RESEND_MISSING = (
    "SELECT EXISTS (SELECT 1 FROM messages WHERE id = $2 AND app_id = $1) AS message,"
    " EXISTS (SELECT 1 FROM endpoints WHERE id = $3 AND app_id = $1 AND NOT deleted)"
    " AS endpoint"
)
DELIVERY_GET = "SELECT * FROM deliveries WHERE message_id = $1 AND endpoint_id = $2"
# $1 now; the oldest due time on the caller's clock.
QUEUE_DEPTH = (
    f"SELECT count(*) FILTER (WHERE due_at <= {DB_NOW}) AS due,"
    f" min(due_at) FILTER (WHERE due_at <= {DB_NOW}) - {DB_NOW} + $1::bigint AS oldest,"
    f" count(*) FILTER (WHERE due_at > {DB_NOW} AND status = 0)"
    " + (SELECT count(*) FROM deliveries WHERE status = 0 AND due_at IS NULL) AS scheduled "
    "FROM deliveries WHERE due_at IS NOT NULL"
)
# The oldest of the endpoints' heads (there is no global due index: decision 0023).
# An endpoint's pace and its oldest pending due time, on the due times' clock
# (domain.throttle.PaceState).
ENDPOINT_PACE = (
    "SELECT e.throttle_rate, e.throttle_at, (SELECT due_at FROM deliveries"
    " WHERE endpoint_id = e.id AND due_at IS NOT NULL AND status = 0 ORDER BY due_at LIMIT 1)"
    f" AS oldest_due, {DB_NOW}::bigint AS now FROM endpoints e WHERE e.id = $1"
)
# A throttled endpoint's head is due no sooner than its next slot (domain.throttle).
_NEXT = (
    "ceil(min(greatest(ep.due_at, coalesce(e.throttle_at + "
    + gather_sql("e.throttle_rate", "greatest")
    + ", 0))){to_caller})::bigint"
    " FROM ep JOIN endpoints e ON e.id = ep.endpoint_id"
)
NEXT_DUE = f"{_HEADS}SELECT {_NEXT.format(to_caller='')}"
# On the caller's clock ($1 its now).
NEXT_DUE_FOR = f"{_HEADS}SELECT {_NEXT.format(to_caller=f' - {DB_NOW} + $1::bigint')}"


# -- ordered endpoints (domain.ordering; docs/decisions/0031-ordered-delivery.md) -------------
# Settling takes the endpoints' locks first, in id order (two settles cannot deadlock), in a
# statement of its own: the statements after it see every create and finish committed before
# the lock was granted (READ COMMITTED takes a snapshot per statement), so a create's parked
# row and a finish's departed head can never both be missed. Only ordered endpoints (and ones
# just switched off) are ever settled: unordered endpoints' hot paths take no such lock.
ORDER_LOCK = (
    "SELECT id, ordered FROM endpoints WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE"
)
# Each endpoint's queue as domain.ordering.QueueState reads it ($1 endpoints, $2 whether each
# is ordered): an unordered one's live rows are not read (a big backlog would be counted).
ORDER_STATE = (
    "SELECT e.id, e.ordered, l.sending, l.pending, l.oldest,"
    " (SELECT min(p.id) FROM deliveries p WHERE p.endpoint_id = e.id AND p.status = 0"
    " AND p.due_at IS NULL) AS oldest_parked"
    " FROM unnest($1::text[], $2::bool[]) AS e(id, ordered) CROSS JOIN LATERAL ("
    "  SELECT count(*) FILTER (WHERE status = 1) AS sending,"
    "  count(*) FILTER (WHERE status = 0) AS pending, min(id) FILTER (WHERE status = 0) AS oldest"
    "  FROM deliveries WHERE endpoint_id = e.id AND due_at IS NOT NULL AND e.ordered) l"
)
# $1 now, $2 endpoint, $3 the row to keep (NULL: none).
ORDER_PARK = (
    "UPDATE deliveries SET due_at = NULL, updated_at = $1 WHERE endpoint_id = $2"
    " AND status = 0 AND due_at IS NOT NULL AND id IS DISTINCT FROM $3::bigint"
)
# $1 now, $2 rows to make due / $3 endpoints all of whose parked rows become due.
ORDER_PROMOTE = (
    f"UPDATE deliveries SET due_at = {DB_NOW}, next_attempt_at = {DB_NOW}, updated_at = $1"
    " WHERE status = 0 AND due_at IS NULL AND (id = ANY($2::bigint[])"
    " OR endpoint_id = ANY($3::text[]))"
)
# A claim's disabled endpoints' parked rows, canceled with their heads: $1 now, $2 endpoints.
ORDER_CANCEL_PARKED = (
    "WITH c AS (UPDATE deliveries SET status = 4, updated_at = $1"
    " WHERE endpoint_id = ANY($2::text[]) AND status = 0 AND due_at IS NULL"
    " RETURNING app_id, endpoint_id, message_id)"
    " INSERT INTO stats_cancellations (canceled_at, app_id, endpoint_id, event_type)"
    " SELECT $1, c.app_id, c.endpoint_id, m.event_type"
    " FROM c JOIN messages m ON m.id = c.message_id"
)
# A late attempt's (application, hour), to be rolled up again (domain.stats.late_hours).
STATS_DIRTY = (
    "INSERT INTO stats_dirty (app_id, hour, gen)"
    " SELECT a, h, 1 FROM unnest($1::text[], $2::bigint[]) AS t(a, h)"
    " ON CONFLICT (app_id, hour) DO UPDATE SET gen = stats_dirty.gen + 1"
)
# The sweep: endpoints with parked rows (a loose index scan of ix_deliveries_parked, one probe
# per such endpoint) that are no longer ordered or have no live row.
ORDER_UNSETTLED = (
    "WITH RECURSIVE p AS ("
    " (SELECT endpoint_id FROM deliveries WHERE status = 0 AND due_at IS NULL"
    " ORDER BY endpoint_id LIMIT 1)"
    " UNION ALL"
    " SELECT n.endpoint_id FROM p CROSS JOIN LATERAL ("
    "  SELECT endpoint_id FROM deliveries WHERE status = 0 AND due_at IS NULL"
    "  AND endpoint_id > p.endpoint_id ORDER BY endpoint_id LIMIT 1) n) "
    "SELECT p.endpoint_id FROM p JOIN endpoints e ON e.id = p.endpoint_id WHERE NOT e.ordered"
    " OR NOT EXISTS (SELECT 1 FROM deliveries l WHERE l.endpoint_id = p.endpoint_id"
    " AND l.due_at IS NOT NULL)"
)


# -- attempts and delivery views ------------------------------------------------------------
ATTEMPT_GET = "SELECT * FROM attempts WHERE app_id = $1 AND message_id = $2 AND id = $3"
ATTEMPT_EXPUNGE = (
    "UPDATE attempts SET response = '' WHERE app_id = $1 AND message_id = $2 AND id = $3"
)
_DELIVERY_AS_D = (
    "d.id AS d_id, d.app_id AS d_app_id, d.message_id AS d_message_id, "
    "d.endpoint_id AS d_endpoint_id, d.status AS d_status, d.attempts AS d_attempts, "
    "d.next_attempt_at AS d_next_attempt_at, d.updated_at AS d_updated_at"
)
DELIVERIES_OF_MESSAGE = (
    f"SELECT e.*, {_DELIVERY_AS_D} FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
)
DELIVERIES_OF_ENDPOINT = (  # the messages without their payloads (store.paging.content_rows)
    f"SELECT {message_head('m')}, {_DELIVERY_AS_D} "
    "FROM deliveries d JOIN messages m ON m.id = d.message_id"
)

# -- worker options ------------------------------------------------------------------------
# delivery_options: the few rows with an option set (a partial index serves the endpoints').
OPTION_TYPE_SCHEDULES = (
    "SELECT name, retry_schedule FROM event_types WHERE retry_schedule IS NOT NULL"
)
OPTION_TIMEOUTS = "SELECT id, timeout_s FROM endpoints WHERE timeout_s IS NOT NULL"
OPTION_TRACEPARENT = "SELECT id, send_traceparent FROM endpoints WHERE send_traceparent IS NOT NULL"
