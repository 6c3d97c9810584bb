"""PostgreSQL's Alerts: alert rules and their evaluator's cursor, lease, buckets and samples.
An application's run is claimed with ``FOR UPDATE SKIP LOCKED``; its writes first update the
cursor's row where the lease still holds (that row's lock keeps a new claimer out until the
commit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hookpost.domain import ids
from hookpost.domain.alert_eval import Aggregate
from hookpost.domain.alerts import AlertRule, RuleState
from hookpost.domain.errors import NotFound
from hookpost.domain.models import DeliveryStatus, Page, PageRequest
from hookpost.store.alert_rows import (
    aggregate_from_row,
    aggregate_values,
    dumps,
    failing,
    rule_from_row,
    state_text,
)
from hookpost.store.paging import finish_page
from hookpost.store.postgres.core import Args, PostgresBase, command_status_count, paged_query
from hookpost.store.postgres.errors import wrap_exceptions

RULE_INSERT = (
    "INSERT INTO alert_rules (id, app_id, spec, state, created_at, updated_at)"
    " SELECT $1, id, $2, $3, $4, $5 FROM applications WHERE id = $6 AND NOT deleted"
)
CURSOR_DUE = (
    "INSERT INTO alert_cursors (app_id, cursor, next_run_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (app_id) DO UPDATE SET next_run_at = excluded.next_run_at"
)
RULE_GET = "SELECT * FROM alert_rules WHERE app_id = $1 AND id = $2"
RULE_UPDATE = (
    "UPDATE alert_rules SET spec = $1, state = $2, updated_at = $3 WHERE app_id = $4 AND id = $5"
)
RULE_STATE = "UPDATE alert_rules SET state = $1 WHERE app_id = $2 AND id = $3"
RULE_DELETE = "DELETE FROM alert_rules WHERE app_id = $1 AND id = $2"
SAMPLE_INSERT = "INSERT INTO alert_samples (app_id, name, at, value) VALUES ($1, $2, $3, $4)"
CLAIM = (
    "UPDATE alert_cursors SET lease = $1, lease_until = $2::bigint + $3::bigint,"
    " next_run_at = $2::bigint + $3::bigint WHERE app_id = (SELECT c.app_id FROM alert_cursors c"
    " JOIN applications a ON a.id = c.app_id WHERE c.next_run_at <= $2"
    " AND (c.lease_until IS NULL OR c.lease_until <= $2) AND NOT a.deleted"
    " ORDER BY c.next_run_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED) RETURNING app_id, cursor"
)
# next_run_at follows lease_until, as the claim set it, unless a rule written during the run
# made it due sooner (then FINISH makes the next run due at once).
RENEW = (
    "UPDATE alert_cursors SET lease_until = $3::bigint + $4::bigint, next_run_at = CASE WHEN"
    " next_run_at = lease_until THEN $3::bigint + $4::bigint ELSE next_run_at END"
    " WHERE app_id = $1 AND lease = $2"
)
MOVE_CURSOR = "UPDATE alert_cursors SET cursor = $1 WHERE app_id = $2 AND lease = $3"
BUCKETS_OF = (
    "SELECT b.* FROM alert_buckets b JOIN unnest($2::text[], $3::bigint[]) AS k(series, start)"
    " ON b.series = k.series AND b.start = k.start WHERE b.app_id = $1"
)
BUCKET_PUT = (
    "INSERT INTO alert_buckets (app_id, series, start, count, total, low, high, cells)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (app_id, series, start) DO UPDATE"
    " SET count = excluded.count, total = excluded.total, low = excluded.low,"
    " high = excluded.high, cells = excluded.cells"
)
BUCKETS = "SELECT * FROM alert_buckets WHERE app_id = $1 AND start >= $2 AND series = ANY($3)"
SCAN = (
    "SELECT id, event_type, {payload} AS payload, created_at FROM messages"
    " WHERE app_id = $1 AND id > $2 AND id < $3 ORDER BY id LIMIT $4"
)
SAMPLES = "SELECT at, value FROM alert_samples WHERE app_id = $1 AND name = $2 AND at > $3"
BY_TYPE = (
    "SELECT event_type, count(*) AS n FROM messages WHERE app_id = $1 AND id >= $2 AND id < $3"
    " AND event_type NOT LIKE 'hookpost.%' GROUP BY event_type"
)
FAILED = (
    "SELECT d.endpoint_id, count(*) AS n FROM messages m JOIN deliveries d"
    " ON d.message_id = m.id WHERE m.app_id = $1 AND m.id >= $2 AND m.id < $3"
    f" AND d.status = {int(DeliveryStatus.FAILED)} GROUP BY d.endpoint_id"
)
FINISH = (
    "UPDATE alert_cursors SET lease = NULL, lease_until = NULL,"
    " next_run_at = CASE WHEN next_run_at <= $1 THEN $1 ELSE $2 END"
    " WHERE app_id = $3 AND lease = $4"
)
RELEASE = (
    "UPDATE alert_cursors SET lease = NULL, lease_until = NULL, next_run_at = 0"
    " WHERE app_id = $1 AND lease = $2"
)


class PostgresAlerts(PostgresBase):
    @wrap_exceptions
    async def create_alert_rule(self, rule: AlertRule, state: RuleState, now_ms: int) -> None:
        async with self._db.acquire() as conn, conn.transaction():
            done = await conn.execute(
                RULE_INSERT,
                rule.id,
                dumps(rule.spec),
                state_text(state),
                rule.created_at,
                rule.updated_at,
                rule.app_id,
            )
            if not command_status_count(done):
                raise NotFound("application", rule.app_id)
            await conn.execute(CURSOR_DUE, rule.app_id, ids.id_floor(ids.MESSAGE, now_ms), now_ms)

    @wrap_exceptions
    async def get_alert_rule(self, app_id: str, rule_id: str) -> tuple[AlertRule, RuleState]:
        row = await self._db.fetchrow(RULE_GET, app_id, rule_id)
        if row is None:
            raise NotFound("alert rule", rule_id)
        return rule_from_row(row)

    @wrap_exceptions
    async def list_alert_rules(
        self, app_id: str, page: PageRequest
    ) -> Page[tuple[AlertRule, RuleState]]:
        args = Args([app_id])
        query = paged_query("SELECT * FROM alert_rules", ["app_id = $1"], args, page, "id")
        rows = await self._db.fetch(query, *args)
        return finish_page([rule_from_row(r) for r in rows], page)

    @wrap_exceptions
    async def alert_rules_of(self, app_id: str) -> list[tuple[AlertRule, RuleState]]:
        rows = await self._db.fetch(
            "SELECT * FROM alert_rules WHERE app_id = $1 ORDER BY id", app_id
        )
        return [rule_from_row(r) for r in rows]

    @wrap_exceptions
    async def update_alert_rule(self, rule: AlertRule, state: RuleState, now_ms: int) -> None:
        async with self._db.acquire() as conn, conn.transaction():
            done = await conn.execute(
                RULE_UPDATE,
                dumps(rule.spec),
                state_text(state),
                rule.updated_at,
                rule.app_id,
                rule.id,
            )
            if not command_status_count(done):
                raise NotFound("alert rule", rule.id)
            await conn.execute(CURSOR_DUE, rule.app_id, ids.id_floor(ids.MESSAGE, now_ms), now_ms)

    @wrap_exceptions
    async def delete_alert_rule(self, app_id: str, rule_id: str) -> None:
        if not command_status_count(await self._db.execute(RULE_DELETE, app_id, rule_id)):
            raise NotFound("alert rule", rule_id)

    @wrap_exceptions
    async def add_alert_samples(
        self, app_id: str, samples: Sequence[tuple[str, int, float]]
    ) -> None:
        rows = [(app_id, name, at, value) for name, at, value in samples]
        await self._db.executemany(SAMPLE_INSERT, rows)

    @wrap_exceptions
    async def claim_alert_app(
        self, lease: str, lease_ms: int, now_ms: int
    ) -> tuple[str, str] | None:
        row = await self._db.fetchrow(CLAIM, lease, now_ms, lease_ms)
        return None if row is None else (row["app_id"], row["cursor"])

    @wrap_exceptions
    async def renew_alert_app(self, app_id: str, lease: str, lease_ms: int, now_ms: int) -> bool:
        return (
            command_status_count(await self._db.execute(RENEW, app_id, lease, now_ms, lease_ms)) > 0
        )

    @wrap_exceptions
    async def scan_messages(
        self, app_id: str, after_id: str, before_id: str, limit: int, with_payload: bool
    ) -> list[tuple[str, str, bytes, int]]:
        query = SCAN.format(payload="payload" if with_payload else "''::bytea")
        rows = await self._db.fetch(query, app_id, after_id, before_id, limit)
        return [(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    @wrap_exceptions
    async def add_alert_buckets(
        self,
        app_id: str,
        lease: str,
        cursor: str,
        deltas: Mapping[tuple[str, int], Aggregate],
    ) -> bool:
        async with self._db.acquire() as conn, conn.transaction():
            if not command_status_count(await conn.execute(MOVE_CURSOR, cursor, app_id, lease)):
                return False
            keys = list(deltas)
            found = {
                (r["series"], r["start"]): aggregate_from_row(r)
                for r in await conn.fetch(
                    BUCKETS_OF, app_id, [k[0] for k in keys], [k[1] for k in keys]
                )
            }
            rows = []
            for key, delta in deltas.items():
                merged = found.get(key) or Aggregate()
                merged.merge(delta)
                rows.append((app_id, key[0], key[1], *aggregate_values(merged)))
            await conn.executemany(BUCKET_PUT, rows)
        return True

    @wrap_exceptions
    async def alert_buckets(
        self, app_id: str, series: Sequence[str], since_ms: int
    ) -> dict[str, dict[int, Aggregate]]:
        found: dict[str, dict[int, Aggregate]] = {s: {} for s in series}
        for r in await self._db.fetch(BUCKETS, app_id, since_ms, list(series)):
            found[r["series"]][r["start"]] = aggregate_from_row(r)
        return found

    @wrap_exceptions
    async def alert_samples(self, app_id: str, name: str, since_ms: int) -> list[tuple[int, float]]:
        return [(r[0], r[1]) for r in await self._db.fetch(SAMPLES, app_id, name, since_ms)]

    @wrap_exceptions
    async def alert_digest(
        self, app_id: str, since_ms: int, until_ms: int
    ) -> tuple[dict[str, int], list[tuple[str, int]]]:
        lo, hi = ids.id_floor(ids.MESSAGE, since_ms), ids.id_floor(ids.MESSAGE, until_ms)
        by_type = {r[0]: r[1] for r in await self._db.fetch(BY_TYPE, app_id, lo, hi)}
        failed = await self._db.fetch(FAILED, app_id, lo, hi)
        return by_type, failing([(r[0], r[1]) for r in failed])

    @wrap_exceptions
    async def finish_alert_run(
        self,
        app_id: str,
        lease: str,
        states: Mapping[str, RuleState],
        next_run_at: int,
        now_ms: int,
        keep_series: Mapping[str, int],
        keep_samples: Mapping[str, int],
    ) -> bool:
        async with self._db.acquire() as conn, conn.transaction():
            done = await conn.execute(FINISH, now_ms, next_run_at, app_id, lease)
            if not command_status_count(done):
                return False
            await conn.executemany(
                RULE_STATE, [(state_text(s), app_id, r) for r, s in states.items()]
            )
            for table, key, time, keep in (
                ("alert_buckets", "series", "start", keep_series),
                ("alert_samples", "name", "at", keep_samples),
            ):
                await conn.execute(
                    f"DELETE FROM {table} WHERE app_id = $1 AND NOT ({key} = ANY($2::text[]))",
                    app_id,
                    list(keep),
                )
                await conn.executemany(
                    f"DELETE FROM {table} WHERE app_id = $1 AND {key} = $2 AND {time} < $3",
                    [(app_id, name, cutoff) for name, cutoff in keep.items()],
                )
        return True

    @wrap_exceptions
    async def release_alert_app(self, app_id: str, lease: str) -> None:
        await self._db.execute(RELEASE, app_id, lease)
