"""Browser tests: a real headless Chromium (Debian's ``chromium``) driven by Playwright for
Python, against a hookpost server with a worker and a loopback receiver.

* One server, one receiver and one browser per module (module-scoped, on the module's event
  loop); every test opens its own browser context, so cookies never leak between tests.
* Marked ``browser``; tests/conftest.py keeps tests/browser/ in one xdist group, so a run
  starts one browser per module, not one per worker.
* Screenshots of the main pages go to ``artifacts/screenshots/`` (``HOOKPOST_SCREENSHOTS``
  overrides it); CI keeps that folder as an artifact (README, "Dashboard and app portal").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("HOOKPOST_SCREENSHOTS", "artifacts/screenshots"))
EVENT_TYPE = "invoice.paid"
EXAMPLE = {"invoiceId": "inv_123", "amountCents": 4200, "currency": "EUR"}


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is not installed: apt-get install chromium (.ci/run does)")
    return path


@dataclass
class Stack:
    url: str
    hp: Any  # hookpost.wiring.Hookpost
    receiver: Any  # tests.support.receiver.Receiver
    browser: Any  # playwright.async_api.Browser
    admin_token: str

    async def portal_url(self, app_id: str) -> str:
        import httpx

        async with httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_token}"}
        ) as http:
            answer = await http.post(f"/api/v1/auth/app-portal-access/{app_id}", json={})
            answer.raise_for_status()
            return str(answer.json()["url"])

    async def context(self, **options: Any) -> Any:
        """A fresh browser context that fails the test on any CSP violation it reports."""
        context = await self.browser.new_context(base_url=self.url, **options)
        context.csp_violations = []

        def on_console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                context.csp_violations.append(message.text)

        context.on("console", on_console)
        return context


async def screenshot(page: Any, name: str) -> None:
    # Playwright creates the folder.
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2 A/AA violations on the page (its context must bypass the CSP, as
    axe is injected as an inline script)."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "() => axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))})))"
    )
    return list(result)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    from playwright.async_api import async_playwright

    from hookpost.domain.inputs import NewEventType
    from tests.integration.test_api_harness import ADMIN_TOKEN, running_api
    from tests.support.receiver import Receiver

    db = tmp_path_factory.mktemp("browser") / "hookpost.db"
    receiver = await Receiver().start()
    try:
        async with running_api(f"sqlite:///{db}") as api:  # with a worker: deliveries flow
            await api.hp.services.event_types.create(
                NewEventType(
                    EVENT_TYPE,
                    "An invoice was paid in full",
                    {"1": {"type": "object", "examples": [EXAMPLE]}},
                )
            )
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium_path())
                try:
                    yield Stack(api.url, api.hp, receiver, browser, ADMIN_TOKEN)
                finally:
                    await browser.close()
    finally:
        await receiver.stop()
