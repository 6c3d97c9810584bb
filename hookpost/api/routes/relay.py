"""The relay behind ``hookpost listen`` (docs/listen.md, docs/decisions/0042).

* ``POST /api/v1/app/{app_id}/relay``: create (or reuse, by uid) the app's relay endpoint;
* ``GET /api/v1/app/{app_id}/relay/{endpoint_id}/events``: the listener's event stream;
* ``POST /api/v1/app/{app_id}/relay/{endpoint_id}/reply``: the listener's answer to a delivery;
* ``POST /api/v1/relay/{token}``: where the worker delivers (no bearer token: the random token
  in the URL is the capability). 503 while no listener is connected here: the delivery stays
  queued and is retried like any other.

They are hookpost's own protocol with its own client, so they stay out of the OpenAPI
document; the first three need a token that may manage the application's endpoints.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib

from fastapi import APIRouter, Path, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hookpost.api.errors import error_response
from hookpost.api.relay import KEEPALIVE_S, Listener, RelayHub, Reply, relay_wait_s, sse_frame
from hookpost.api.routes.common import (
    AppId,
    AppScope,
    EndpointId,
    StrictJsonRoute,
    app_scope,
    authenticated,
    empty,
    json_response,
)
from hookpost.api.schemas.relay import RelayIn, RelayReplyIn
from hookpost.domain.errors import Conflict, InvalidInput, NotFound, SecretNotShown
from hookpost.domain.inputs import EndpointChanges, NewEndpoint
from hookpost.domain.models import Endpoint
from hookpost.domain.permissions import Permission
from hookpost.domain.relay import (
    RELAY_RETRY_POLICY,
    TOKEN_PATTERN,
    new_relay_token,
    relay_token,
    relay_url,
)
from hookpost.domain.signing import shown_key

router = APIRouter(tags=["Relay"], route_class=StrictJsonRoute, include_in_schema=False)

# Not passed on to the listener: hop-by-hop, or the relay's own connection's.
DROPPED_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "expect", "te"}
)


def hub_of(request: Request) -> RelayHub:
    hub: RelayHub = request.app.state.relay_hub
    return hub


async def _scope(request: Request, app_id: str) -> AppScope:
    """401, then the application (404 for another tenant's), then the permission (403)."""
    ctx = await authenticated(request.app.state.api, request.headers, Permission.MANAGE_ENDPOINTS)
    return await app_scope(ctx, app_id)


def _not_a_relay(endpoint: Endpoint) -> Conflict:
    return Conflict(f"endpoint {endpoint.uid or endpoint.id} exists and is not a relay endpoint")


@router.post("/api/v1/app/{app_id}/relay", operation_id="v1.relay.create")
async def create_relay(request: Request, app_id: AppId, body: RelayIn) -> Response:
    app = await _scope(request, app_id)
    endpoints, aid = app.services.endpoints, app.id
    base = request.app.state.hp.settings.relay_base()
    created = False
    try:
        endpoint = await endpoints.get(aid, body.uid)
    except NotFound:
        endpoint = await endpoints.create(
            aid,
            NewEndpoint(
                url=relay_url(base, new_relay_token()),
                uid=body.uid,
                description=body.description,
                event_types=body.event_types,
                retry_policy=RELAY_RETRY_POLICY,
            ),
        )
        created = True
    if relay_token(endpoint.url) is None:
        raise _not_a_relay(endpoint)
    secret: str | None = shown_key(endpoint.signature_scheme, endpoint.secret)
    if not created:
        try:
            secret = await endpoints.get_secret(aid, endpoint.id)
        except SecretNotShown:
            secret = None
    out = {"endpointId": endpoint.id, "uid": endpoint.uid, "url": endpoint.url, "secret": secret}
    return json_response({**out, "created": created}, 201 if created else 200)


@router.get("/api/v1/app/{app_id}/relay/{endpoint_id}/events", operation_id="v1.relay.events")
async def relay_events(request: Request, app_id: AppId, endpoint_id: EndpointId) -> Response:
    app = await _scope(request, app_id)
    endpoints, aid = app.services.endpoints, app.id
    settings = request.app.state.hp.settings
    endpoint = await endpoints.get(aid, endpoint_id)
    token = relay_token(endpoint.url)
    if token is None:
        raise _not_a_relay(endpoint)
    # A listener here means deliveries must come here: the relay's URL names this process's
    # relay base (several API processes, docs/listen.md), and a disabled relay is enabled.
    own = relay_url(settings.relay_base(), token)
    if endpoint.url != own or endpoint.disabled:
        endpoint = await endpoints.patch(aid, endpoint.id, EndpointChanges(url=own, disabled=False))
    wait_s = relay_wait_s(float(endpoint.timeout_s or settings.request_timeout_s))
    listener = Listener(token, aid, endpoint.id, endpoint.uid, wait_s)
    ready = {
        "endpointId": endpoint.id,
        "uid": endpoint.uid,
        "url": endpoint.url,
        # the listener's own timeout for the local request: its error is then the answer
        "timeoutMs": int(relay_wait_s(wait_s) * 1000),
    }
    return EventStream(hub_of(request), listener, sse_frame("ready", ready))


@router.post("/api/v1/app/{app_id}/relay/{endpoint_id}/reply", operation_id="v1.relay.reply")
async def relay_reply(
    request: Request, app_id: AppId, endpoint_id: EndpointId, body: RelayReplyIn
) -> Response:
    app = await _scope(request, app_id)
    aid = app.id
    try:
        content = base64.b64decode(body.body, validate=True)
    except binascii.Error:
        raise InvalidInput("body", "must be base64") from None
    if body.status is None:
        reply = Reply(502, f"hookpost listen: {body.error or 'no answer'}".encode())
    else:
        headers = {"retry-after": body.retry_after} if body.retry_after else {}
        reply = Reply(body.status, content, headers)
    if not hub_of(request).reply(body.request_id, aid, endpoint_id, reply):
        raise NotFound("relay request", body.request_id)
    return empty(204)


@router.post("/api/v1/relay/{token}", operation_id="v1.relay.deliver")
async def relay_deliver(
    request: Request, token: str = Path(pattern=f"^{TOKEN_PATTERN}$")
) -> Response:
    hub = hub_of(request)
    listener = hub.listener(token)
    if listener is None:
        return error_response(
            503,
            "no_listener",
            "no `hookpost listen` is connected to this relay here; the delivery stays "
            "queued and is retried",
        )
    body = await request.body()
    headers = {k: v for k, v in request.headers.items() if k not in DROPPED_HEADERS}
    reply = await hub.forward(listener, headers, body)
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


class EventStream(Response):
    """A ``text/event-stream`` of the listener's frames, with a keep-alive comment when idle;
    the listener is detached when the client goes away (seen by ``receive``) or the stream
    is closed by a newer listener of the same relay."""

    def __init__(self, hub: RelayHub, listener: Listener, first: bytes) -> None:
        super().__init__(media_type="text/event-stream")
        self.hub, self.listener, self.first = hub, listener, first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = self.listener
        self.hub.attach(listener)
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
                    ],
                }
            )
            frame: bytes | None = self.first
            while frame is not None:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                try:
                    frame = await asyncio.wait_for(listener.frames.get(), KEEPALIVE_S)
                except TimeoutError:
                    frame = b": keep-alive\n\n"
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write (uvicorn's ClientDisconnected)
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self.hub.detach(listener)

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.listener.close()
