"""The portal inside another site's iframe, over HTTPS (docs/portal.md, "Embedding it in an
iframe"): hookpost serves https://127.0.0.1:P with a self-signed certificate,
``HOOKPOST_PORTAL_FRAME_ANCESTORS`` naming the embedder https://localhost:E and
``HOOKPOST_PORTAL_COOKIE_SAMESITE=none``. ``localhost`` and ``127.0.0.1`` are different sites,
so the session cookie is a third-party one: it works as ``SameSite=None; Secure; Partitioned``,
with third-party cookies blocked (Chromium's default here) or allowed. A page of an origin not
in frame-ancestors (https://127.0.0.1:E) is refused the frame by the browser."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from hookpost.dashboard.sessions import PORTAL_COOKIE, PORTAL_SESSION_NAME
from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import PageRequest
from tests.browser.conftest import chromium_path, screenshot
from tests.integration.test_api_harness import ADMIN_TOKEN, running_api
from tests.support import tls
from tests.support.polling import eventually, until_serving
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

CHROMIUM_ARGS = ["--ignore-certificate-errors"]  # the test's self-signed certificate
# Debian's Chromium (156 here) blocks third-party cookies by default: its NetLog says
# EXCLUDE_USER_PREFERENCES for an unpartitioned SameSite=None cookie set in a cross-site frame,
# in a fresh profile and in Playwright's contexts alike, and `--test-third-party-cookie-
# phaseout` changes nothing. The profile preference below (Settings, "Allow third-party
# cookies") lets them through; the portal must work either way.
ALLOW_THIRD_PARTY_COOKIES = {"profile": {"cookie_controls_mode": 0}}


def self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    cert, key = tls.self_signed(folder, ("localhost",))
    return str(cert), str(key)


async def embed_page(request: Request) -> HTMLResponse:
    """A customer's page that frames the URL given in ``src`` (and ``probe``, if given)."""
    frames = [("portal", request.query_params["src"])]
    if "probe" in request.query_params:
        frames.append(("probe", request.query_params["probe"]))
    size = {"portal": "width='1200' height='900'", "probe": "width='300' height='60'"}
    iframes = "".join(
        f"<iframe id='{name}' src='{html.escape(src)}' title='{name}' {size[name]}></iframe>"
        for name, src in frames
    )
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><title>Customer app</title></head><body>"
        f"<h1>Customer app</h1>{iframes}</body></html>"
    )


async def probe_page(request: Request) -> HTMLResponse:
    """A control for the browser's third-party cookie policy: framed by another site, it sets
    an unpartitioned and a partitioned ``SameSite=None`` cookie."""
    response = HTMLResponse("<!doctype html><title>probe</title><p>probe</p>")
    attributes = "Path=/; Secure; HttpOnly; SameSite=None"
    response.headers.append("set-cookie", f"probe_plain=1; {attributes}")
    response.headers.append("set-cookie", f"probe_partitioned=1; {attributes}; Partitioned")
    return response


@dataclass
class Sites:
    portal: Any  # tests.integration.test_api_harness.ApiServer (https://127.0.0.1:P)
    embedder_port: int
    receiver: Receiver
    playwright: Any

    @property
    def embedder(self) -> str:  # another site than the portal's
        return f"https://localhost:{self.embedder_port}"

    @property
    def stranger(self) -> str:  # the same server, as an origin not in frame-ancestors
        return f"https://127.0.0.1:{self.embedder_port}"

    async def portal_url(self, app_id: str) -> str:
        async with httpx.AsyncClient(
            base_url=self.portal.url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            verify=False,  # the test's self-signed certificate
        ) as http:
            answer = await http.post(f"/api/v1/auth/app-portal-access/{app_id}", json={})
            answer.raise_for_status()
            url = str(answer.json()["url"])
        assert url.startswith(f"{self.portal.url}/app-portal#key=")
        return url

    async def browser(self) -> Any:
        return await self.playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS
        )

    @asynccontextmanager
    async def context(self, third_party_cookies: bool, profile: Path) -> AsyncIterator[Any]:
        """A browser context that blocks third-party cookies (Chromium's default) or, with a
        profile that says so, allows them."""
        if not third_party_cookies:
            browser = await self.browser()
            try:
                yield await browser.new_context()
            finally:
                await browser.close()
            return
        (profile / "Default").mkdir(parents=True)
        (profile / "Default" / "Preferences").write_text(json.dumps(ALLOW_THIRD_PARTY_COOKIES))
        context = await self.playwright.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path(), args=CHROMIUM_ARGS
        )
        try:
            yield context
        finally:
            await context.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sites(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sites]:
    from playwright.async_api import async_playwright

    folder = tmp_path_factory.mktemp("iframe")
    cert, key = self_signed(folder)
    embedder = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/embed", embed_page), Route("/probe", probe_page)]),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=cert,
            ssl_keyfile=key,
        )
    )
    task = asyncio.create_task(embedder.serve())
    receiver = await Receiver().start()
    try:
        await until_serving(embedder, task)
        port = embedder.servers[0].sockets[0].getsockname()[1]
        async with running_api(
            f"sqlite:///{folder / 'hookpost.db'}",
            tls=(cert, key),
            portal_frame_ancestors=f"'self' https://localhost:{port}",
            portal_cookie_samesite="none",
        ) as portal:
            async with async_playwright() as playwright:
                yield Sites(portal, port, receiver, playwright)
    finally:
        embedder.should_exit = True
        await task
        await receiver.stop()


