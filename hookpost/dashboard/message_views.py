"""Message log, message detail with its attempts, resend, background tasks, the event catalog
and stats. Every read names ``v.app_id``."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hookpost.dashboard import series
from hookpost.dashboard.endpoint_views import catalog
from hookpost.dashboard.views import View, next_iterator
from hookpost.dashboard.web import parse_time, redirect
from hookpost.domain.errors import InvalidInput, NotFound
from hookpost.domain.inputs import AttemptQuery
from hookpost.domain.models import AttemptStatus, PageRequest
from hookpost.domain.queries import MessageFilter

STATUSES = {"success": AttemptStatus.SUCCESS, "fail": AttemptStatus.FAIL}


def pretty(payload: bytes) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload.decode("utf-8", "replace")


async def messages_list(request: Request, v: View) -> Response:
    q = request.query_params
    event_type = q.get("eventType", "").strip()
    channel = q.get("channel", "").strip()
    status = q.get("status", "")
    event_types = [event_type] if event_type else None
    filt = MessageFilter(
        event_types=event_types,
        channel=channel or None,
        after=parse_time(q.get("since", ""), "since"),
        before=parse_time(q.get("until", ""), "until"),
    )
    page_req = PageRequest(limit=50, iterator=q.get("iterator") or None, descending=True)
    if status:  # by the outcome of their attempts: the attempt log, filtered
        if status not in STATUSES:
            raise InvalidInput("status", "must be success or fail")
        query = AttemptQuery(
            statuses=frozenset({STATUSES[status]}),
            event_types=event_types,
            after=filt.after,
            before=filt.before,
            channel=filt.channel,
        )
        attempts = await v.services.messages.list_attempts(v.app_id, page_req, query)
        return v.page(
            "messages.html",
            messages=None,
            attempts=attempts.items,
            q=q,
            more=next_iterator(attempts),
            catalog=await catalog(v),
        )
    page = await v.services.messages.list(v.app_id, page_req, filt, with_content=False)
    return v.page(
        "messages.html",
        messages=page.items,
        attempts=None,
        q=q,
        more=next_iterator(page),
        catalog=await catalog(v),
    )


async def message_detail(request: Request, v: View) -> Response:
    messages = v.services.messages
    message = await messages.get(v.app_id, request.path_params["message_id"])
    destinations = await messages.destinations(v.app_id, message.id, PageRequest(limit=100))
    return v.page(
        "message.html",
        message=message,
        payload=None if message.expunged else pretty(message.payload),
        destinations=destinations.items,
    )


async def message_attempts(request: Request, v: View) -> Response:
    """The message's attempts, newest first, each with the headers it sent: a fragment the
    message page polls."""
    messages = v.services.messages
    message = await messages.get(v.app_id, request.path_params["message_id"])
    page = await messages.list_attempts(
        v.app_id, PageRequest(limit=100, descending=True), AttemptQuery(message=message.id)
    )
    headers = {a.id: messages.headers_of(a) for a in page.items}
    return v.page("attempts_fragment.html", attempts=page.items, headers=headers)


async def message_resend(request: Request, v: View, fields: dict[str, str]) -> Response:
    message_id = request.path_params["message_id"]
    endpoint_id = fields.get("endpointId", "")
    if not endpoint_id:
        raise InvalidInput("endpointId", "is required")
    await v.services.messages.resend(v.app_id, message_id, endpoint_id)
    return redirect(f"{v.base}/messages/{message_id}", request)


async def task_detail(request: Request, v: View) -> Response:
    task_id = request.path_params["task_id"]
    task = await v.services.tasks.get(task_id)
    if task.params.get("appId") != v.app_id:  # another application's task: as if unknown
        raise NotFound("task", task_id)
    return v.page("task.html", task=task, data=json.dumps(task.data, indent=2))


async def catalog_page(request: Request, v: View) -> Response:
    types = [t for t in await catalog(v) if not t.archived]
    return v.page("catalog.html", event_types=types, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


async def stats_page(request: Request, v: View) -> Response:
    return v.page("stats.html", **await _stats(request, v))


async def stats_live(request: Request, v: View) -> Response:
    return v.page("stats_fragment.html", **await _stats(request, v))


async def _stats(request: Request, v: View) -> dict[str, Any]:
    """The stats service's figures (hourly rollups), never a scan of the attempts."""
    data = await series.app_stats(v.services, v.app_id, request.query_params.get("range", "24h"))
    return {
        "stats": data,
        "chart": data.chart.as_json(),
        "ranges": series.RANGES,
        "rate": series.rate,
    }


M = "/messages/{message_id}"
ROUTES = (
    ("/messages", messages_list, ["GET"]),
    (M, message_detail, ["GET"]),
    (M + "/attempts", message_attempts, ["GET"]),
    (M + "/resend", message_resend, ["POST"]),
    ("/tasks/{task_id}", task_detail, ["GET"]),
    ("/catalog", catalog_page, ["GET"]),
    ("/stats", stats_page, ["GET"]),
    ("/stats/live", stats_live, ["GET"]),
)
