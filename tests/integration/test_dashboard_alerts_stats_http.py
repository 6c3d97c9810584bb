"""The portal's alert-rules and stats pages over plain HTTP, on SQLite and PostgreSQL (the
browser tests are tests/browser/test_portal_alerts_and_stats.py): a form post without
script (every field sent), errors naming their field, escaping, another application's rule
out of reach, and the stats page's figures equal to the stats service's."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from hookpost.dashboard import series
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import PageRequest
from hookpost.domain.stats import StatsReport
from hookpost.store.secretbox import generate_main_key
from tests.integration.test_api_harness import ApiServer, running_api
from tests.support.polling import eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.timeout(60)

# What a browser without script sends from the new-rule form: every field, blanks included.
BLANK = {
    k: ""
    for k in (
        "name metric field pushedMetric operator value windowSeconds baselineWindows "
        "sensitivity schedule cooldownSeconds evaluateEverySeconds eventTypes payloadFilter"
    ).split()
}


@asynccontextmanager
async def portal(api: ApiServer, app_id: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client holding a portal session of ``app_id``, and the session's CSRF token."""
    async with api.http() as admin:
        answer = await admin.post(f"/api/v1/auth/app-portal-access/{app_id}", json={})
        key = answer.json()["url"].split("#key=", 1)[1]
    async with httpx.AsyncClient(base_url=api.url, timeout=10.0) as http:
        assert (await http.post("/app-portal/session", json={"key": key})).status_code == 200
        page = await http.get("/app-portal/alerts/new")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        yield http, csrf[1]


async def test_alert_rule_pages_without_script(any_database_url: str) -> None:
    async with running_api(any_database_url, main_key=generate_main_key()) as api:
        services = api.hp.services
        app = await services.apps.create("Rules")
        other = await services.apps.create("Other")
        theirs, _ = await services.alert_rules.create(
            other.id, {"name": "theirs", "kind": "digest", "schedule": "1h"}
        )
        async with portal(api, app.id) as (http, csrf):
            form = {**BLANK, "csrf": csrf, "kind": "threshold", "metric": "count"}
            form |= {"name": "<b>big</b>", "operator": "gt", "enabled": "on"}
            form |= {"value": "5", "windowSeconds": "60"}

            # The domain's error comes back next to its field, the values as typed.
            bad = await http.post("/app-portal/alerts/new", data={**form, "windowSeconds": "0"})
            assert bad.status_code == 422
            assert re.search(
                r'id="f-windowSeconds"[^>]*value="0"[^>]*aria-invalid="true"', bad.text
            )
            assert 'id="err-windowSeconds">windowSeconds: must be an integer from 1' in bad.text
            assert "&lt;b&gt;big&lt;/b&gt;" in bad.text and "<b>big</b>" not in bad.text

            created = await http.post("/app-portal/alerts/new", data=form)
            assert created.status_code == 303, created.text
            ((rule, _),) = (await services.alert_rules.list(app.id, PageRequest(10))).items
            assert rule.name == "<b>big</b>" and rule.spec["value"] == 5
            assert rule.spec["cooldownSeconds"] == 0  # left blank: the default
            listed = await http.get("/app-portal/alerts")
            assert (
                "&lt;b&gt;big&lt;/b&gt;" in listed.text and "count &gt; 5 over 60 s" in listed.text
            )
            assert "theirs" not in listed.text

            # Without script the threshold's fields are sent with another kind: named.
            edit = f"/app-portal/alerts/{rule.id}/edit"
            page = await http.post(edit, data={**form, "kind": "anomaly"})
            assert page.status_code == 422
            assert 'id="err-operator">operator: applies to threshold rules only' in page.text
            digest = {**form, "kind": "digest", "operator": "", "value": ""}
            digest |= {"metric": "", "windowSeconds": "", "schedule": "15m"}
            assert (await http.post(edit, data=digest)).status_code == 303
            rule, _ = await services.alert_rules.get(app.id, rule.id)
            assert rule.kind == "digest" and rule.spec["schedule"] == "15m"
            assert "windowSeconds" not in rule.spec and "value" not in rule.spec

            # Another application's rule: 404 to read, change or delete.
            for path in (f"/alerts/{theirs.id}/edit", f"/alerts/{theirs.id}/delete"):
                answer = await http.post(f"/app-portal{path}", data={**digest, "csrf": csrf})
                assert answer.status_code == 404, path
            assert (await http.get(f"/app-portal/alerts/{theirs.id}/edit")).status_code == 404
            assert (await services.alert_rules.get(other.id, theirs.id))[0] == theirs

            answer = await http.post(f"/app-portal/alerts/{rule.id}/delete", data={"csrf": csrf})
            assert answer.status_code == 303
            assert (await services.alert_rules.list(app.id, PageRequest(10))).items == []


async def test_the_stats_page_shows_the_stats_services_figures(
    any_database_url: str, receiver: Receiver
) -> None:
    async with running_api(any_database_url, main_key=generate_main_key()) as api:
        services = api.hp.services
        app = await services.apps.create("Stats")
        await services.endpoints.create(app.id, NewEndpoint(url=receiver.url("/ok")))
        for n in range(4):
            await services.messages.send(app.id, "order.placed", {"n": n})

        async def report() -> StatsReport:
            return (await series.app_stats(services, app.id)).report

        await eventually(report, lambda r: r.succeeded == 4, timeout=20)
        async with portal(api, app.id) as (http, _):
            for range_key in series.RANGES:
                page = await http.get(f"/app-portal/stats?range={range_key}")
                assert page.status_code == 200, range_key
                assert '<span class="value" id="stats-succeeded">4</span>' in page.text
                assert '<span class="value" id="stats-rate">100.0 %</span>' in page.text
                assert "<code>order.placed</code>" in page.text
            live = await http.get("/app-portal/stats/live?range=24h")
            assert live.status_code == 200 and 'id="stats-succeeded">4<' in live.text
            assert (await http.get("/app-portal/stats?range=2h")).status_code == 422
