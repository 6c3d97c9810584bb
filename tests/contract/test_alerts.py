"""The Alerts port: rules, the per-application run claimed by one evaluator at a time under a
lease, buckets and the cursor moved together, writes refused once the lease is lost, samples
and buckets pruned, and the digest's counts. Run once per backend, through ``store``."""

from __future__ import annotations

import pytest

from hookpost.domain import ids
from hookpost.domain.alert_eval import Aggregate
from hookpost.domain.alerts import AlertRule, RuleState, validate_spec
from hookpost.domain.errors import NotFound
from hookpost.domain.models import PageRequest
from hookpost.store.base import Store

from .support import T0, app_with_endpoint, claim, fail_final, new_app, send

LEASE_MS = 15_000
SPEC = {"name": "r", "kind": "threshold", "operator": "gt", "value": 1, "windowSeconds": 60}


async def new_rule(store: Store, app_id: str, at: int = T0, **spec: object) -> AlertRule:
    rule = AlertRule(ids.new_id("alrt", at), app_id, validate_spec({**SPEC, **spec}), at, at)
    await store.create_alert_rule(rule, RuleState(next_eval_at=at), at)
    return rule


async def test_rules_are_written_read_listed_and_deleted(store: Store) -> None:
    app = await new_app(store)
    other = await new_app(store)
    rule = await new_rule(store, app.id)
    await new_rule(store, other.id)
    got, state = await store.get_alert_rule(app.id, rule.id)
    assert got == rule and state == RuleState(next_eval_at=T0)
    with pytest.raises(NotFound):
        await store.get_alert_rule(other.id, rule.id)  # another application's
    changed = AlertRule(rule.id, app.id, {**rule.spec, "value": 5}, T0, T0 + 1)
    await store.update_alert_rule(changed, RuleState(firing=True, fired=2), T0 + 1)
    got, state = await store.get_alert_rule(app.id, rule.id)
    assert got.spec["value"] == 5 and state.firing and state.fired == 2
    page = await store.list_alert_rules(app.id, PageRequest(limit=10))
    assert [r.id for r, _ in page.items] == [rule.id] and page.done
    await store.delete_alert_rule(app.id, rule.id)
    with pytest.raises(NotFound):
        await store.delete_alert_rule(app.id, rule.id)
    with pytest.raises(NotFound):
        await new_rule(store, ids.new_id(ids.APP, T0))  # no such application


async def test_one_claimer_per_application_until_its_lease_expires(store: Store) -> None:
    app = await new_app(store)
    await new_rule(store, app.id)
    assert await store.claim_alert_app("one", LEASE_MS, T0 - 1) is None  # not due yet
    first = await store.claim_alert_app("one", LEASE_MS, T0)
    assert first is not None and first[0] == app.id
    assert first[1] == ids.id_floor(ids.MESSAGE, T0)  # earlier messages are never counted
    assert await store.claim_alert_app("two", LEASE_MS, T0 + 1) is None
    # the first claimer crashed: once its lease is over, another takes the application
    second = await store.claim_alert_app("two", LEASE_MS, T0 + LEASE_MS)
    assert second == first
    # the first claimer's writes are refused now, and write nothing
    delta = {("s", T0): Aggregate(count=3)}
    assert not await store.add_alert_buckets(app.id, "one", "msg_z", delta)
    assert not await store.finish_alert_run(app.id, "one", {}, T0 + 99, T0 + 1, {}, {})
    assert await store.alert_buckets(app.id, ["s"], 0) == {"s": {}}
    assert await store.add_alert_buckets(app.id, "two", ids.id_floor(ids.MESSAGE, T0 + 5), delta)
    assert await store.finish_alert_run(app.id, "two", {}, T0 + 60_000, T0 + LEASE_MS, {"s": 0}, {})
    assert await store.claim_alert_app("three", LEASE_MS, T0 + 59_999) is None
    third = await store.claim_alert_app("three", LEASE_MS, T0 + 60_000)
    assert third == (app.id, ids.id_floor(ids.MESSAGE, T0 + 5))  # the cursor moved


async def test_a_renewed_lease_keeps_others_out_until_it_expires(store: Store) -> None:
    app = await new_app(store)
    await new_rule(store, app.id)
    assert await store.claim_alert_app("one", LEASE_MS, T0)
    assert await store.renew_alert_app(app.id, "one", LEASE_MS, T0 + 10_000)
    assert not await store.renew_alert_app(app.id, "two", LEASE_MS, T0 + 10_000)  # not its own
    assert await store.claim_alert_app("two", LEASE_MS, T0 + LEASE_MS) is None  # still held
    assert await store.claim_alert_app("two", LEASE_MS, T0 + 10_000 + LEASE_MS) is not None
    assert not await store.renew_alert_app(app.id, "one", LEASE_MS, T0 + 30_000)  # taken


