"""SQLite's Alerts: alert rules and their evaluator's cursor, lease, buckets and samples. A
run's writes check its lease in the one writer's transaction (writers of every process take
turns: docs/decisions/0002)."""

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
from hookpost.store.sqlite.core import Conn, SqliteBase, paged

RULE_INSERT = (
    "INSERT INTO alert_rules (id, app_id, spec, state, created_at, updated_at)"
    " SELECT ?, id, ?, ?, ?, ? FROM applications WHERE id = ? AND NOT deleted"
)
CURSOR_DUE = (
    "INSERT INTO alert_cursors (app_id, cursor, next_run_at) VALUES (?, ?, ?)"
    " ON CONFLICT (app_id) DO UPDATE SET next_run_at = excluded.next_run_at"
)
RULE_GET = "SELECT * FROM alert_rules WHERE app_id = ? AND id = ?"
RULE_UPDATE = (
    "UPDATE alert_rules SET spec = ?, state = ?, updated_at = ? WHERE app_id = ? AND id = ?"
)
RULE_STATE = "UPDATE alert_rules SET state = ? WHERE app_id = ? AND id = ?"
RULE_DELETE = "DELETE FROM alert_rules WHERE app_id = ? AND id = ?"
SAMPLE_INSERT = "INSERT INTO alert_samples (app_id, name, at, value) VALUES (?, ?, ?, ?)"
CLAIM_NEXT = (
    "SELECT c.app_id, c.cursor FROM alert_cursors c JOIN applications a ON a.id = c.app_id"
    " WHERE c.next_run_at <= ? AND (c.lease_until IS NULL OR c.lease_until <= ?)"
    " AND NOT a.deleted ORDER BY c.next_run_at LIMIT 1"
)
CLAIM_TAKE = "UPDATE alert_cursors SET lease = ?, lease_until = ?, next_run_at = ? WHERE app_id = ?"
# next_run_at follows lease_until, as the claim set it, unless a rule written during the run
# made it due sooner (then FINISH makes the next run due at once).
RENEW = (
    "UPDATE alert_cursors SET lease_until = ?1,"
    " next_run_at = CASE WHEN next_run_at = lease_until THEN ?1 ELSE next_run_at END"
    " WHERE app_id = ?2 AND lease = ?3"
)
MOVE_CURSOR = "UPDATE alert_cursors SET cursor = ? WHERE app_id = ? AND lease = ?"
BUCKET_GET = "SELECT * FROM alert_buckets WHERE app_id = ? AND series = ? AND start = ?"
BUCKET_PUT = (
    "INSERT OR REPLACE INTO alert_buckets (app_id, series, start, count, total, low, high, cells)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SCAN = (
    "SELECT id, event_type, {payload} AS payload, created_at FROM messages"
    " WHERE app_id = ? AND id > ? AND id < ? ORDER BY id LIMIT ?"
)
SAMPLES = "SELECT at, value FROM alert_samples WHERE app_id = ? AND name = ? AND at > ?"
BY_TYPE = (
    "SELECT event_type, count(*) FROM messages WHERE app_id = ? AND id >= ? AND id < ?"
    " AND event_type NOT LIKE 'hookpost.%' GROUP BY event_type"
)
FAILED = (
    "SELECT d.endpoint_id, count(*) FROM messages m JOIN deliveries d ON d.message_id = m.id"
    f" WHERE m.app_id = ? AND m.id >= ? AND m.id < ? AND d.status = {int(DeliveryStatus.FAILED)}"
    " GROUP BY d.endpoint_id"
)
FINISH = (
    "UPDATE alert_cursors SET lease = NULL, lease_until = NULL,"
    " next_run_at = CASE WHEN next_run_at <= ? THEN ? ELSE ? END WHERE app_id = ? AND lease = ?"
)

RELEASE = (
    "UPDATE alert_cursors SET lease = NULL, lease_until = NULL, next_run_at = 0"
    " WHERE app_id = ? AND lease = ?"
)


