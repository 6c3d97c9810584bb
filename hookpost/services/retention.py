"""Retention: erase expired payloads and delete messages beyond the horizon, in the background
(a worker's task) or once (``hookpost cleanup``). The rule is ``domain.retention``; the stores
apply it a batch per short transaction, and a pause between batches lets claims and sends in.
"""

from __future__ import annotations

import asyncio
import logging

from hookpost.domain.retention import CleanupCounts, RetentionPolicy
from hookpost.services.common import Clock, now_ms
from hookpost.store.base import Retention

log = logging.getLogger("hookpost.retention")

CLEANUP_BATCH = 500  # messages per transaction
CLEANUP_PAUSE_S = 0.02  # between two batches: the write lock (SQLite) is free meanwhile
CLEANUP_EVERY_S = 300.0  # how often a worker process runs a cleanup


class RetentionService:
    def __init__(
        self,
        store: Retention,
        policy: RetentionPolicy,
        clock: Clock = now_ms,
        *,
        batch: int = CLEANUP_BATCH,
        pause_s: float = CLEANUP_PAUSE_S,
    ) -> None:
        self._store = store
        self.policy = policy
        self._clock = clock
        self.batch = batch
        self.pause_s = pause_s

    async def cleanup(
        self, older_than_ms: int | None = None, dry_run: bool = False
    ) -> CleanupCounts:
        """Erase the expired payloads, and delete the messages created more than
        ``older_than_ms`` ago (default: the policy's horizon; None there too: none). With
        ``dry_run``, only count. Skipped (nothing done, zero counts) when another process's
        cleanup is running."""
        now = self._clock()
        if older_than_ms is not None:
            before: int | None = now - older_than_ms
        else:
            before = self.policy.horizon_ms(now)
        if before is not None:
            before = max(before, 0)  # ids encode no time before the epoch
        if dry_run:
            return await self._store.count_cleanup(now, before)
        done = CleanupCounts()
        async with self._store.cleanup_turn() as mine:
            if not mine:
                log.debug("another process is cleaning up")
                return done
            while (erased := await self._store.erase_expired_payloads(now, self.batch)) > 0:
                done.payloads += erased
                await self._pause()
            after: str | None = None
            while before is not None:
                deleted, after = await self._store.delete_old_messages(before, self.batch, after)
                done.add(deleted)
                if after is None:
                    break
                await self._pause()
            if before is not None:
                done.tasks = await self._store.delete_finished_tasks(before)
            done.tokens = await self._store.delete_expired_tokens(now)
        return done

    async def _pause(self) -> None:
        await asyncio.sleep(self.pause_s)

    async def cleanup_forever(self, every_s: float = CLEANUP_EVERY_S) -> None:
        """``cleanup`` every ``every_s`` seconds until cancelled (a worker's task)."""
        while True:
            try:
                done = await self.cleanup()
            except Exception:  # tried again next time
                log.warning("retention cleanup failed", exc_info=True)
            else:
                if done.payloads or done.messages or done.tasks or done.tokens:
                    log.info(
                        "retention: erased %d payloads; deleted %d messages, %d deliveries, "
                        "%d attempts, %d finished tasks, %d expired tokens",
                        done.payloads,
                        done.messages,
                        done.deliveries,
                        done.attempts,
                        done.tasks,
                        done.tokens,
                    )
            await asyncio.sleep(every_s)
