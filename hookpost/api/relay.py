"""The relay hub: which ``hookpost listen`` is connected to which relay, in this API process.

A listener holds one server-sent-events stream (``routes/relay.py``). A delivery POSTed to the
relay route is handed to the relay's listener as a ``delivery`` event and waits for the
listener's ``reply`` (its local receiver's answer), which becomes the route's answer and so
the attempt's result. Nothing durable is held here: a delivery the hub cannot answer for is
answered 5xx and stays queued in the store (docs/decisions/0042).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

KEEPALIVE_S = 15.0  # a comment line this often: proxies keep the stream, dead peers show


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ListenerGone(Exception):
    """The listener disconnected (or was replaced) before it answered."""


def sse_frame(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def relay_wait_s(request_timeout_s: float) -> float:
    """How long the relay waits for a listener's reply: a little less than the worker waits
    for the relay, so the attempt records the relay's answer rather than a timeout."""
    return request_timeout_s - min(1.0, request_timeout_s / 4)


class Listener:
    """One connected ``hookpost listen``: the frames to stream to it and its open requests."""

    def __init__(self, token: str, app_id: str, endpoint_id: str, uid: str | None, wait_s: float):
        self.token = token
        self.app_id = app_id
        self.endpoint_id = endpoint_id
        self.uid = uid
        self.wait_s = wait_s
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.pending: dict[str, asyncio.Future[Reply]] = {}
        self.closed = False

    def names(self, app_id: str, endpoint: str) -> bool:
        return app_id == self.app_id and endpoint in (self.endpoint_id, self.uid)

    def close(self, frame: bytes | None = None) -> None:
        """Stop the stream (after ``frame``, if given) and fail the requests still open."""
        if self.closed:
            return
        self.closed = True
        if frame is not None:
            self.frames.put_nowait(frame)
        self.frames.put_nowait(None)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ListenerGone())


class RelayHub:
    """The listeners of this process, by relay token; the newest connection of a relay wins."""

    def __init__(self) -> None:
        self._listeners: dict[str, Listener] = {}
        self._requests: dict[str, Listener] = {}  # request id -> the listener it went to

    def attach(self, listener: Listener) -> None:
        old = self._listeners.get(listener.token)
        if old is not None:
            old.close(sse_frame("replaced", {"detail": "another listener took over this relay"}))
        self._listeners[listener.token] = listener

    def detach(self, listener: Listener) -> None:
        if self._listeners.get(listener.token) is listener:
            del self._listeners[listener.token]
        listener.close()

    def listener(self, token: str) -> Listener | None:
        return self._listeners.get(token)

    async def forward(self, listener: Listener, headers: Mapping[str, str], body: bytes) -> Reply:
        """Hand a delivery to ``listener`` and wait for its reply (502 if it goes away first,
        504 if it does not answer in time)."""
        if listener.closed:  # went away while the request's body was read
            return Reply(502, b"hookpost listen disconnected before it answered")
        request_id = secrets.token_urlsafe(16)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        listener.pending[request_id] = future
        self._requests[request_id] = listener
        try:
            listener.frames.put_nowait(
                sse_frame(
                    "delivery",
                    {
                        "requestId": request_id,
                        "headers": dict(headers),
                        "body": base64.b64encode(body).decode(),
                    },
                )
            )
            return await asyncio.wait_for(future, listener.wait_s)
        except ListenerGone:
            return Reply(502, b"hookpost listen disconnected before it answered")
        except TimeoutError:
            return Reply(
                504, f"no answer from hookpost listen within {listener.wait_s:g}s".encode()
            )
        finally:
            del listener.pending[request_id]
            del self._requests[request_id]

    def reply(self, request_id: str, app_id: str, endpoint: str, reply: Reply) -> bool:
        """Answer an open request of the listener of ``endpoint`` of ``app_id``; False when
        there is none (it timed out, its listener went away, or it is another relay's)."""
        listener = self._requests.get(request_id)
        if listener is None or not listener.names(app_id, endpoint):
            return False
        future = listener.pending[request_id]
        if future.done():
            return False
        future.set_result(reply)
        return True
