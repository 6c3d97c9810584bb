"""The dashboard and the app portal over plain HTTP (the browser tests are tests/browser/):
security headers and CSP (no inline script anywhere), the portal key exchange and its cookie,
the admin login and its CSRF check, session expiry and logout, escaping."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hookpost.domain.inputs import NewEndpoint
from hookpost.domain.models import PageRequest
from tests.integration.test_api_harness import ADMIN_TOKEN, ApiServer, running_api
from tests.support.polling import eventually

pytestmark = pytest.mark.timeout(60)

PAGES = ("/dashboard/login", "/app-portal", "/docs")


@pytest.fixture
async def api(fresh_sqlite_url: str) -> AsyncIterator[ApiServer]:
    async with running_api(fresh_sqlite_url) as server:
        yield server


def client(api: ApiServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api.url, timeout=10.0)


async def portal_key(api: ApiServer, app_id: str, expiry: int | None = None) -> str:
    async with api.http() as admin:
        body: dict[str, Any] = {} if expiry is None else {"expiry": expiry}
        answer = await admin.post(f"/api/v1/auth/app-portal-access/{app_id}", json=body)
        assert answer.status_code == 200, answer.text
        url = answer.json()["url"]
    assert url.startswith(f"{api.url}/app-portal#key=")
    return str(url.split("#key=", 1)[1])


async def test_pages_have_a_strict_csp_and_no_inline_script(api: ApiServer) -> None:
    async with client(api) as http:
        for path in PAGES:
            answer = await http.get(path)
            assert answer.status_code == 200, path
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self';" in policy and "unsafe" not in policy, path
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
            for tag in re.findall(r"<script\b[^>]*>", answer.text):
                assert " src=" in tag, (path, tag)
            for ref in re.findall(r'(?:src|href)="([^"#][^"]*)"', answer.text):
                assert ref.startswith("/"), (path, ref)  # nothing from another origin
                assert (await http.get(ref)).status_code == 200, ref
        portal = (await http.get("/app-portal")).headers["content-security-policy"]
        dashboard = (await http.get("/dashboard/login")).headers["content-security-policy"]
    assert portal.endswith("frame-ancestors 'self'")
    assert dashboard.endswith("frame-ancestors 'none'")


async def test_frame_ancestors_are_configurable(fresh_sqlite_url: str) -> None:
    ancestors = "'self' https://app.example.com"
    async with running_api(fresh_sqlite_url, portal_frame_ancestors=ancestors) as api:
        async with client(api) as http:
            answer = await http.get("/app-portal")
    assert answer.headers["content-security-policy"].endswith(f"frame-ancestors {ancestors}")


async def test_the_portal_key_is_exchanged_for_a_session_cookie(api: ApiServer) -> None:
    services = api.hp.services
    app = await services.apps.create("Acme")
    key = await portal_key(api, app.id, expiry=3600)
    async with client(api) as http:
        for body in ({"key": ADMIN_TOKEN}, {"key": "hpk_unknown"}):  # an admin token is no key
            assert (await http.post("/app-portal/session", json=body)).status_code == 401
        assert (await http.post("/app-portal/session", content=b"{")).status_code == 422
        answer = await http.post("/app-portal/session", json={"key": key})
        assert answer.status_code == 200 and answer.json() == {"next": "/app-portal/endpoints"}
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/app-portal" in cookie
        session = http.cookies["hookpost_portal"]
        assert session != key
        record = await services.tokens.authenticate(session)
        assert record is not None and record.app_id == app.id
        assert record.expires_at is not None  # the key's hour, not the session's 8 hours
        assert record.expires_at <= time.time() * 1000 + 3600_000
        page = await http.get("/app-portal/endpoints")
        assert page.status_code == 200 and "Acme" in page.text


async def test_a_cross_site_portal_cookie_is_secure_and_partitioned(fresh_sqlite_url: str) -> None:
    async with running_api(fresh_sqlite_url, portal_cookie_samesite="none") as api:
        app = await api.hp.services.apps.create("Framed")
        key = await portal_key(api, app.id)
        async with client(api) as http:
            answer = await http.post("/app-portal/session", json={"key": key})
    cookie = answer.headers["set-cookie"]
    assert "SameSite=none" in cookie and "Secure" in cookie and "Partitioned" in cookie


async def test_login_needs_the_form_token_and_an_admin_token(api: ApiServer) -> None:
    app = await api.hp.services.apps.create("Scoped")
    scoped, _ = await api.hp.services.tokens.create(app_id=app.id, name="scoped")
    async with client(api) as http:
        form = {"token": ADMIN_TOKEN, "csrf": "forged"}
        assert (await http.post("/dashboard/login", data=form)).status_code == 403
        page = await http.get("/dashboard/login")
        nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert nonce is not None
        for token in ("wrong", scoped):  # an app-scoped token is no admin's
            answer = await http.post("/dashboard/login", data={"token": token, "csrf": nonce[1]})
            assert answer.status_code == 401
        answer = await http.post("/dashboard/login", data={"token": ADMIN_TOKEN, "csrf": nonce[1]})
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
        session = http.cookies["hookpost_dashboard"]
        assert "SameSite=strict" in answer.headers["set-cookie"]
        overview = await http.get("/dashboard")
        assert overview.status_code == 200 and "Overview" in overview.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', overview.text)
        assert csrf is not None
        # Every form needs the session's CSRF token.
        assert (await http.post("/dashboard/logout", data={})).status_code == 403
        answer = await http.post("/dashboard/logout", data={"csrf": csrf[1]})
        assert answer.status_code == 303
    assert await api.hp.services.tokens.authenticate(session) is None  # logout revoked it


async def test_sessions_expire(fresh_sqlite_url: str) -> None:
    async with running_api(fresh_sqlite_url, ui_session_ttl_s=1) as api:
        app = await api.hp.services.apps.create("Brief")
        key = await portal_key(api, app.id)
        async with client(api) as http:
            await http.post("/app-portal/session", json={"key": key})
            assert (await http.get("/app-portal/endpoints")).status_code == 200

            async def status() -> int:
                return (await http.get("/app-portal/endpoints")).status_code

            await eventually(status, lambda code: code == 401, timeout=5, interval=0.1)


async def test_names_and_urls_are_escaped(api: ApiServer) -> None:
    services = api.hp.services
    app = await services.apps.create("<script>alert(1)</script>")
    await services.endpoints.create(
        app.id, NewEndpoint(url="http://127.0.0.1:9/x?a=1&b=2", description='"><b>hi</b>')
    )
    key = await portal_key(api, app.id)
    async with client(api) as http:
        await http.post("/app-portal/session", json={"key": key})
        page = (await http.get("/app-portal/endpoints")).text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>hi</b>" not in page and "&lt;b&gt;hi&lt;/b&gt;" in page
    assert "a=1&amp;b=2" in page


async def test_a_portal_reads_its_own_tasks_only(api: ApiServer) -> None:
    services = api.hp.services
    mine, theirs = await services.apps.create("Mine"), await services.apps.create("Theirs")
    since = int(time.time() * 1000) - 60_000
    tasks = []
    for app in (mine, theirs):
        endpoint = await services.endpoints.create(app.id, NewEndpoint(url="http://127.0.0.1:9/"))
        tasks.append(await services.tasks.recover(app.id, endpoint.id, since))
    key = await portal_key(api, mine.id)
    async with client(api) as http:
        await http.post("/app-portal/session", json={"key": key})
        assert (await http.get(f"/app-portal/tasks/{tasks[0].id}")).status_code == 200
        assert (await http.get(f"/app-portal/tasks/{tasks[1].id}")).status_code == 404


async def test_with_secret_once_the_portal_offers_a_rotation(fresh_sqlite_url: str) -> None:
    async with running_api(fresh_sqlite_url, reveal_secrets=False) as api:
        app = await api.hp.services.apps.create("Once")
        endpoint = await api.hp.services.endpoints.create(
            app.id, NewEndpoint(url="http://127.0.0.1:9/")
        )
        key = await portal_key(api, app.id)
        async with client(api) as http:
            await http.post("/app-portal/session", json={"key": key})
            shown = await http.get(f"/app-portal/endpoints/{endpoint.id}/secret")
            page = await http.get(f"/app-portal/endpoints/{endpoint.id}")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            rotated = await http.post(
                f"/app-portal/endpoints/{endpoint.id}/rotate", data={"csrf": csrf[1]}
            )
        assert shown.status_code == 200 and "Rotate it to get a new one" in shown.text
        assert endpoint.secret not in shown.text
        new = (await api.hp.services.endpoints.get(app.id, endpoint.id)).secret
        assert rotated.status_code == 200 and new in rotated.text and new != endpoint.secret


async def test_the_dashboard_adds_and_deletes_operational_webhook_endpoints(
    api: ApiServer,
) -> None:
    async with client(api) as http:
        login = await http.get("/dashboard/login")
        nonce = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert nonce is not None
        await http.post("/dashboard/login", data={"token": ADMIN_TOKEN, "csrf": nonce[1]})
        page = await http.get("/dashboard/operations")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"csrf": csrf[1], "url": "http://127.0.0.1:9/ops", "type:endpoint.disabled": "on"}
        assert (await http.post("/dashboard/operations", data=form)).status_code == 303
        (created,) = (await api.hp.services.operational.list(PageRequest(limit=10))).items
        assert created.event_types == ["endpoint.disabled"]
        assert "http://127.0.0.1:9/ops" in (await http.get("/dashboard/operations")).text
        answer = await http.post(
            f"/dashboard/operations/{created.id}/delete", data={"csrf": csrf[1]}
        )
        assert answer.status_code == 303
    assert (await api.hp.services.operational.list(PageRequest(limit=10))).items == []
