"""The portal's alert rules (create, list, edit, delete; errors next to their field; another
application's rule out of reach; every app's rules in the dashboard's Operations) and its
stats page (charts over time and by event type, read from the stats service), in a real
browser."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import expect

from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import PageRequest
from tests.browser.conftest import EVENT_TYPE, EXAMPLE, Stack, axe_violations, screenshot
from tests.browser.test_dashboard import log_in
from tests.browser.test_portal import open_portal
from tests.support.polling import eventually
from tests.support.receiver import always

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

OTHER_TYPE = "user.created"


async def test_portal_creates_lists_edits_and_deletes_an_alert_rule(stack: Stack) -> None:
    services = stack.hp.services
    app = await services.apps.create("Alerting")
    context = await stack.context()
    page = await open_portal(stack, app.id, context)
    await page.get_by_role("link", name="Alert rules").click()
    await expect(page.get_by_role("heading", name="Alert rules")).to_be_visible()
    await expect(page.get_by_text("No alert rule yet.")).to_be_visible()

    # The form shows the chosen kind's fields only (threshold by default).
    await page.get_by_role("link", name="Add alert rule").click()
    await expect(page.get_by_role("group", name="Threshold")).to_be_visible()
    await expect(page.get_by_role("group", name="Anomaly")).to_be_hidden()
    await expect(page.get_by_role("group", name="Digest")).to_be_hidden()
    await page.get_by_label("Name", exact=True).fill("Too many invoices")
    await page.locator("#f-eventTypes").fill(EVENT_TYPE)
    await page.get_by_label("Threshold value").fill("10")
    await page.locator("#f-cooldownSeconds").fill("600")

    # A field the domain requires, left out: the error is next to it, what was typed stays.
    await page.get_by_role("button", name="Create alert rule").click()
    await expect(page.locator("#err-windowSeconds")).to_have_text("windowSeconds: is required")
    await expect(page.get_by_label("Window (seconds)")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("alert")).to_contain_text("not saved")
    await expect(page.get_by_label("Threshold value")).to_have_value("10")
    await expect(page.locator("#f-eventTypes")).to_have_value(EVENT_TYPE)
    # A field the form cannot read: named too.
    await page.get_by_label("Window (seconds)").fill("300")
    await page.get_by_label("Threshold value").fill("lots")
    await page.get_by_role("button", name="Create alert rule").click()
    await expect(page.locator("#err-value")).to_have_text("value: must be a number")
    await expect(page.locator("#err-windowSeconds")).to_have_count(0)
    await screenshot(page, "portal-alert-rule-form-error")
    await page.get_by_label("Threshold value").fill("10")
    await page.get_by_role("button", name="Create alert rule").click()

    await expect(page.get_by_role("status")).to_contain_text("Alert rule created")
    rows = page.locator("tr.alert-rule")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("count > 10 over 300 s")
    await expect(rows.first).to_contain_text(EVENT_TYPE)
    await expect(rows.first).to_contain_text("600 s")
    ((rule, _),) = (await services.alert_rules.list(app.id, PageRequest(limit=10))).items
    assert rule.kind == "threshold" and rule.spec["operator"] == "gt"
    assert rule.spec["value"] == 10 and rule.spec["windowSeconds"] == 300
    assert rule.spec["eventTypes"] == [EVENT_TYPE] and rule.spec["cooldownSeconds"] == 600
    await screenshot(page, "portal-alert-rules")

    # Edit: a new threshold and a payload filter.
    await rows.first.get_by_role("link", name="Too many invoices").click()
    await expect(page.get_by_label("Threshold value")).to_have_value("10")
    await page.get_by_label("Threshold value").fill("20")
    await page.get_by_label(re.compile("Payload filter")).fill('{"currency": "EUR"}')
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Alert rule saved")
    await expect(rows.first).to_contain_text("count > 20 over 300 s")
    rule, _ = await services.alert_rules.get(app.id, rule.id)
    assert rule.spec["value"] == 20 and rule.spec["payloadFilter"] == {"currency": "EUR"}

    # Edit: another kind. The threshold's fields are hidden and not sent.
    await rows.first.get_by_role("link", name="Too many invoices").click()
    await page.get_by_label(re.compile("^Kind")).select_option("anomaly")
    await expect(page.get_by_role("group", name="Threshold")).to_be_hidden()
    await page.get_by_label(re.compile("^Sensitivity")).fill("4")
    await screenshot(page, "portal-alert-rule-form")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Alert rule saved")
    await expect(rows.first).to_contain_text("anomaly score ≥ 4")
    rule, _ = await services.alert_rules.get(app.id, rule.id)
    assert rule.kind == "anomaly" and rule.spec["sensitivity"] == 4
    assert "operator" not in rule.spec and "value" not in rule.spec
    assert rule.spec["baselineWindows"] == 6  # the default
    assert rule.spec["payloadFilter"] == {"currency": "EUR"}  # kept

    # Delete.
    page.once("dialog", lambda dialog: dialog.accept())
    await rows.first.get_by_role("button", name="Delete Too many invoices").click()
    await expect(page.get_by_role("status")).to_contain_text("Alert rule deleted")
    await expect(rows).to_have_count(0)
    assert (await services.alert_rules.list(app.id, PageRequest(limit=10))).items == []
    assert context.csp_violations == []
    await context.close()


async def test_another_apps_alert_rule_is_out_of_reach(stack: Stack) -> None:
    services = stack.hp.services
    mine = await services.apps.create("Rules mine")
    theirs = await services.apps.create("Rules theirs")
    spec = {"name": "Theirs only", "kind": "threshold", "windowSeconds": 60}
    their_rule, _ = await services.alert_rules.create(
        theirs.id, {**spec, "operator": "gt", "value": 1}
    )
    context = await stack.context()
    page = await open_portal(stack, mine.id, context)
    await page.goto("/app-portal/alerts")
    await expect(page.get_by_text("No alert rule yet.")).to_be_visible()
    answer = await page.goto(f"/app-portal/alerts/{their_rule.id}/edit")
    assert answer is not None and answer.status == 404
    assert "Theirs only" not in await page.content()

    await page.goto("/app-portal/alerts/new")
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    http = context.request  # the page's cookies, with a valid CSRF token of this session
    form = {"csrf": csrf, **spec, "name": "Hijacked", "operator": "gt", "value": "1"}
    form["windowSeconds"] = "60"
    for path, body in (
        (f"/app-portal/alerts/{their_rule.id}/edit", form),
        (f"/app-portal/alerts/{their_rule.id}/delete", {"csrf": csrf}),
    ):
        answer = await http.post(path, form=body)
        assert answer.status == 404, (path, answer.status)
    still, _ = await services.alert_rules.get(theirs.id, their_rule.id)
    assert still.name == "Theirs only" and still.spec == their_rule.spec
    assert (await services.alert_rules.list(mine.id, PageRequest(limit=10))).items == []
    await context.close()

    # The operator sees every application's rules under Operations, and opens one.
    context = await stack.context()
    page = await log_in(stack, context)
    await page.get_by_role("link", name="Operations").click()
    row = page.locator(f"tr.alert-rule[data-rule-id='{their_rule.id}']")
    await expect(row).to_contain_text("Rules theirs")
    await expect(row).to_contain_text("count > 1 over 60 s")
    await screenshot(page, "dashboard-operations-alert-rules")
    await row.get_by_role("link", name="Theirs only").click()
    await expect(page).to_have_url(
        re.compile(rf"/dashboard/apps/{theirs.id}/alerts/{their_rule.id}/edit$")
    )
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Theirs only")
    assert context.csp_violations == []
    await context.close()


async def test_portal_stats_charts_come_from_the_stats_service(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = stack.hp.services
    app = await services.apps.create("Charted")
    await services.endpoints.create(
        app.id, NewEndpoint(url=stack.receiver.url("/stats-ok"), event_types=[EVENT_TYPE])
    )
    stack.receiver.respond("/stats-fail", always(500))
    await services.endpoints.create(
        app.id, NewEndpoint(url=stack.receiver.url("/stats-fail"), event_types=[OTHER_TYPE])
    )
    for _ in range(3):
        await services.messages.send(app.id, EVENT_TYPE, EXAMPLE)
    await services.messages.send(app.id, OTHER_TYPE, {"id": 1})

    from hookpost.dashboard import series

    async def settled() -> Any:
        return (await series.app_stats(services, app.id)).report

    report = await eventually(
        settled,
        lambda r: r.succeeded == 3 and r.failed >= 1 and r.pending + r.sending == 0,
        timeout=20,
    )

    # The page reads the stats service, never the attempt log.
    stats_calls: list[str] = []
    scans: list[str] = []
    app_stats, list_attempts = services.stats.app, services.messages.list_attempts

    async def stats_spy(app_id: str, *args: Any) -> Any:
        stats_calls.append(app_id)
        return await app_stats(app_id, *args)

    async def scan_spy(app_id: str, *args: Any, **kwargs: Any) -> Any:
        scans.append(app_id)
        return await list_attempts(app_id, *args, **kwargs)

    monkeypatch.setattr(services.stats, "app", stats_spy)
    monkeypatch.setattr(services.messages, "list_attempts", scan_spy)

    context = await stack.context()
    page = await open_portal(stack, app.id, context)
    await page.get_by_role("link", name="Stats", exact=True).click()
    await expect(page.get_by_role("heading", name="Stats")).to_be_visible()
    assert stats_calls and set(stats_calls) == {app.id} and app.id not in scans

    await expect(page.locator("#stats-succeeded")).to_have_text(str(report.succeeded))
    await expect(page.locator("#stats-failed")).to_have_text(str(report.failed))
    rate = 100 * report.succeeded / (report.succeeded + report.failed)
    await expect(page.locator("#stats-rate")).to_have_text(f"{rate:.1f} %")
    for chart in ("#chart-attempts", "#chart-rate", "#chart-latency"):
        await expect(page.locator(chart)).to_have_attribute("data-rendered", "true")
        await expect(page.locator(f"{chart} canvas")).to_be_visible()
    data = json.loads(await page.locator("#app-chart").get_attribute("data-json") or "{}")
    assert len(data["t"]) == 24  # the last 24 hours, by hour
    assert sum(data["ok"]) == 3 and sum(data["failed"]) == report.failed
    assert data["p50"][-1] is not None and data["p95"][-1] >= data["p50"][-1]
    assert data["rate"][-1] == round(rate, 1)

    by_type = page.locator("#stats-by-type tbody tr")
    await expect(by_type).to_have_count(2)
    await expect(by_type.filter(has_text=EVENT_TYPE)).to_contain_text("100.0 %")
    await expect(by_type.filter(has_text=OTHER_TYPE)).to_contain_text("0.0 %")
    await screenshot(page, "portal-stats")

    # Another range: by day, the same totals.
    await page.get_by_role("link", name="Last 7 days").click()
    await expect(page.get_by_role("link", name="Last 7 days")).to_have_attribute(
        "aria-current", "page"
    )
    await expect(page.locator("#stats-succeeded")).to_have_text(str(report.succeeded))
    await expect(page.locator("#chart-latency")).to_have_attribute("data-rendered", "true")
    data = json.loads(await page.locator("#app-chart").get_attribute("data-json") or "{}")
    assert len(data["t"]) == 7
    answer = await page.goto("/app-portal/stats?range=1y")
    assert answer is not None and answer.status == 422
    await expect(page.get_by_role("main")).to_contain_text("range")
    assert app.id not in scans
    assert context.csp_violations == []
    await context.close()


async def test_alert_and_stats_pages_pass_axe(stack: Stack) -> None:
    services = stack.hp.services
    app = await services.apps.create("Accessible rules")
    await services.alert_rules.create(
        app.id,
        {"name": "Digest", "kind": "digest", "schedule": "1h", "eventTypes": [EVENT_TYPE]},
    )
    context = await stack.context(bypass_csp=True)  # axe is injected as an inline script
    page = await open_portal(stack, app.id, context)
    for path in ("/app-portal/alerts", "/app-portal/alerts/new", "/app-portal/stats"):
        await page.goto(path)
        await expect(page.locator("main h1")).to_be_visible()
        assert await axe_violations(page) == [], path
    await page.goto("/app-portal/alerts/new")
    await page.get_by_role("button", name="Create alert rule").click()  # no name: an error
    await expect(page.locator("#err-name")).to_be_visible()
    assert await axe_violations(page) == [], "the form with an error"
    await context.close()
