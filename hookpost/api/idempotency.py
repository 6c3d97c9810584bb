"""Idempotency keys on POST.

The first response (status and body) to an ``idempotency-key`` is stored for 24 hours, scoped by
the caller's token and the path; a repeat replays it (with the header
``idempotent-replayed: true``) without executing the request again. 5xx answers and 401s are
not stored, so a retry executes. Concurrent repeats in this process wait for the first to
finish, then replay it.

:class:`IdempotentRequests` holds that logic and the in-flight map, one per app instance. Two
callers share it: :class:`IdempotencyMiddleware` for every POST in the middleware stack, and the
``POST /msg`` front door (``routes.messages``), which takes keyed sends ahead of the stack (every
send of the official SDKs carries a key). Sharing the map is what makes a repeat wait for the
first request whichever of the two each one took.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookpost.api.asgi import no_receive, scope_header
from hookpost.api.auth import authenticate_scope
from hookpost.api.errors import send_known_error
from hookpost.api.routes.common import PENDING_ANSWER, PendingAnswer
from hookpost.services.common import now_ms
from hookpost.store.base import Store

log = logging.getLogger("hookpost.api")

IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
MAX_KEY_LENGTH = 256  # longer keys are stored by their hash

# Executes the request, answering through the given send; the PendingAnswer lets it store its
# answer with its own write (see PendingAnswer).
Handler = Callable[[Send, PendingAnswer], Awaitable[None]]


class IdempotentRequests:
    """Runs requests under their idempotency keys (see the module docstring)."""

    def __init__(self) -> None:
        self._in_flight: dict[tuple[str, str], asyncio.Future[None]] = {}

    async def run(
        self,
        store: Store,
        token_id: str,
        scope: Scope,
        raw_key: bytes,
        send: Send,
        handle: Handler,
        *,
        look_up_first: bool = True,
    ) -> None:
        """Replay the stored answer to ``raw_key``, or run ``handle`` and store its answer.

        ``look_up_first`` False: the handler is run without looking the key up, for one that
        checks it with its own write (see ``PendingAnswer.checked``); an answer it did not
        store is then looked up before it is sent, and one found wins.

        A lookup failure the API knows (the database away: 503) is answered here; any other
        is raised before anything was sent."""
        key = raw_key.decode("latin-1")
        if len(key) > MAX_KEY_LENGTH:
            key = "sha256:" + hashlib.sha256(raw_key).hexdigest()
        slot = (token_id, f"{scope['path']} {key}")

        while (pending := self._in_flight.get(slot)) is not None:
            await asyncio.shield(pending)
        # Taken before the lookup's await: a repeat arriving meanwhile waits for this one.
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[slot] = done
        try:
            await _run_under_key(store, slot, scope, send, handle, look_up_first)
        finally:
            del self._in_flight[slot]
            done.set_result(None)


async def _run_under_key(
    store: Store,
    slot: tuple[str, str],
    scope: Scope,
    send: Send,
    handle: Handler,
    look_up_first: bool,
) -> None:
    async def lookup() -> tuple[int, bytes] | None:
        return await store.get_idempotent(slot[0], slot[1], now_ms())

    try:
        stored = await lookup() if look_up_first else None
    except Exception as exc:
        if await send_known_error(exc, scope, send):
            return
        raise
    if stored is not None:
        await replay_response(*stored)(scope, no_receive, send)
        return
    start: Message | None = None
    chunks: list[bytes] = []
    pending = PendingAnswer(
        slot[0], slot[1], IDEMPOTENCY_TTL_MS, checked=look_up_first, lookup=lookup
    )

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
        status = int(start["status"])
        body = b"".join(chunks)
        if not pending.stored and await _store_answer(pending, store, status, body, scope, send):
            return
        await send(start)
        await send({"type": "http.response.body", "body": body})

    await handle(capture, pending)


async def _store_answer(
    pending: PendingAnswer, store: Store, status: int, body: bytes, scope: Scope, send: Send
) -> bool:
    """Store an answer its handler did not store; True if the answer stored under the key
    first was sent instead. That happens when the key was not looked up first, or when another
    process answered the key meanwhile (the first answer wins: ``Store.put_idempotent``)."""
    if status >= 500 or status == 401:
        return False  # not stored: a retry executes
    try:
        earlier = await pending.check()
        if earlier is None:
            now = now_ms()
            earlier = await store.put_idempotent(
                pending.scope, pending.key, status, body, now + IDEMPOTENCY_TTL_MS, now
            )
    except Exception:  # the request itself was done: answer it anyway
        log.warning("could not store an idempotent response", exc_info=True)
        return False
    if earlier is None:
        return False
    await replay_response(*earlier)(scope, no_receive, send)
    return True


def replay_response(status: int, body: bytes) -> Response:
    """A stored answer, marked ``idempotent-replayed: true``."""
    if status in (204, 304):
        body = b""
    return Response(
        body,
        status_code=status,
        headers={"idempotent-replayed": "true"},
        media_type="application/json" if body else None,
    )


class IdempotencyMiddleware:
    """``idempotency-key`` on any POST that reaches the middleware stack (see the module
    docstring). Without a valid token the request goes on, and the route answers 401."""

    def __init__(self, app: ASGIApp, app_state: Any, requests: IdempotentRequests) -> None:
        self.app = app
        self.state = app_state  # authenticator and runtime are attached at start-up
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw_key = scope_header(scope, b"idempotency-key")
        if not raw_key:
            await self.app(scope, receive, send)
            return
        record, answered = await authenticate_scope(self.state.api.authenticator, scope, send)
        if answered:
            return
        if record is None:  # the route answers 401
            await self.app(scope, receive, send)
            return

        async def handle(capture: Send, pending: PendingAnswer) -> None:
            scope[PENDING_ANSWER] = pending
            await self.app(scope, receive, capture)

        await self.requests.run(self.state.hp.store, record.id, scope, raw_key, send, handle)
