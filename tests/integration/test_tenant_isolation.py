"""Tenant isolation, route by route, driven by hookpost's own OpenAPI document.

Two applications, A and B, each with an event type, an endpoint (custom headers, a secret), a
message and a failed delivery with attempts. An app-scoped token of A (minted with
``POST /api/v1/auth/app-portal-access/{A}``) then calls EVERY operation of
``/api/v1/openapi.json`` with B's ids:

* any route with ``{app_id}`` answers 404, whether B is named by id or by uid, exactly as for an
  application that does not exist (no existence oracle); A's own app with one of B's child ids
  (endpoint, message, attempt) is 404 as well (403, the same as for an id that does not exist,
  where the operation is one A's token may not do at all: ``ADMIN_ONLY``);
* global routes answer as documented (``GLOBAL``): event-type reads are allowed, writes 403;
  ``GET /api/v1/app`` lists only A; a global route missing from ``GLOBAL`` fails the test, so
  a new route cannot slip through unclassified;
* afterwards B is byte-for-byte what it was (read with the admin token): application,
  endpoints, secret, headers, messages, attempts, delivery states, stats, and no request
  reached B's receiver.

The same table with A's token on A's own resources succeeds (except the admin-only
operations: 403), and the admin token succeeds everywhere. The 404 table runs on SQLite and
PostgreSQL (the stores scope every query by application themselves).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from hookpost.api.permissions import ROUTE_PERMISSIONS
from hookpost.domain.permissions import APP_TOKEN_PERMISSIONS
from hookpost.store.secretbox import generate_main_key
from tests.integration.test_api_harness import ApiServer, running_api
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always

pytestmark = pytest.mark.timeout(60)

GHOST_APP = "app_2doesnotexist0000000000000"
GHOST = {
    "endpoint_id": "ep_2doesnotexist00000000000000",
    "msg_id": "msg_2doesnotexist0000000000000",
    "attempt_id": "atmpt_2doesnotexist0000000000",
}
APP_CHILD_PARAMS = ("endpoint_id", "msg_id", "attempt_id")

# Routes outside /api/v1/app/{app_id}...: what an app-scoped token gets. Every global route of
# the OpenAPI document must be listed here (a new one fails the test until it is classified).
GLOBAL: dict[tuple[str, str], int] = {
    ("GET", "/api/v1/app"): 200,  # lists only the token's own application
    ("POST", "/api/v1/app"): 403,
    ("GET", "/api/v1/event-type"): 200,  # the event-type catalog is shared and readable
    ("POST", "/api/v1/event-type"): 403,
    ("GET", "/api/v1/event-type/{event_type_name}"): 200,
    ("PUT", "/api/v1/event-type/{event_type_name}"): 403,
    ("PATCH", "/api/v1/event-type/{event_type_name}"): 403,
    ("DELETE", "/api/v1/event-type/{event_type_name}"): 403,
    ("GET", "/api/v1/event-type/{event_type_name}/retry-schedule"): 200,
    ("PUT", "/api/v1/event-type/{event_type_name}/retry-schedule"): 403,
    ("POST", "/api/v1/auth/logout"): 204,
    ("GET", "/api/v1/auth/token"): 403,  # token management is the operator's
    ("POST", "/api/v1/auth/token"): 403,
    ("DELETE", "/api/v1/auth/token/{token_id}"): 403,
    # the operational webhook endpoints are the operator's
    ("GET", "/api/v1/operational-webhook/endpoint"): 403,
    ("POST", "/api/v1/operational-webhook/endpoint"): 403,
    ("GET", "/api/v1/operational-webhook/endpoint/{endpoint_id}"): 403,
    ("PUT", "/api/v1/operational-webhook/endpoint/{endpoint_id}"): 403,
    ("DELETE", "/api/v1/operational-webhook/endpoint/{endpoint_id}"): 403,
    ("GET", "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret"): 403,
    ("POST", "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate"): 403,
    ("GET", "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers"): 403,
    ("PUT", "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers"): 403,
    # background tasks and the usage statistics computed as tasks: any application's
    ("GET", "/api/v1/background-task"): 403,
    ("GET", "/api/v1/background-task/{task_id}"): 403,
    ("POST", "/api/v1/stats/usage/app"): 403,
    ("PUT", "/api/v1/stats/usage/event-types"): 403,
    ("GET", "/api/v1/health"): 204,
    ("HEAD", "/api/v1/health"): 204,
    ("GET", "/api/v1/health/ping"): 204,
    ("HEAD", "/api/v1/health/ping"): 204,
}
# App-scoped operations that need an admin token even on the token's own application: the
# permission matrix's (docs/permissions.md), e.g. creating messages and expunging content.
ADMIN_ONLY = {
    op
    for op, permission in ROUTE_PERMISSIONS.items()
    if permission is not None and permission not in APP_TOKEN_PERMISSIONS
}
assert {"v1.application.update", "v1.message.create", "v1.message.expunge-content"} <= ADMIN_ONLY


@dataclass
class Tenant:
    app_id: str
    uid: str
    endpoint_id: str
    msg_id: str
    attempt_id: str
    event_type: str
    token_id: str  # an app-scoped token of the tenant's (not the one the tests use)
    task_id: str  # a background task (a recover of its endpoint)
    rule_id: str  # an alert rule

    def params(self, by_uid: bool = False) -> dict[str, str]:
        return {
            "app_id": self.uid if by_uid else self.app_id,
            "endpoint_id": self.endpoint_id,
            "msg_id": self.msg_id,
            "attempt_id": self.attempt_id,
            "event_type_name": self.event_type,
            "token_id": self.token_id,
            "task_id": self.task_id,
            "rule_id": self.rule_id,
        }


@dataclass
class World:
    api: ApiServer
    receiver: Receiver
    a: Tenant
    b: Tenant
    token_a: str
    operations: list[tuple[str, str, dict[str, Any]]]  # (METHOD, path template, operation)


ALERT_RULE = {
    "name": "too many",
    "kind": "threshold",
    "operator": "gt",
    "value": 10,
    "windowSeconds": 60,
}


def query_for(operation_id: str) -> dict[str, str]:
    """The query parameters the operation requires, valid (none for most)."""
    last_hour = {"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T01:00:00Z"}
    queries = {
        "v1.application.stats.attempts": last_hour,
        "v1.stats.app-delivery": last_hour,
        "v1.stats.endpoint-delivery": last_hour,
    }
    return queries.get(operation_id, {})


def body_for(operation_id: str, receiver: Receiver, tag: str) -> Any:
    """A plausible, valid request body for the operation (``tag`` keeps names unique)."""
    url = receiver.url(f"/intruder-{tag}")
    bodies: dict[str, Any] = {
        "v1.application.create": {"name": "Intruder", "uid": f"intruder-{tag}"},
        "v1.application.update": {"name": "Renamed"},
        "v1.application.patch": {"name": "Renamed", "metadata": {"pwned": "yes"}},
        "v1.endpoint.create": {"url": url, "headers": {"X-Pwned": "1"}},
        "v1.endpoint.update": {"url": url},
        "v1.endpoint.patch": {"url": url, "disabled": True},
        "v1.endpoint.rotate-secret": {},
        "v1.endpoint.update-headers": {"headers": {"X-Pwned": "1"}},
        "v1.endpoint.patch-headers": {"headers": {"X-Pwned": "1", "X-Tenant": None}},
        # recover looks back at most 14 days
        "v1.endpoint.recover": {"since": (datetime.now(UTC) - timedelta(days=13)).isoformat()},
        "v1.endpoint.replay-missing": {
            "since": (datetime.now(UTC) - timedelta(days=1)).isoformat()
        },
        "v1.endpoint.bulk-replay": {
            "since": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "dryRun": True,
        },
        "v1.message.bulk-expunge-content": {"ids": [f"evt-{tag}"]},
        "v1.statistics.aggregate-app-stats": {
            "since": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "until": datetime.now(UTC).isoformat(),
        },
        # a session no token has: it revokes none (else the tokens other checks use go too)
        "v1.authentication.expire-all": {"sessionIds": [f"session-{tag}"]},
        "v1.endpoint.send-example": {"eventType": "b.created"},
        "v1.message.create": {"eventType": "b.created", "payload": {"pwned": True}},
        "v1.authentication.app-portal-access": {},
        "v1.authentication.create-token": {"name": f"intruder-{tag}"},
        "v1.event-type.create": {"name": f"evil.{tag}", "description": "x"},
        "v1.event-type.update": {"description": "pwned"},
        "v1.event-type.patch": {"description": "pwned", "archived": True},
        "v1.event-type.set-retry-schedule": {"retrySchedule": [5, 60]},
        "v1.operational-webhook.endpoint.create": {"url": receiver.url(f"/ops-{tag}")},
        "v1.operational-webhook.endpoint.upsert": {"url": receiver.url(f"/ops-{tag}")},
        "v1.operational-webhook.endpoint.rotate-secret": {},
        "v1.operational-webhook.endpoint.set-headers": {"headers": {"X-Ops": tag}},
        "v1.alert-rule.create": ALERT_RULE,
        "v1.alert-rule.patch": {"value": 99},
        "v1.metric.push": {"name": "queue.depth", "value": 3},
    }
    return bodies[operation_id]


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: quote(values[m.group(1)], safe=""), template)


async def call(
    client: httpx.AsyncClient,
    method: str,
    template: str,
    operation: dict[str, Any],
    values: dict[str, str],
    receiver: Receiver,
    tag: str,
) -> httpx.Response:
    body = None
    if "requestBody" in operation:
        op_id = operation["operationId"]
        try:
            body = body_for(op_id, receiver, tag)
        except KeyError:
            pytest.fail(f"{op_id} ({method} {template}) is new: add a valid body to body_for()")
    query = query_for(operation["operationId"])
    required = {
        p["name"]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    }
    if not required <= set(query):
        pytest.fail(f"{operation['operationId']} requires {required}: add them to query_for()")
    return await client.request(method, fill(template, values), json=body, params=query)


def without(text: str, *ids: str) -> str:
    for value in ids:
        text = text.replace(value, "<id>")
    return text


# --------------------------------------------------------------------------- fixtures


async def make_tenant(http: httpx.AsyncClient, receiver: Receiver, name: str) -> Tenant:
    event_type = f"{name}.created"
    r = await http.post("/api/v1/event-type", json={"name": event_type, "description": name})
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/app", json={"name": name.upper(), "uid": f"tenant-{name}"})
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    r = await http.post(
        f"/api/v1/app/{app_id}/endpoint",
        json={"url": receiver.url(f"/{name}"), "headers": {"X-Tenant": name}},
    )
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["id"]
    r = await http.post(
        f"/api/v1/app/{app_id}/msg",
        json={"eventType": event_type, "payload": {"tenant": name}, "eventId": f"evt-{name}"},
    )
    assert r.status_code == 202, r.text
    msg_id = r.json()["id"]

    async def final_delivery() -> list[Any]:
        dest = (await http.get(f"/api/v1/app/{app_id}/msg/{msg_id}/endpoint")).json()["data"]
        return [d["status"] for d in dest]

    # The receiver answers 500: retries (schedule 0, 0) run out and the delivery fails.
    await eventually(final_delivery, lambda s: s == [2], timeout=15.0)
    r = await http.get(f"/api/v1/app/{app_id}/attempt/msg/{msg_id}")
    attempts = r.json()["data"]
    assert attempts, r.text
    token = await http.post("/api/v1/auth/token", json={"appId": app_id, "name": name})
    assert token.status_code == 201, token.text
    # a task that changes nothing: a recover of a minute long ago, before any message
    since = datetime.now(UTC) - timedelta(days=1)
    until = since + timedelta(minutes=1)
    task = await http.post(
        f"/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
        json={"since": since.isoformat(), "until": until.isoformat()},
    )
    assert task.status_code == 202, task.text
    rule = await http.post(f"/api/v1/app/{app_id}/alert-rule", json=ALERT_RULE)
    assert rule.status_code == 201, rule.text
    return Tenant(
        app_id,
        f"tenant-{name}",
        endpoint_id,
        msg_id,
        attempts[0]["id"],
        event_type,
        token.json()["id"],
        task.json()["id"],
        rule.json()["id"],
    )


@pytest.fixture
def world_database_url(request: pytest.FixtureRequest) -> str:
    """SQLite unless a test asks for ``postgres`` (indirect parametrisation)."""
    kind = getattr(request, "param", "sqlite")
    name = "fresh_sqlite_url" if kind == "sqlite" else "migrated_postgres_url"
    return str(request.getfixturevalue(name))


BOTH_BACKENDS = pytest.mark.parametrize(
    "world_database_url",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


@pytest.fixture
async def world(world_database_url: str) -> AsyncIterator[World]:
    receiver = await Receiver().start()
    receiver.respond("/a", always(500))
    receiver.respond("/b", always(500))
    try:
        extra = {} if world_database_url.startswith("sqlite") else {"main_key": generate_main_key()}
        async with running_api(world_database_url, **extra) as api, api.http() as admin:
            a = await make_tenant(admin, receiver, "a")
            b = await make_tenant(admin, receiver, "b")
            portal = await admin.post(f"/api/v1/auth/app-portal-access/{a.app_id}", json={})
            assert portal.status_code == 200, portal.text
            doc = (await admin.get("/api/v1/openapi.json")).json()
            operations = [
                (method.upper(), path, op)
                for path, ops in doc["paths"].items()
                for method, op in ops.items()
            ]
            assert len(operations) >= 40, "the OpenAPI document lost its routes"
            yield World(api, receiver, a, b, portal.json()["token"], operations)
    finally:
        await receiver.stop()


async def snapshot(admin: httpx.AsyncClient, t: Tenant) -> dict[str, Any]:
    """Everything an attacker could change about tenant ``t``, read with the admin token."""
    base = f"/api/v1/app/{t.app_id}"
    paths = {
        "app": base,
        "endpoints": f"{base}/endpoint",
        "endpoint": f"{base}/endpoint/{t.endpoint_id}",
        "secret": f"{base}/endpoint/{t.endpoint_id}/secret",
        "headers": f"{base}/endpoint/{t.endpoint_id}/headers",
        "stats": f"{base}/endpoint/{t.endpoint_id}/stats",
        "messages": f"{base}/msg?with_content=true",
        "endpoint_messages": f"{base}/endpoint/{t.endpoint_id}/msg",
        "destinations": f"{base}/msg/{t.msg_id}/endpoint",
        "attempts": f"{base}/attempt/endpoint/{t.endpoint_id}",
        "attempt": f"{base}/msg/{t.msg_id}/attempt/{t.attempt_id}",
        "attempt_headers": f"{base}/msg/{t.msg_id}/attempt/{t.attempt_id}/headers",
        "event_types": "/api/v1/event-type?include_archived=true&with_content=true",
        "apps": "/api/v1/app?limit=250",
    }
    out: dict[str, Any] = {}
    for key, path in paths.items():
        r = await admin.get(path)
        assert r.status_code == 200, (path, r.text)
        out[key] = r.json()
    return out


async def queue_drained(api: ApiServer) -> None:
    async def depth() -> int:
        # Due "by the end of time": every delivery not yet final (pending or sending).
        return (await api.hp.store.queue_depth(2**62)).due

    await eventually(depth, lambda n: n == 0, timeout=15.0)


# --------------------------------------------------------------------------- tests


@BOTH_BACKENDS
async def test_app_token_gets_404_on_every_route_of_another_app(world: World) -> None:
    a, b, receiver = world.a, world.b, world.receiver
    async with world.api.http() as admin:
        before = await snapshot(admin, b)
    b_requests = len(receiver.on("/b"))
    failures: list[str] = []
    checked = 0

    def expect(response: httpx.Response, statuses: set[int], what: str) -> bool:
        nonlocal checked
        checked += 1
        if response.status_code in statuses:
            return True
        failures.append(f"{what}: {response.status_code} {response.text[:200]}")
        return False

    async with world.api.http(world.token_a) as scoped:
        for n, (method, template, op) in enumerate(sorted(world.operations, key=_order)):
            what = f"{method} {template}"
            if "{app_id}" not in template:
                if (method, template) not in GLOBAL:
                    failures.append(f"{what}: global route missing from GLOBAL (classify it)")
                    continue
                if (method, template) == LOGOUT:
                    continue  # it revokes the token: called last, below
                r = await call(scoped, method, template, op, b.params(), receiver, f"g{n}")
                ok = expect(r, {GLOBAL[method, template]}, what)
                if ok and (method, template) == ("GET", "/api/v1/app"):
                    listed = [app["id"] for app in r.json()["data"]]
                    if listed != [a.app_id]:
                        failures.append(f"{what}: lists {listed}, not only A")
                continue

            # B by id, B by uid, and an application that does not exist: the same 404.
            answers = []
            for label, params in (
                ("B by id", b.params()),
                ("B by uid", b.params(by_uid=True)),
                ("no such app", {**b.params(), "app_id": GHOST_APP}),
            ):
                r = await call(scoped, method, template, op, params, receiver, f"{n}{label[-2:]}")
                expect(r, {404}, f"{what} [{label}]")
                answers.append((r.status_code, r.json() if r.content else None))
            if len({repr(x) for x in answers}) != 1:
                failures.append(f"{what}: B's 404s differ from a missing app's: {answers}")

            # A's own application with one of B's child ids: 404 like an id that does not exist.
            for param in APP_CHILD_PARAMS:
                if "{" + param + "}" not in template:
                    continue
                b_value = b.params()[param]
                if op["operationId"] == "v1.endpoint.update" and param == "endpoint_id":
                    continue  # an upsert: it creates an endpoint in A (checked last, below)
                theirs = await call(
                    scoped, method, template, op, {**a.params(), param: b_value}, receiver, f"{n}c"
                )
                label = f"{what} [A with B's {param}]"
                # An operation A's token may not do at all is 403 before any id is looked at.
                if not expect(theirs, {403 if op["operationId"] in ADMIN_ONLY else 404}, label):
                    continue
                ghost = await call(
                    scoped,
                    method,
                    template,
                    op,
                    {**a.params(), param: GHOST[param]},
                    receiver,
                    f"{n}g",
                )
                if without(theirs.text, b_value) != without(ghost.text, GHOST[param]):
                    failures.append(f"{label}: {theirs.text} differs from {ghost.text}")

        # POST /msg through the FastAPI route too (a non-JSON content type skips the door),
        # and with `application`, which must not create the application in someone else's name.
        message = {"eventType": "b.created", "payload": {"pwned": True}}
        for app_ref in (b.app_id, b.uid, "brand-new-app"):
            r = await scoped.post(
                f"/api/v1/app/{app_ref}/msg",
                content=httpx.Request("POST", "/", json=message).content,
                headers={"content-type": "application/vnd.api+json"},
            )
            expect(r, {404}, f"POST /msg (FastAPI route) on {app_ref}")
            r = await scoped.post(
                f"/api/v1/app/{app_ref}/msg",
                json={**message, "application": {"name": "Sneaky", "uid": app_ref}},
            )
            expect(r, {404}, f"POST /msg with application on {app_ref}")
            r = await scoped.post(
                f"/api/v1/auth/app-portal-access/{app_ref}",
                json={"application": {"name": "Sneaky"}},
            )
            expect(r, {404}, f"POST app-portal-access with application on {app_ref}")
        # Query-parameter references to B from A's own app.
        r = await scoped.get(
            f"/api/v1/app/{a.app_id}/attempt/msg/{a.msg_id}?endpoint_id={b.endpoint_id}"
        )
        expect(r, {404}, "list attempts by msg filtered by B's endpoint")
        # PUT upserts: in A, B's endpoint id is only a new uid. It creates an endpoint in A.
        r = await scoped.put(
            f"/api/v1/app/{a.app_id}/endpoint/{b.endpoint_id}", json={"url": receiver.url("/a")}
        )
        if expect(r, {201}, "PUT A's endpoint named by B's endpoint id (upsert)"):
            created = r.json()
            assert created["id"] != b.endpoint_id and created["uid"] == b.endpoint_id
        expect(await scoped.post("/api/v1/auth/logout"), {GLOBAL[LOGOUT]}, "logout")
        expect(await scoped.get(f"/api/v1/app/{a.app_id}"), {401}, "A's token after logout")

    assert not failures, f"{len(failures)} of {checked} checks failed:\n" + "\n".join(failures)
    assert checked >= 100

    async with world.api.http() as admin:
        after = await snapshot(admin, b)
        for key in before:
            if key != "apps":
                assert after[key] == before[key], f"B's {key} changed"
        # Nothing was created on anyone's behalf, except the endpoint A's token upserted in A.
        assert [x["id"] for x in after["apps"]["data"]] == [x["id"] for x in before["apps"]["data"]]
        assert (await admin.get("/api/v1/app/brand-new-app")).status_code == 404
    await queue_drained(world.api)
    assert len(receiver.on("/b")) == b_requests, "a request reached B's endpoint"
    assert not [r for r in receiver.requests if r.path.startswith("/intruder")]


LOGOUT = ("POST", "/api/v1/auth/logout")


def _order(item: tuple[str, str, dict[str, Any]]) -> tuple[bool, bool, int]:
    """Destructive operations last, the most specific first (attempt content before the app);
    logout (which revokes an app token) after everything."""
    method, template, _ = item
    return ((method, template) == LOGOUT, method == "DELETE", -len(template))


async def test_app_token_works_on_its_own_app(world: World) -> None:
    a, receiver = world.a, world.receiver
    failures: list[str] = []
    async with world.api.http(world.token_a) as scoped:
        for n, (method, template, op) in enumerate(sorted(world.operations, key=_order)):
            what = f"{method} {template}"
            if "{app_id}" not in template:
                expected = {GLOBAL[method, template]}
            elif op["operationId"] in ADMIN_ONLY:
                expected = {403}
            else:
                expected = {200, 201, 202, 204}
            for by_uid in (False, True) if method == "GET" else (False,):
                params = a.params(by_uid)
                if op["operationId"] == "v1.message.create":
                    # Through the FastAPI route (a non-JSON content type skips the fast paths,
                    # whose own check test_permissions.py holds).
                    r = await scoped.post(
                        fill(template, params),
                        content=orjson.dumps(body_for("v1.message.create", receiver, "own")),
                        headers={"content-type": "application/vnd.api+json"},
                    )
                else:
                    r = await call(scoped, method, template, op, params, receiver, f"own{n}")
                if r.status_code not in expected:
                    failures.append(f"{what} (uid={by_uid}): {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)


async def test_admin_token_works_everywhere(world: World) -> None:
    b, receiver = world.b, world.receiver
    failures: list[str] = []
    async with world.api.http() as admin:
        ops = await admin.post(
            "/api/v1/operational-webhook/endpoint", json={"url": receiver.url("/ops")}
        )
        for n, (method, template, op) in enumerate(sorted(world.operations, key=_order)):
            params = b.params()
            if template.startswith("/api/v1/operational-webhook/"):  # the operator's endpoint
                params["endpoint_id"] = ops.json()["id"]
            r = await call(admin, method, template, op, params, receiver, f"adm{n}")
            if (method, template) == LOGOUT:
                if r.status_code != 403:  # only app-scoped tokens log out
                    failures.append(f"{method} {template}: {r.status_code}, not 403")
            elif not 200 <= r.status_code < 300:
                failures.append(f"{method} {template}: {r.status_code} {r.text[:200]}")
        assert (await admin.get(f"/api/v1/app/{b.app_id}")).status_code == 404  # deleted last
    assert not failures, "\n".join(failures)
