"""Idempotency keys on POST, at the ASGI level: the rules are ``services.idempotency``'s.

:class:`IdempotencyMiddleware` holds the key of every keyed POST that reaches the middleware
stack, answers a repeat with what the key holds, and stores the answer of a request whose
route did not settle its key itself. The ``POST /msg`` front door (``routes.messages``) holds
keys through the same service, so a repeat waits for the first whichever way each came in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookpost.api.asgi import no_receive, scope_header
from hookpost.api.auth import authenticate_scope
from hookpost.api.errors import response_for, send_known_error
from hookpost.api.routes.common import ApiState
from hookpost.domain.queries import KeyAnswer, SentMessage, StoredAnswer

REPLAYED = {"idempotent-replayed": "true"}
# The ASGI scope key under which the middleware hands the held key down to the route.
HELD_KEY = "hookpost.idempotency"

# Renders the answer to a repeat of a send's key (the message it created).
SentRenderer = Callable[[SentMessage], Awaitable[Response]]


def route_slot(operation: str, params: dict[str, Any]) -> str:
    """The slot of an idempotency key: the route's operation and its path parameters."""
    return " ".join([operation, *(f"{k}={params[k]}" for k in sorted(params))])


def post_routes(routes: Sequence[BaseRoute]) -> list[tuple[str, BaseRoute]]:
    """(operation id, route as mounted) of each POST route of an app's route table."""
    found = []
    for context in iter_route_contexts(routes):
        original = context.original_route
        if isinstance(original, APIRoute) and "POST" in (original.methods or ()):
            found.append((str(original.operation_id or original.path), context.route))
    return found


async def resolve_route(
    api: ApiState, routes: list[tuple[str, BaseRoute]], scope: Scope
) -> tuple[str, str | None]:
    """The slot of a keyed request's route, with its application id resolved (None if the
    path names none, or none that exists: the route answers that), and that id. A path no
    route matches (a redirect of ``/x/`` to ``/x``, a 404) is its own slot."""
    for operation, route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        params = dict(child.get("path_params", {}))
        app_id = None
        if "app_id" in params:
            try:
                app_id = await api.hp.services.apps.resolve(params["app_id"])
            except Exception:  # not found, or the store failing: the route answers it
                app_id = None
            else:
                params["app_id"] = app_id
        return route_slot(operation, params), app_id
    return route_slot("path", {"path": scope["path"]}), None


async def replay(answer: KeyAnswer, render_sent: SentRenderer) -> Response:
    """What a key holds as the response to a repeat, marked ``idempotent-replayed: true``.
    Rendering a send's message may fail like any read (404 once its application is deleted,
    503): that is answered as usual, and not stored."""
    if isinstance(answer, StoredAnswer):
        return replay_response(answer)
    try:
        return await render_sent(answer)
    except Exception as exc:
        known = response_for(exc)
        if known is None:
            raise
        return known


def replay_response(answer: StoredAnswer) -> Response:
    """A stored answer, as it was."""
    status, body = answer.status, answer.body
    if status in (204, 304):
        body = b""
    return Response(
        body,
        status_code=status,
        headers=REPLAYED,
        media_type="application/json" if body else None,
    )


class IdempotencyMiddleware:
    """``idempotency-key`` on any POST that reaches the middleware stack. Without a valid
    token the request goes on, and the route answers 401. ``render_sent`` renders a send's
    message for a repeat of its key (``POST /msg``, the only route whose keys hold one)."""

    def __init__(
        self,
        app: ASGIApp,
        app_state: Any,
        render_sent: Callable[[ApiState, Scope, SentMessage], Awaitable[Response]],
    ) -> None:
        self.app = app
        self.state = app_state  # authenticator and runtime are attached at start-up
        self.render_sent = render_sent
        self._routes: list[tuple[str, BaseRoute]] | None = None  # the app's, once it serves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw_key = scope_header(scope, b"idempotency-key")
        if not raw_key:
            await self.app(scope, receive, send)
            return
        api: ApiState = self.state.api
        record, answered = await authenticate_scope(api.authenticator, scope, send)
        if answered:
            return
        if record is None:  # the route answers 401
            await self.app(scope, receive, send)
            return

        async def render(sent: SentMessage) -> Response:
            return await self.render_sent(api, scope, sent)

        if self._routes is None:
            self._routes = post_routes(scope["app"].routes)
        route, app_id = await resolve_route(api, self._routes, scope)
        async with api.hp.services.idempotency.hold(record.id, route, raw_key, app_id) as key:
            try:
                earlier = await key.earlier()
            except Exception as exc:
                if await send_known_error(exc, scope, send):
                    return
                raise
            if earlier is not None:
                await (await replay(earlier, render))(scope, no_receive, send)
                return
            scope[HELD_KEY] = key  # a route that settles the key itself (POST /msg) takes it
            start: Message | None = None
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                nonlocal start
                if message["type"] == "http.response.start":
                    start = message
                    return
                if message["type"] != "http.response.body" or start is None:
                    await send(message)
                    return
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                earlier = await key.keep(int(start["status"]), body)
                if earlier is not None:
                    await (await replay(earlier, render))(scope, no_receive, send)
                    return
                await send(start)
                await send({"type": "http.response.body", "body": body})

            await self.app(scope, receive, capture)
