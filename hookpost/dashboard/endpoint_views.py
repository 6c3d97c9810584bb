"""Endpoint views: list, create, edit, disable/enable, delete, secret, test event, recovery.
Every read and write names ``v.app_id``: an id from the URL reaches only that app's rows."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hookpost.dashboard import endpoint_form
from hookpost.dashboard.views import View, next_iterator
from hookpost.dashboard.web import form_pairs, parse_time, redirect
from hookpost.domain.errors import InvalidInput, SecretNotShown
from hookpost.domain.inputs import AttemptQuery, EndpointChanges
from hookpost.domain.models import EventType, PageRequest

CATALOG_LIMIT = 250


async def catalog(v: View) -> list[EventType]:
    page = await v.services.event_types.list(PageRequest(limit=CATALOG_LIMIT))
    return page.items


async def endpoints_list(request: Request, v: View) -> Response:
    iterator = request.query_params.get("iterator") or None
    page = await v.services.endpoints.list(v.app_id, PageRequest(limit=50, iterator=iterator))
    return v.page("endpoints.html", endpoints=page.items, more=next_iterator(page))


async def _form_page(
    v: View, values: dict[str, str], chosen: list[str], status: int = 200, **extra: Any
) -> Response:
    return v.page(
        "endpoint_form.html",
        status,
        values=values,
        chosen=chosen,
        catalog=await catalog(v),
        schemes=endpoint_form.SCHEMES,
        error=extra.pop("error", None),
        **extra,
    )


async def endpoint_new(request: Request, v: View) -> Response:
    return await _form_page(v, {}, [], endpoint=None)


async def endpoint_create(request: Request, v: View, fields: dict[str, str]) -> Response:
    chosen = [value for name, value in await _pairs(request) if name == "eventTypes"]
    try:
        values = endpoint_form.read(fields, chosen)
        created = await v.services.endpoints.create(v.app_id, endpoint_form.new_endpoint(values))
    except InvalidInput as exc:
        return await _form_page(v, fields, chosen, 422, error=str(exc), endpoint=None)
    return redirect(f"{v.base}/endpoints/{created.id}", request)


async def _pairs(request: Request) -> list[tuple[str, str]]:
    return await form_pairs(request)  # the body is cached: read again for repeated fields


async def endpoint_detail(request: Request, v: View) -> Response:
    eid = request.path_params["endpoint_id"]
    endpoint = await v.services.endpoints.get(v.app_id, eid)
    stats = await v.services.endpoints.stats(v.app_id, endpoint.id)
    return v.page(
        "endpoint.html",
        endpoint=endpoint,
        stats=stats,
        catalog=await catalog(v),
        notice=request.query_params.get("notice"),
    )


async def endpoint_attempts(request: Request, v: View) -> Response:
    """The endpoint's latest attempts: a fragment the detail page polls."""
    eid = request.path_params["endpoint_id"]
    page = await v.services.messages.list_attempts(
        v.app_id, PageRequest(limit=20, descending=True), AttemptQuery(endpoint=eid)
    )
    return v.page("attempts_fragment.html", attempts=page.items)


async def endpoint_edit(request: Request, v: View) -> Response:
    endpoint = await v.services.endpoints.get(v.app_id, request.path_params["endpoint_id"])
    values = endpoint_form.fields_of(endpoint)
    return await _form_page(v, values, endpoint.event_types or [], endpoint=endpoint)


async def endpoint_update(request: Request, v: View, fields: dict[str, str]) -> Response:
    endpoints = v.services.endpoints
    endpoint = await endpoints.get(v.app_id, request.path_params["endpoint_id"])
    chosen = [value for name, value in await _pairs(request) if name == "eventTypes"]
    try:
        values = endpoint_form.read(fields, chosen)
        if not values["url"]:
            raise InvalidInput("url", "is required")
        await endpoints.patch(v.app_id, endpoint.id, endpoint_form.changes(values))
        await endpoints.set_headers(v.app_id, endpoint.id, values["headers"], merge=False)
    except InvalidInput as exc:
        return await _form_page(v, fields, chosen, 422, error=str(exc), endpoint=endpoint)
    return redirect(f"{v.base}/endpoints/{endpoint.id}?notice=saved", request)


