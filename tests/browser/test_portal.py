"""The app portal in a real browser: opened from an app-portal-access URL, an endpoint
created at a loopback receiver, a test event delivered (attempt 200) and resent (a second
attempt), the secret rotated, and another application's resources out of reach."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import expect
from standardwebhooks import Webhook

from hookpost.domain.inputs import NewEndpoint
from tests.browser.conftest import (
    EVENT_TYPE,
    EXAMPLE,
    Stack,
    axe_violations,
    screenshot,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]


async def open_portal(stack: Stack, app_id: str, context: Any) -> Any:
    page = await context.new_page()
    await page.goto(await stack.portal_url(app_id))
    await expect(page).to_have_url(re.compile(r"/app-portal/endpoints$"))
    return page


async def test_portal_endpoint_test_event_resend_and_rotate(stack: Stack) -> None:
    services = stack.hp.services
    app = await services.apps.create("Acme Portal")
    context = await stack.context()
    page = await open_portal(stack, app.id, context)

    # The key left the address bar; the session is an HttpOnly, SameSite cookie.
    assert "key=" not in page.url
    (cookie,) = [c for c in await context.cookies() if c["name"] == "hookpost_portal"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/app-portal"
    await expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    await screenshot(page, "portal-endpoints-empty")

    # Create an endpoint at the loopback receiver, subscribed from the catalog.
    await page.get_by_role("link", name="Add endpoint").first.click()
    await expect(page.get_by_text("An invoice was paid in full")).to_be_visible()
    target = stack.receiver.url("/portal-hook")
    await page.get_by_label("URL").fill(target)
    await page.get_by_label(re.compile(EVENT_TYPE)).check()
    await screenshot(page, "portal-endpoint-form")
    await page.get_by_role("button", name="Create endpoint").click()
    await expect(page.get_by_role("heading", name=re.compile("Endpoint"))).to_contain_text(target)
    endpoint_id = await page.locator("#endpoint-id").inner_text()
    endpoint = await services.endpoints.get(app.id, endpoint_id)
    assert endpoint.url == target and endpoint.event_types == [EVENT_TYPE]

    # Reveal the secret (to verify the signature independently below).
    await page.get_by_role("button", name="Reveal secret").click()
    secret = await page.locator("#secret-value").inner_text()
    assert secret == endpoint.secret

    # Send the example event: its attempt appears with 200.
    await page.get_by_role("button", name="Send example").click()
    await expect(page).to_have_url(re.compile(r"/app-portal/messages/msg_"))
    attempts = page.locator("tr.attempt")
    await expect(attempts).to_have_count(1, timeout=15_000)
    await expect(attempts.first.locator(".http-status")).to_have_text("200")
    await expect(page.locator("pre.payload")).to_contain_text('"invoiceId": "inv_123"')
    sha = await page.locator("#payload-sha").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    (received,) = stack.receiver.on("/portal-hook")
    assert json.loads(received.body) == EXAMPLE
    Webhook(secret).verify(received.body, received.headers)  # standardwebhooks' own check
    await screenshot(page, "portal-message")

    # Resend: a second attempt, also 200, and a second request at the receiver.
    await page.get_by_role("button", name="Resend").click()
    await expect(attempts).to_have_count(2, timeout=15_000)
    await expect(attempts.locator(".http-status")).to_have_text(["200", "200"])
    await stack.receiver.wait_for(2, "/portal-hook")

    # Rotate the secret: the page shows the new one, and it is the endpoint's key now.
    await page.goto(f"/app-portal/endpoints/{endpoint_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Rotate secret").click()
    await expect(page.locator("#secret")).to_contain_text("New secret")
    rotated = await page.locator("#secret-value").inner_text()
    assert rotated != secret
    assert (await services.endpoints.get(app.id, endpoint_id)).secret == rotated
    await screenshot(page, "portal-endpoint")

    assert context.csp_violations == []
    await context.close()


async def test_another_apps_resources_are_out_of_reach(stack: Stack) -> None:
    services = stack.hp.services
    mine = await services.apps.create("Mine")
    theirs = await services.apps.create("Theirs")
    their_endpoint = await services.endpoints.create(
        theirs.id, NewEndpoint(url=stack.receiver.url("/theirs"))
    )
    their_message = (await services.messages.send(theirs.id, EVENT_TYPE, {"secret": 1})).message
    my_endpoint = await services.endpoints.create(
        mine.id, NewEndpoint(url=stack.receiver.url("/mine"))
    )
    my_message = (await services.messages.send(mine.id, EVENT_TYPE, {"n": 1})).message

    context = await stack.context()
    page = await open_portal(stack, mine.id, context)
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf

    for path in (
        f"/app-portal/endpoints/{their_endpoint.id}",
        f"/app-portal/endpoints/{their_endpoint.id}/secret",
        f"/app-portal/endpoints/{their_endpoint.id}/attempts",
        f"/app-portal/messages/{their_message.id}",
        f"/app-portal/messages/{their_message.id}/attempts",
    ):
        answer = await page.goto(path)
        assert answer is not None and answer.status == 404, path
        assert their_endpoint.url not in await page.content()

    http = context.request  # the page's cookies, with a valid CSRF token of this session
    for path, form in (
        (f"/app-portal/endpoints/{their_endpoint.id}/delete", {}),
        (f"/app-portal/endpoints/{their_endpoint.id}/disable", {}),
        (f"/app-portal/endpoints/{their_endpoint.id}/rotate", {}),
        (f"/app-portal/endpoints/{their_endpoint.id}/test", {"eventType": EVENT_TYPE}),
        (f"/app-portal/messages/{their_message.id}/resend", {"endpointId": their_endpoint.id}),
        (f"/app-portal/messages/{my_message.id}/resend", {"endpointId": their_endpoint.id}),
    ):
        answer = await http.post(path, form={"csrf": csrf, **form})
        assert answer.status == 404, (path, answer.status)
    still = await services.endpoints.get(theirs.id, their_endpoint.id)
    assert not still.disabled and still.secret == their_endpoint.secret

    # The portal's session is no admin's: the dashboard sends it to the login page.
    await page.goto(f"/dashboard/apps/{theirs.id}/endpoints")
    await expect(page).to_have_url(re.compile(r"/dashboard/login$"))

    # A form without this session's CSRF token is refused.
    answer = await http.post(f"/app-portal/endpoints/{my_endpoint.id}/disable", form={})
    assert answer.status == 403
    assert not (await services.endpoints.get(mine.id, my_endpoint.id)).disabled

    # Logout ends the session: the views answer the "session ended" page.
    await page.goto("/app-portal/endpoints")
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="You are logged out")).to_be_visible()
    answer = await page.goto("/app-portal/endpoints")
    assert answer is not None and answer.status == 401
    await context.close()


async def test_portal_pages_pass_axe(stack: Stack) -> None:
    services = stack.hp.services
    app = await services.apps.create("Accessible")
    endpoint = await services.endpoints.create(
        app.id, NewEndpoint(url=stack.receiver.url("/axe"), event_types=[EVENT_TYPE])
    )
    message = (await services.messages.send(app.id, EVENT_TYPE, EXAMPLE)).message
    await stack.receiver.wait_for(1, "/axe")
    context = await stack.context(bypass_csp=True)  # axe is injected as an inline script
    page = await open_portal(stack, app.id, context)
    for name, path in (
        ("portal-endpoints", "/app-portal/endpoints"),
        ("portal-endpoint-detail", f"/app-portal/endpoints/{endpoint.id}"),
        ("portal-new-endpoint", "/app-portal/endpoints/new"),
        ("portal-messages", "/app-portal/messages"),
        ("portal-message-detail", f"/app-portal/messages/{message.id}"),
        ("portal-catalog", "/app-portal/catalog"),
        ("portal-stats", "/app-portal/stats"),
    ):
        await page.goto(path)
        await expect(page.locator("main h1")).to_be_visible()
        assert await axe_violations(page) == [], name
        await screenshot(page, name)
    await context.close()


async def test_portal_edits_disables_enables_and_deletes_an_endpoint(stack: Stack) -> None:
    services = stack.hp.services
    app = await services.apps.create("Editor")
    endpoint = await services.endpoints.create(
        app.id, NewEndpoint(url=stack.receiver.url("/edit-me"))
    )
    await services.messages.send(app.id, EVENT_TYPE, EXAMPLE, channels=["eu"])
    await services.messages.send(app.id, "user.created", {"id": 1})
    context = await stack.context()
    page = await open_portal(stack, app.id, context)

    # Edit: channels, a rate limit, ordered delivery, a retry policy and a header.
    await page.goto(f"/app-portal/endpoints/{endpoint.id}/edit")
    await page.get_by_label("Channels").fill("eu, us")
    await page.get_by_label("Rate limit").fill("5")
    await page.get_by_label("Ordered delivery").check()
    await page.get_by_label("Retry policy").fill('{"schedule": [1, 2]}')
    await page.get_by_label("Custom headers").fill("X-Team: billing")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Endpoint saved")
    saved = await services.endpoints.get(app.id, endpoint.id)
    assert saved.channels == ["eu", "us"] and saved.throttle_rate == 5 and saved.ordered
    assert saved.headers == {"X-Team": "billing"} and saved.retry_schedule == [1, 2]

    # A bad field comes back named, with what was typed.
    await page.goto(f"/app-portal/endpoints/{endpoint.id}/edit")
    await page.get_by_label("Rate limit").fill("fast")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("alert")).to_contain_text("throttleRate")
    await expect(page.get_by_label("Rate limit")).to_have_value("fast")

    await page.goto(f"/app-portal/endpoints/{endpoint.id}")
    await page.get_by_role("button", name="Disable").click()
    await expect(page.get_by_role("status")).to_contain_text("Endpoint disabled")
    assert (await services.endpoints.get(app.id, endpoint.id)).disabled
    await page.get_by_role("button", name="Enable").click()
    await expect(page.get_by_role("status")).to_contain_text("Endpoint enabled")
    assert not (await services.endpoints.get(app.id, endpoint.id)).disabled

    # The message log, filtered by event type and by channel.
    await page.goto("/app-portal/messages")
    await expect(page.locator("main tbody tr")).to_have_count(2)
    await page.get_by_label("Event type").select_option(EVENT_TYPE)
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("main tbody tr")).to_have_count(1)
    await expect(page.locator("main tbody")).to_contain_text(EVENT_TYPE)
    await page.goto("/app-portal/messages?channel=us")
    await expect(page.get_by_text("No message matches.")).to_be_visible()

    await page.goto(f"/app-portal/endpoints/{endpoint.id}")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete").click()
    await expect(page).to_have_url(re.compile(r"/app-portal/endpoints$"))
    await expect(page.get_by_text("No endpoint yet.")).to_be_visible()
    assert context.csp_violations == []
    await context.close()