async def test_a_rule_written_during_a_renewed_run_makes_the_next_run_due(store: Store) -> None:
    app = await new_app(store)
    await new_rule(store, app.id)
    assert await store.claim_alert_app("one", LEASE_MS, T0)
    await new_rule(store, app.id, at=T0 + 10)
    assert await store.renew_alert_app(app.id, "one", LEASE_MS, T0 + 10_000)
    assert await store.finish_alert_run(app.id, "one", {}, T0 + 60_000, T0 + 10_020, {}, {})
    assert await store.claim_alert_app("two", LEASE_MS, T0 + 10_020) is not None


async def test_a_rule_written_during_a_run_makes_the_next_run_due_at_once(store: Store) -> None:
    app = await new_app(store)
    await new_rule(store, app.id)
    assert await store.claim_alert_app("one", LEASE_MS, T0)
    await new_rule(store, app.id, at=T0 + 10)
    assert await store.finish_alert_run(app.id, "one", {}, T0 + 60_000, T0 + 20, {}, {})
    assert await store.claim_alert_app("two", LEASE_MS, T0 + 20) is not None


async def test_released_application_is_claimed_at_once(store: Store) -> None:
    app = await new_app(store)
    await new_rule(store, app.id)
    assert await store.claim_alert_app("one", LEASE_MS, T0)
    await store.release_alert_app(app.id, "one")
    assert await store.claim_alert_app("two", LEASE_MS, T0 + 1) is not None


async def test_buckets_merge_and_are_pruned(store: Store) -> None:
    app = await new_app(store)
    await new_rule(store, app.id)
    assert await store.claim_alert_app("l", LEASE_MS, T0)
    a = Aggregate()
    for v in (1.0, 2.0):
        a.add(v, sketch=True)
    b = Aggregate()
    b.add(10.0, sketch=True)
    assert await store.add_alert_buckets(app.id, "l", "msg_1", {("s", 1000): a, ("t", 0): b})
    assert await store.add_alert_buckets(app.id, "l", "msg_2", {("s", 1000): b, ("s", 2000): a})
    found = await store.alert_buckets(app.id, ["s", "t"], 0)
    merged = found["s"][1000]
    assert (merged.count, merged.total, merged.low, merged.high) == (3, 13.0, 1.0, 10.0)
    assert sum(merged.cells.values()) == 3 and found["s"][2000].count == 2
    assert list(found["t"]) == [0]
    assert list((await store.alert_buckets(app.id, ["s"], 1500))["s"]) == [2000]
    # series "t" is no longer read by any rule, and "s" keeps what starts at 2000 or later
    assert await store.finish_alert_run(app.id, "l", {}, T0 + 1, T0, {"s": 2000}, {})
    assert await store.alert_buckets(app.id, ["s", "t"], 0) == {
        "s": {2000: found["s"][2000]},
        "t": {},
    }


async def test_samples_are_kept_for_their_windows_only(store: Store) -> None:
    app = await new_app(store)
    await new_rule(store, app.id)
    await store.add_alert_samples(app.id, [("q", 100, 1.0), ("q", 200, 2.0), ("old", 5, 9.0)])
    assert sorted(await store.alert_samples(app.id, "q", 100)) == [(200, 2.0)]
    assert await store.claim_alert_app("l", LEASE_MS, T0)
    assert await store.finish_alert_run(app.id, "l", {}, T0 + 1, T0, {}, {"q": 150})
    assert await store.alert_samples(app.id, "q", 0) == [(200, 2.0)]
    assert await store.alert_samples(app.id, "old", 0) == []


async def test_scan_reads_new_messages_in_id_order(store: Store) -> None:
    app, _ = await app_with_endpoint(store)
    sent = [await send(store, app.id, at=T0 + i, event_type=f"t.{i}") for i in range(5)]
    rows = await store.scan_messages(
        app.id, sent[0].id, ids.id_floor(ids.MESSAGE, T0 + 4), 10, True
    )
    assert [r[0] for r in rows] == [m.id for m in sent[1:4]]
    assert rows[0][1:] == ("t.1", sent[1].payload, T0 + 1)
    bare = await store.scan_messages(app.id, "", ids.id_floor(ids.MESSAGE, T0 + 9), 2, False)
    assert [r[0] for r in bare] == [m.id for m in sent[:2]] and bare[0][2] == b""


async def test_digest_counts_types_and_failed_deliveries(store: Store) -> None:
    app, ep = await app_with_endpoint(store)
    for i, event_type in enumerate(["a", "a", "b", "hookpost.digest"]):
        await send(store, app.id, at=T0 + i, event_type=event_type)
    await send(store, app.id, at=T0 + 100, event_type="late")
    claimed = await claim(store, T0 + 100)
    for c in claimed[:2]:
        await fail_final(store, c, T0 + 100)
    by_type, failing = await store.alert_digest(app.id, T0, T0 + 100)
    assert by_type == {"a": 2, "b": 1}  # the reserved types left out, the late one too
    assert failing == [(ep.id, 2)]  # the two oldest failed; the others are still sending