async def endpoint_disable(request: Request, v: View, fields: dict[str, str]) -> Response:
    return await _set_disabled(request, v, True)


async def endpoint_enable(request: Request, v: View, fields: dict[str, str]) -> Response:
    return await _set_disabled(request, v, False)


async def _set_disabled(request: Request, v: View, disabled: bool) -> Response:
    eid = request.path_params["endpoint_id"]
    endpoint = await v.services.endpoints.patch(v.app_id, eid, EndpointChanges(disabled=disabled))
    notice = "disabled" if disabled else "enabled"
    return redirect(f"{v.base}/endpoints/{endpoint.id}?notice={notice}", request)


async def endpoint_delete(request: Request, v: View, fields: dict[str, str]) -> Response:
    await v.services.endpoints.delete(v.app_id, request.path_params["endpoint_id"])
    return redirect(f"{v.base}/endpoints", request)


async def endpoint_secret(request: Request, v: View) -> Response:
    """The secret, revealed on demand (a fragment); with secret-once, the rotate prompt."""
    eid = request.path_params["endpoint_id"]
    try:
        secret = await v.services.endpoints.get_secret(v.app_id, eid)
    except SecretNotShown:
        return v.page("secret_fragment.html", secret=None, endpoint_id=eid)
    return v.page("secret_fragment.html", secret=secret, endpoint_id=eid)


async def endpoint_rotate(request: Request, v: View, fields: dict[str, str]) -> Response:
    eid = request.path_params["endpoint_id"]
    grace_h = fields.get("graceHours", "24").strip() or "24"
    try:
        grace_s = int(float(grace_h) * 3600)
    except ValueError:
        raise InvalidInput("graceHours", "must be a number of hours") from None
    endpoint = await v.services.endpoints.rotate_secret(v.app_id, eid, grace_s=grace_s)
    # The new key is shown once here, whatever HOOKPOST_REVEAL_SECRETS says (as the API does).
    return v.page("secret_fragment.html", secret=endpoint.secret, endpoint_id=eid, rotated=True)


async def endpoint_test(request: Request, v: View, fields: dict[str, str]) -> Response:
    eid = request.path_params["endpoint_id"]
    event_type = fields.get("eventType", "").strip()
    if not event_type:
        raise InvalidInput("eventType", "choose an event type")
    message = await v.services.messages.send_example(v.app_id, eid, event_type)
    return redirect(f"{v.base}/messages/{message.id}", request)


async def endpoint_recover(request: Request, v: View, fields: dict[str, str]) -> Response:
    """Recover (failed deliveries again) or replay missing messages of a time range."""
    eid = request.path_params["endpoint_id"]
    since = parse_time(fields.get("since", ""), "since")
    until = parse_time(fields.get("until", ""), "until")
    if since is None:
        since = int(time.time() * 1000) - 24 * 3600 * 1000
    tasks = v.services.tasks
    if fields.get("kind") == "replay-missing":
        task = await tasks.replay_missing(v.app_id, eid, since, until)
    else:
        task = await tasks.recover(v.app_id, eid, since, until)
    return redirect(f"{v.base}/tasks/{task.id}", request)


E = "/endpoints/{endpoint_id}"
ROUTES = (
    ("/endpoints", endpoints_list, ["GET"]),
    ("/endpoints/new", endpoint_new, ["GET"]),
    ("/endpoints/new", endpoint_create, ["POST"]),
    (E, endpoint_detail, ["GET"]),
    (E + "/attempts", endpoint_attempts, ["GET"]),
    (E + "/edit", endpoint_edit, ["GET"]),
    (E + "/edit", endpoint_update, ["POST"]),
    (E + "/disable", endpoint_disable, ["POST"]),
    (E + "/enable", endpoint_enable, ["POST"]),
    (E + "/delete", endpoint_delete, ["POST"]),
    (E + "/secret", endpoint_secret, ["GET"]),
    (E + "/rotate", endpoint_rotate, ["POST"]),
    (E + "/test", endpoint_test, ["POST"]),
    (E + "/recover", endpoint_recover, ["POST"]),
)