class SqliteAlerts(SqliteBase):
    async def create_alert_rule(self, rule: AlertRule, state: RuleState, now_ms: int) -> None:
        def run(c: Conn) -> None:
            args = (rule.id, dumps(rule.spec), state_text(state), rule.created_at)
            if not c.execute(RULE_INSERT, (*args, rule.updated_at, rule.app_id)).rowcount:
                raise NotFound("application", rule.app_id)
            c.execute(CURSOR_DUE, (rule.app_id, ids.id_floor(ids.MESSAGE, now_ms), now_ms))

        await self._db.write(run)

    async def get_alert_rule(self, app_id: str, rule_id: str) -> tuple[AlertRule, RuleState]:
        row = await self._db.read(lambda c: c.execute(RULE_GET, (app_id, rule_id)).fetchone())
        if row is None:
            raise NotFound("alert rule", rule_id)
        return rule_from_row(row)

    async def list_alert_rules(
        self, app_id: str, page: PageRequest
    ) -> Page[tuple[AlertRule, RuleState]]:
        def run(c: Conn) -> Page[tuple[AlertRule, RuleState]]:
            rows = paged(c, "SELECT * FROM alert_rules", ["app_id = ?"], [app_id], page, "id")
            return finish_page([rule_from_row(r) for r in rows], page)

        return await self._db.read(run)

    async def alert_rules_of(self, app_id: str) -> list[tuple[AlertRule, RuleState]]:
        query = "SELECT * FROM alert_rules WHERE app_id = ? ORDER BY id"
        rows = await self._db.read(lambda c: c.execute(query, (app_id,)).fetchall())
        return [rule_from_row(r) for r in rows]

    async def update_alert_rule(self, rule: AlertRule, state: RuleState, now_ms: int) -> None:
        def run(c: Conn) -> None:
            args = (dumps(rule.spec), state_text(state), rule.updated_at, rule.app_id, rule.id)
            if not c.execute(RULE_UPDATE, args).rowcount:
                raise NotFound("alert rule", rule.id)
            c.execute(CURSOR_DUE, (rule.app_id, ids.id_floor(ids.MESSAGE, now_ms), now_ms))

        await self._db.write(run)

    async def delete_alert_rule(self, app_id: str, rule_id: str) -> None:
        if not await self._db.write(lambda c: c.execute(RULE_DELETE, (app_id, rule_id)).rowcount):
            raise NotFound("alert rule", rule_id)

    async def add_alert_samples(
        self, app_id: str, samples: Sequence[tuple[str, int, float]]
    ) -> None:
        rows = [(app_id, name, at, value) for name, at, value in samples]
        await self._db.write(lambda c: c.executemany(SAMPLE_INSERT, rows))

    async def claim_alert_app(
        self, lease: str, lease_ms: int, now_ms: int
    ) -> tuple[str, str] | None:
        # A read first: an idle evaluator's poll must not take the one writer's turn.
        if (
            await self._db.read(lambda c: c.execute(CLAIM_NEXT, (now_ms, now_ms)).fetchone())
            is None
        ):
            return None

        def run(c: Conn) -> tuple[str, str] | None:
            row = c.execute(CLAIM_NEXT, (now_ms, now_ms)).fetchone()
            if row is None:
                return None
            until = now_ms + lease_ms
            c.execute(CLAIM_TAKE, (lease, until, until, row[0]))
            return row[0], row[1]

        return await self._db.write(run)

    async def renew_alert_app(self, app_id: str, lease: str, lease_ms: int, now_ms: int) -> bool:
        args = (now_ms + lease_ms, app_id, lease)
        return bool(await self._db.write(lambda c: c.execute(RENEW, args).rowcount))

    async def scan_messages(
        self, app_id: str, after_id: str, before_id: str, limit: int, with_payload: bool
    ) -> list[tuple[str, str, bytes, int]]:
        query = SCAN.format(payload="payload" if with_payload else "x''")
        args = (app_id, after_id, before_id, limit)
        rows = await self._db.read(lambda c: c.execute(query, args).fetchall())
        return [(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    async def add_alert_buckets(
        self,
        app_id: str,
        lease: str,
        cursor: str,
        deltas: Mapping[tuple[str, int], Aggregate],
    ) -> bool:
        def run(c: Conn) -> bool:
            if not c.execute(MOVE_CURSOR, (cursor, app_id, lease)).rowcount:
                return False
            for (series, start), delta in deltas.items():
                row = c.execute(BUCKET_GET, (app_id, series, start)).fetchone()
                merged = Aggregate() if row is None else aggregate_from_row(row)
                merged.merge(delta)
                c.execute(BUCKET_PUT, (app_id, series, start, *aggregate_values(merged)))
            return True

        return await self._db.write(run)

    async def alert_buckets(
        self, app_id: str, series: Sequence[str], since_ms: int
    ) -> dict[str, dict[int, Aggregate]]:
        query = (
            "SELECT * FROM alert_buckets WHERE app_id = ? AND start >= ?"
            " AND series IN (SELECT value FROM json_each(?))"
        )
        args = (app_id, since_ms, dumps(list(series)))
        rows = await self._db.read(lambda c: c.execute(query, args).fetchall())
        found: dict[str, dict[int, Aggregate]] = {s: {} for s in series}
        for r in rows:
            found[r["series"]][r["start"]] = aggregate_from_row(r)
        return found

    async def alert_samples(self, app_id: str, name: str, since_ms: int) -> list[tuple[int, float]]:
        rows = await self._db.read(
            lambda c: c.execute(SAMPLES, (app_id, name, since_ms)).fetchall()
        )
        return [(r[0], r[1]) for r in rows]

    async def alert_digest(
        self, app_id: str, since_ms: int, until_ms: int
    ) -> tuple[dict[str, int], list[tuple[str, int]]]:
        bounds = (app_id, ids.id_floor(ids.MESSAGE, since_ms), ids.id_floor(ids.MESSAGE, until_ms))

        def run(c: Conn) -> tuple[dict[str, int], list[tuple[str, int]]]:
            by_type = {r[0]: r[1] for r in c.execute(BY_TYPE, bounds).fetchall()}
            return by_type, failing([(r[0], r[1]) for r in c.execute(FAILED, bounds).fetchall()])

        return await self._db.read(run)

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
        def run(c: Conn) -> bool:
            if not c.execute(FINISH, (now_ms, now_ms, next_run_at, app_id, lease)).rowcount:
                return False
            c.executemany(RULE_STATE, [(state_text(s), app_id, r) for r, s in states.items()])
            _prune(c, "alert_buckets", "series", "start", app_id, keep_series)
            _prune(c, "alert_samples", "name", "at", app_id, keep_samples)
            return True

        return await self._db.write(run)

    async def release_alert_app(self, app_id: str, lease: str) -> None:
        await self._db.write(lambda c: c.execute(RELEASE, (app_id, lease)))


def _prune(c: Conn, table: str, key: str, time: str, app_id: str, keep: Mapping[str, int]) -> None:
    c.execute(
        f"DELETE FROM {table} WHERE app_id = ? AND {key} NOT IN (SELECT value FROM json_each(?))",
        (app_id, dumps(list(keep))),
    )
    c.executemany(
        f"DELETE FROM {table} WHERE app_id = ? AND {key} = ? AND {time} < ?",
        [(app_id, name, cutoff) for name, cutoff in keep.items()],
    )
