"""The portal's message page shows each attempt's sent headers (issue 23): opened, they stay
open while the attempts fragment polls (``hx-preserve``), and a sensitive endpoint header is
named without its value."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from hookpost.domain.inputs import NewEndpoint
from tests.browser.conftest import EVENT_TYPE, EXAMPLE, Stack, screenshot

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

SECRET = "Bearer browser-headers-secret-77e1"


async def test_sent_headers_stay_open_across_polls(stack: Stack) -> None:
    services = stack.hp.services
    app = await services.apps.create("Headers")
    await services.endpoints.create(
        app.id,
        NewEndpoint(
            url=stack.receiver.url("/headers-page"),
            event_types=[EVENT_TYPE],
            headers={"X-Tenant": "acme", "Authorization": SECRET},
        ),
    )
    message = (await services.messages.send(app.id, EVENT_TYPE, EXAMPLE)).message
    await stack.receiver.wait_for(1, "/headers-page")
    context = await stack.context()
    page = await context.new_page()
    await page.goto(await stack.portal_url(app.id))
    await expect(page).to_have_url(re.compile(r"/app-portal/endpoints$"))
    await page.goto(f"/app-portal/messages/{message.id}")
    await expect(page.locator("tr.attempt")).to_have_count(1, timeout=15_000)

    details = page.locator("tr.attempt-headers details")
    await details.locator("summary").click()
    table = details.locator("table.sent-headers")
    await expect(table).to_be_visible()
    await expect(table).to_contain_text("X-Tenant")
    await expect(table).to_contain_text("webhook-signature")
    await expect(table).to_contain_text("sensitive: sent, never stored")
    for _ in range(2):  # two more polls of the fragment: still open
        async with page.expect_response(lambda r: r.url.endswith("/attempts")):
            pass
    await expect(details).to_have_attribute("open", "")
    await expect(table).to_be_visible()
    assert SECRET.split()[1] not in await page.content()
    assert context.csp_violations == []
    await screenshot(page, "portal-attempt-headers")
    await context.close()