async def portal_sessions(sites: Sites, app_id: str) -> int:
    tokens = await sites.portal.hp.services.tokens.list(PageRequest(limit=250))
    return sum(1 for t in tokens.items if t.app_id == app_id and t.name == PORTAL_SESSION_NAME)


@pytest.mark.parametrize(
    "third_party_cookies", [False, True], ids=["third-party-cookies-blocked", "allowed"]
)
async def test_the_portal_works_in_another_sites_iframe(
    sites: Sites, third_party_cookies: bool, tmp_path: Path
) -> None:
    services = sites.portal.hp.services
    app = await services.apps.create(f"Framed {third_party_cookies}")
    endpoint = await services.endpoints.create(
        app.id, NewEndpoint(url=sites.receiver.url("/framed"))
    )
    src = await sites.portal_url(app.id)
    async with sites.context(third_party_cookies, tmp_path / "profile") as context:
        violations: list[str] = []
        context.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page = await context.new_page()
        probe = quote(f"{sites.stranger}/probe", safe="")  # another site than the page's
        await page.goto(f"{sites.embedder}/embed?src={quote(src, safe='')}&probe={probe}")
        frame = page.frame_locator("#portal")
        await expect(page.frame_locator("#probe").get_by_text("probe")).to_be_visible()

        # The key was exchanged inside the frame; the endpoint list renders with the session.
        await expect(frame.get_by_role("heading", name="Endpoints")).to_be_visible()
        await expect(frame.get_by_role("link", name=endpoint.url)).to_be_visible()
        cookies = {c["name"]: c for c in await context.cookies()}
        cookie = cookies[PORTAL_COOKIE]
        assert cookie["sameSite"] == "None" and cookie["secure"] and cookie["httpOnly"]
        assert cookie.get("partitionKey") == "https://localhost"  # kept for this top-level site
        # The control: the browser keeps an unpartitioned third-party cookie only when it
        # allows third-party cookies; a partitioned one either way.
        assert "probe_partitioned" in cookies
        assert ("probe_plain" in cookies) == third_party_cookies

        # An action: a form post inside the frame (cookie and CSRF token) disables it.
        await frame.get_by_role("link", name=endpoint.url).click()
        await frame.get_by_role("button", name="Disable").click()
        await expect(frame.get_by_role("status")).to_contain_text("Endpoint disabled")
        assert (await services.endpoints.get(app.id, endpoint.id)).disabled
        # htmx's own requests carry the cookie too: the polled attempts fragment answers 200
        # (without the session it would be the 401 "session ended" page).
        async with page.expect_response(lambda r: r.url.endswith("/attempts")) as polled:
            pass
        assert (await polled.value).status == 200
        if not third_party_cookies:
            await screenshot(page, "portal-in-iframe")
        assert violations == []


async def test_an_embedder_not_in_frame_ancestors_is_refused(sites: Sites) -> None:
    services = sites.portal.hp.services
    app = await services.apps.create("Framed by a stranger")
    src = await sites.portal_url(app.id)
    browser = await sites.browser()
    try:
        context = await browser.new_context()
        console: list[str] = []
        context.on("console", lambda message: console.append(message.text))
        page = await context.new_page()
        await page.goto(f"{sites.stranger}/embed?src={quote(src, safe='')}")
        await expect(page.get_by_role("heading", name="Customer app")).to_be_visible()

        async def refused() -> bool:
            return any("frame-ancestors" in text for text in console)

        await eventually(refused, timeout=10)
        message = next(text for text in console if "frame-ancestors" in text)
        assert re.search(r"violates the following Content Security Policy", message), message
        assert message.startswith(f"Framing '{sites.portal.url}/'"), message
        assert f"https://localhost:{sites.embedder_port}" in message  # the policy it broke
        # Nothing of the portal ran in the frame: its key was never exchanged.
        portal = page.frame_locator("#portal")
        await expect(portal.get_by_role("heading", name="Endpoints")).to_have_count(0)
        assert await portal_sessions(sites, app.id) == 0
        await context.close()
    finally:
        await browser.close()
