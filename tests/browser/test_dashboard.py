"""The operator dashboard in a real browser: admin-token login, the overview's charts drawn
from real deliveries (and redrawn by polling), an application opened into the portal's
views, a token revoked, logout; /docs from local assets only; axe on the main pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from hookpost.domain.inputs import NewEndpoint
from tests.browser.conftest import EVENT_TYPE, Stack, axe_violations, screenshot
from tests.support.polling import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]


async def log_in(stack: Stack, context: Any) -> Any:
    page = await context.new_page()
    await page.goto("/dashboard")
    await expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    await page.get_by_label("Admin token").fill(stack.admin_token)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    return page


async def deliver(stack: Stack, count: int, path: str) -> str:
    services = stack.hp.services
    app = await services.apps.create(f"Busy {path}")
    endpoint = await services.endpoints.create(app.id, NewEndpoint(url=stack.receiver.url(path)))
    for n in range(count):
        await services.messages.send(app.id, EVENT_TYPE, {"n": n})

    async def succeeded() -> int:
        return int((await services.endpoints.stats(app.id, endpoint.id)).success)

    await eventually(succeeded, lambda done: done == count, timeout=15)  # attempts recorded
    return app.id


async def test_login_overview_charts_and_revoke_a_token(stack: Stack) -> None:
    app_id = await deliver(stack, 5, "/busy")
    context = await stack.context()
    # A wrong token is refused.
    page = await context.new_page()
    await page.goto("/dashboard/login")
    await page.get_by_label("Admin token").fill("not-a-token")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not a valid admin token")

    page = await log_in(stack, context)
    (cookie,) = [c for c in await context.cookies() if c["name"] == "hookpost_dashboard"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] != stack.admin_token  # a session token of its own

    # The charts are drawn, with the deliveries above in them.
    throughput = page.locator("#chart-throughput")
    await expect(throughput).to_have_attribute("data-rendered", "true")
    await expect(throughput.locator("canvas")).to_be_visible()
    assert float(await throughput.get_attribute("data-points") or 0) >= 10  # 5 msgs + 5 sent
    await expect(page.locator("#chart-rate canvas")).to_be_visible()
    await screenshot(page, "dashboard-overview")

    # More deliveries flow; the polled overview redraws with them (no reload).
    await deliver(stack, 3, "/busy-later")
    await expect(throughput).to_have_attribute(
        "data-points", re.compile(r"^(1[6-9]|[2-9]\d|\d{3,})"), timeout=15_000
    )

    # Search the applications and open one into the portal's views.
    await page.get_by_role("link", name="Applications").click()
    await page.get_by_label("Name, uid or id").fill("busy /busy")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name="Busy /busy", exact=True).click()
    await expect(page).to_have_url(re.compile(rf"/dashboard/apps/{app_id}/endpoints$"))
    await expect(page.get_by_role("link", name=stack.receiver.url("/busy"))).to_be_visible()
    await screenshot(page, "dashboard-app-endpoints")

    # Revoke a token: its row goes, and the API refuses it at once.
    plaintext, record = await stack.hp.services.tokens.create(name="ci-token-to-revoke")
    async with httpx.AsyncClient(base_url=stack.url) as http:
        headers = {"Authorization": f"Bearer {plaintext}"}
        assert (await http.get("/api/v1/app", headers=headers)).status_code == 200
        await page.get_by_role("link", name="Tokens").click()
        row = page.locator(f"tr[data-token-id='{record.id}']")
        await expect(row).to_contain_text("ci-token-to-revoke")
        await screenshot(page, "dashboard-tokens")
        page.once("dialog", lambda dialog: dialog.accept())
        await row.get_by_role("button", name=re.compile("Revoke")).click()
        await expect(row).to_have_count(0)
        assert (await http.get("/api/v1/app", headers=headers)).status_code == 401
    assert await stack.hp.services.tokens.authenticate(plaintext) is None

    # Logout revokes the session's token.
    session = cookie["value"]
    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    assert await stack.hp.services.tokens.authenticate(session) is None
    assert context.csp_violations == []
    await context.close()


async def test_docs_load_from_local_assets_only(stack: Stack) -> None:
    context = await stack.context()
    page = await context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("hookpost")
    assert requested and all(url.startswith(stack.url) for url in requested), requested
    assert context.csp_violations == []
    await screenshot(page, "api-docs")
    await context.close()


async def test_dashboard_pages_pass_axe(stack: Stack) -> None:
    context = await stack.context(bypass_csp=True)  # axe is injected as an inline script
    page = await context.new_page()
    await page.goto("/dashboard/login")
    assert await axe_violations(page) == [], "login"
    await screenshot(page, "dashboard-login")
    page = await log_in(stack, context)
    for name, path in (
        ("dashboard-overview-axe", "/dashboard"),
        ("dashboard-apps", "/dashboard/apps"),
        ("dashboard-tokens-axe", "/dashboard/tokens"),
        ("dashboard-operations", "/dashboard/operations"),
    ):
        await page.goto(path)
        await expect(page.locator("main h1")).to_be_visible()
        assert await axe_violations(page) == [], name
        if name == "dashboard-operations":
            await screenshot(page, name)
    await context.close()
