"""Idempotency keys on POST.

A request's first answer under an ``idempotency-key`` stands for 24 hours, scoped by the
caller's token and the route (its operation and resolved path parameters: ``/msg``, ``/msg/``
and the uid spelling are one route): a repeat gets that answer without the request running
again. A send (``POST /msg``) records the key with the message it creates, in the message's
own write, and a repeat is answered with that message; any other answer is stored as its
status and body, sealed with the main key (some hold a new secret or a live token). Expired
keys are deleted in the background, and an application's stored answers with it.
5xx answers and 401s are not stored, so a retry runs. While a request runs under a key, a
repeat in this process waits for it; across processes the answer stored first wins.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from types import TracebackType

from hookpost.domain.queries import CreatedMessage, IdempotencyKey, KeyAnswer
from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Idempotency

log = logging.getLogger("hookpost.api")

IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
PURGE_BATCH = 1000  # expired keys deleted per transaction
PURGE_EVERY_S = 300.0  # how often a worker process deletes expired keys
MAX_KEY_LENGTH = 256  # longer keys are stored by their hash


class IdempotencyService:
    """The keys, and the ones held by a running request (one map per process)."""

    def __init__(self, store: Idempotency, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock
        self._in_flight: dict[tuple[str, str], asyncio.Future[None]] = {}

    async def purge_expired(self, batch: int = PURGE_BATCH) -> int:
        """Delete the expired keys, a batch per transaction: how many."""
        now = self._clock()
        total = 0
        while (deleted := await self._store.purge_expired_keys(now, batch)) > 0:
            total += deleted
            if deleted < batch:
                break
        return total

    async def purge_forever(self, every_s: float = PURGE_EVERY_S) -> None:
        """Delete expired keys every ``every_s`` seconds until cancelled (a worker's task):
        expired answers are never read again, and some hold what was sent or minted."""
        while True:
            try:
                purged = await self.purge_expired()
            except Exception:  # tried again next time
                log.warning("could not delete expired idempotency keys", exc_info=True)
            else:
                if purged:
                    log.debug("deleted %d expired idempotency keys", purged)
            await asyncio.sleep(every_s)

    def hold(self, token_id: str, route: str, raw_key: bytes, app_id: str | None = None) -> HeldKey:
        """The key ``raw_key`` of a request by ``token_id`` to ``route`` (its operation and
        resolved path parameters: see ``route_slot``, so that each spelling of a path is one
        slot); ``async with`` it while the request runs. ``app_id``: the application the
        route resolved, whose deletion deletes the key's answer."""
        key = raw_key.decode("latin-1")
        if len(key) > MAX_KEY_LENGTH:
            key = "sha256:" + hashlib.sha256(raw_key).hexdigest()
        return HeldKey(self, token_id, key, route, app_id)


class HeldKey:
    """One request's idempotency key. Entered, it is held: a repeat waits until it is left.

    ``checked``: the key was looked up, by :meth:`earlier` or by the message's write (a send
    leaves it to the write: one store round trip instead of two). ``answered``: the request's
    answer is settled (stored, or an earlier one found that the request must send instead).
    """

    __slots__ = (
        "_done",
        "_raw",
        "_service",
        "_slot",
        "answered",
        "app_id",
        "checked",
        "key",
        "scope",
    )

    def __init__(
        self, service: IdempotencyService, scope: str, raw: str, route: str, app_id: str | None
    ) -> None:
        self._service = service
        self.scope = scope
        self._raw = raw
        self.key = f"{route} {raw}"
        self.app_id = app_id
        self._slot = (scope, self.key)  # the in-flight map's, kept when rescoped
        self.checked = False
        self.answered = False
        self._done: asyncio.Future[None] | None = None

    def rescope(self, route: str, app_id: str) -> None:
        """The request created the application its path named (a send with ``application``):
        the key is recorded under the route as it now resolves, where a repeat looks."""
        self.key = f"{route} {self._raw}"
        self.app_id = app_id

    async def __aenter__(self) -> HeldKey:
        in_flight = self._service._in_flight
        slot = self._slot
        while (running := in_flight.get(slot)) is not None:
            await asyncio.shield(running)
        # Taken before any await of this request: a repeat arriving meanwhile waits for it.
        self._done = in_flight[slot] = asyncio.get_running_loop().create_future()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        del self._service._in_flight[self._slot]
        assert self._done is not None
        self._done.set_result(None)

    async def earlier(self) -> KeyAnswer | None:
        """What the key holds, if it was not looked up yet (None otherwise). An answer found
        is the request's: it must send that instead of running."""
        if self.checked:
            return None
        self.checked = True
        service = self._service
        found = await service._store.get_idempotent(self.scope, self.key, service._clock())
        if found is not None:
            self.answered = True
        return found

    def for_message(self, now: int) -> IdempotencyKey:
        """The key as a send records it with its message (``Messages.create_message``)."""
        return IdempotencyKey(self.scope, self.key, now + IDEMPOTENCY_TTL_MS)

    def written(self, created: CreatedMessage) -> None:
        """The message's write checked the key, and recorded it if the message was created."""
        self.checked = True
        if created.created or created.replayed is not None:
            self.answered = True

    async def keep(self, status: int, body: bytes) -> KeyAnswer | None:
        """Store the request's answer under the key, unless it is settled already or not one
        to keep. Returns the answer stored first, which the request sends instead: the key
        was not looked up before, or another process answered it meanwhile."""
        if self.answered or status >= 500 or status == 401:
            return None
        self.answered = True
        service = self._service
        try:
            earlier = await self.earlier()
            if earlier is None:
                now = service._clock()
                expires_at = now + IDEMPOTENCY_TTL_MS
                earlier = await service._store.put_idempotent(
                    self.scope, self.key, status, body, expires_at, now, app_id=self.app_id
                )
        except Exception:  # the request itself was done: it is answered anyway
            log.warning("could not store an idempotent response", exc_info=True)
            return None
        return earlier
