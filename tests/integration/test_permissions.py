"""The permission matrix (docs/permissions.md), operation by operation, for both kinds of token.

The cases are generated from the app's own route table: every operation of the OpenAPI
document is called with an admin token and with an app-portal token of the application it
names, on fresh resources of its own (so destructive operations do not disturb the others).
An operation the token's kind holds the permission for answers 2xx, any other 403
``forbidden``. An operation without a declared permission cannot be built into the app
(``api.permissions.check_declared``), an entry of the table without an operation, a route
outside the document that is not listed in ``OUTSIDE_THE_DOCUMENT``, or a row of
docs/permissions.md that differs from the code, each fails a test here.

``POST /msg`` is called through the FastAPI route (a non-JSON content type skips the fast
paths); the fast paths' own check is ``test_front_door_refuses_a_portal_token``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from fastapi.routing import APIRoute

from hookpost.api.permissions import ROUTE_PERMISSIONS
from tests.integration.conftest import ServedApi
from tests.integration.test_api_errors import assert_error
from tests.integration.test_tenant_isolation import ALERT_RULE, body_for, fill, query_for
from tests.support.polling import eventually
from tests.support.receiver import Receiver
from tests.unit.test_permission_table import KINDS, allowed, route_table

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

SLOW = {"content-type": "application/vnd.api+json"}  # the FastAPI route, not the fast paths
EVENT_TYPE = "b.created"  # the one body_for's messages and examples name
OPERATIONS = route_table()


# --------------------------------------------------------------------------- every operation


@dataclass
class Fixture:
    api: ServedApi
    receiver: Receiver


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory,
    serve_api: Callable[..., AbstractAsyncContextManager[ServedApi]],
) -> AsyncIterator[Fixture]:
    receiver = await Receiver().start()
    url = f"sqlite:///{tmp_path_factory.mktemp('permissions') / 'hookpost.db'}"
    try:
        async with serve_api(
            url, worker=True, allow_subnets="127.0.0.0/8", retry_schedule=(0,), poll_interval_s=0.05
        ) as api:
            async with api.http() as admin:
                r = await admin.post(
                    "/api/v1/event-type", json={"name": EVENT_TYPE, "description": ""}
                )
                assert r.status_code == 201, r.text
            yield Fixture(api, receiver)
    finally:
        await receiver.stop()


async def resources(
    admin: httpx.AsyncClient, f: Fixture, tag: str, attempt: bool
) -> dict[str, str]:
    """A fresh application with an endpoint, a message (and its attempt), an event type and a
    spare token: the path parameters of any operation."""
    app = await admin.post("/api/v1/app", json={"name": tag, "uid": f"perm-{tag}"})
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    ep = await admin.post(
        f"/api/v1/app/{app_id}/endpoint", json={"url": f.receiver.url(f"/perm-{tag}")}
    )
    assert ep.status_code == 201, ep.text
    msg = await admin.post(
        f"/api/v1/app/{app_id}/msg", json={"eventType": EVENT_TYPE, "payload": {}}
    )
    assert msg.status_code == 202, msg.text
    event_type = f"perm.{tag}"
    et = await admin.post("/api/v1/event-type", json={"name": event_type, "description": ""})
    assert et.status_code == 201, et.text
    _, spare = await f.api.hp.services.tokens.create(app_id=app_id, name="spare")
    attempt_id = "atmpt_none"
    if attempt:
        path = f"/api/v1/app/{app_id}/attempt/msg/{msg.json()['id']}"

        async def attempts() -> list[Any]:
            return list((await admin.get(path)).json()["data"])

        attempt_id = (await eventually(attempts))[0]["id"]
    rule = await admin.post(f"/api/v1/app/{app_id}/alert-rule", json=ALERT_RULE)
    assert rule.status_code == 201, rule.text
    return {
        "rule_id": rule.json()["id"],
        "app_id": app_id,
        "endpoint_id": ep.json()["id"],
        "msg_id": msg.json()["id"],
        "attempt_id": attempt_id,
        "event_type_name": event_type,
        "token_id": spare.id,
        "task_id": (await f.api.hp.services.tasks.aggregate_event_types()).id,
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "route", OPERATIONS, ids=[f"{sorted(r.methods)[0]} {r.operation_id}" for r in OPERATIONS]
)
async def test_operation_answers_as_the_matrix_says(
    served: Fixture, route: APIRoute, kind: str
) -> None:
    op = str(route.operation_id)
    method = sorted(route.methods)[0]
    tag = f"{op.replace('.', '-')}-{kind}"
    async with served.api.http() as admin:
        params = await resources(admin, served, tag, "{attempt_id}" in route.path)
        if route.path.startswith("/api/v1/operational-webhook/"):  # {endpoint_id}: the operator's
            ops = await admin.post(
                "/api/v1/operational-webhook/endpoint", json={"url": served.receiver.url("/ops")}
            )
            params["endpoint_id"] = ops.json()["id"]
    if kind == "admin":
        token = served.api.admin_token
    else:
        token, _ = await served.api.hp.services.tokens.create(app_id=params["app_id"], name=tag)
    body = None
    if route.body_field is not None:
        body = orjson.dumps(body_for(op, served.receiver, tag))
    async with served.api.http(token) as client:
        response = await client.request(
            method, fill(route.path, params), content=body, headers=SLOW, params=query_for(op)
        )
    if allowed(kind, ROUTE_PERMISSIONS[op]):
        assert 200 <= response.status_code < 300, (op, kind, response.status_code, response.text)
    else:
        assert_error(response, 403, "forbidden")


async def test_front_door_refuses_a_portal_token(served: Fixture) -> None:
    """POST /msg with a portal token through the front door too: 403, nothing created."""
    async with served.api.http() as admin:
        params = await resources(admin, served, "front-door", attempt=False)
    app_id = params["app_id"]
    token, _ = await served.api.hp.services.tokens.create(app_id=app_id, name="front-door")
    message = {"eventType": EVENT_TYPE, "payload": {"forged": True}}
    async with served.api.http(token) as client:
        plain = await client.post(f"/api/v1/app/{app_id}/msg", json=message)
        keyed = await client.post(
            f"/api/v1/app/{app_id}/msg", json=message, headers={"idempotency-key": "k"}
        )
    for response in (plain, keyed):
        assert_error(response, 403, "forbidden")
    async with served.api.http() as admin:
        listed = (await admin.get(f"/api/v1/app/{app_id}/msg")).json()["data"]
    assert [m for m in listed if m["payload"] == {"forged": True}] == []
