"""Background tasks: created by the API (recover, replays, usage stats, purges), run once by
a worker's ``TaskRunner`` (docs/decisions/0034-background-tasks.md)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hookpost.domain import ids
from hookpost.domain import tasks as t
from hookpost.domain.errors import HookpostError, InvalidInput
from hookpost.domain.filters import Payload, stored_filter
from hookpost.domain.limits import check_recover_range
from hookpost.domain.matching import filters_match
from hookpost.domain.models import BackgroundTask, DeliveryStatus, Page, PageRequest
from hookpost.domain.operational import iso, task_finished
from hookpost.services.common import Clock, now_ms
from hookpost.services.poller import Poller
from hookpost.store.base import Store

log = logging.getLogger("hookpost.tasks")

# Messages looked at per read of replay-missing.
SCAN_ROWS = 500
Work = Callable[["TaskService", BackgroundTask], Awaitable[dict[str, Any]]]


async def create_task(store: Store, kind: str, params: dict[str, Any], now: int) -> BackgroundTask:
    """Write a running task: a worker picks it up (woken by the store)."""
    task = BackgroundTask(ids.new_id(ids.TASK, now), kind, t.RUNNING, now, {}, params, now)
    await store.create_task(task)
    return task


class TaskService:
    def __init__(self, store: Store, clock: Clock = now_ms) -> None:
        self._store = store
        self._clock = clock

    async def get(self, task_id: str) -> BackgroundTask:
        return await self._store.get_task(task_id)

    async def list(
        self, page: PageRequest, status: str | None = None, kind: str | None = None
    ) -> Page[BackgroundTask]:
        return await self._store.list_tasks(page, status, kind)

    # -- creating ------------------------------------------------------------------------------
    async def _endpoint_task(
        self,
        kind: str,
        app_id: str,
        endpoint_id: str,
        since_ms: int,
        until_ms: int | None,
        **extra: Any,
    ) -> BackgroundTask:
        endpoint = await self._store.get_endpoint(app_id, endpoint_id)  # 404 before 422
        now = self._clock()
        check_recover_range(since_ms, until_ms, now)
        params = {
            "appId": endpoint.app_id,
            "endpointId": endpoint.id,
            "since": since_ms,
            "until": until_ms,
            **extra,
        }
        return await create_task(self._store, kind, params, now)

    async def recover(
        self, app_id: str, endpoint_id: str, since_ms: int, until_ms: int | None = None
    ) -> BackgroundTask:
        """Queue again the endpoint's failed and canceled deliveries of messages created in
        [since, until): a task (``since`` at most RECOVER_MAX_AGE_DAYS ago)."""
        return await self._endpoint_task(t.RECOVER, app_id, endpoint_id, since_ms, until_ms)

    async def replay_missing(
        self, app_id: str, endpoint_id: str, since_ms: int, until_ms: int | None = None
    ) -> BackgroundTask:
        """Send the endpoint the messages of [since, until) it never had a delivery of, of
        those that match it now (its filters as fan-out applies them)."""
        return await self._endpoint_task(t.REPLAY_MISSING, app_id, endpoint_id, since_ms, until_ms)

    async def bulk_replay(
        self,
        app_id: str,
        endpoint_id: str,
        since_ms: int,
        until_ms: int | None = None,
        statuses: Sequence[DeliveryStatus] | None = None,
        event_types: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> BackgroundTask:
        """Send the endpoint again its deliveries of [since, until) (of those ``statuses``
        and ``event_types`` if given); ``dry_run``: only count them (the task's data)."""
        final = [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELED]
        chosen = final if statuses is None else [s for s in final if s in statuses]
        return await self._endpoint_task(
            t.BULK_REPLAY,
            app_id,
            endpoint_id,
            since_ms,
            until_ms,
            statuses=[int(s) for s in chosen],
            eventTypes=None if event_types is None else list(event_types),
            dryRun=dry_run,
        )

    async def app_usage(
        self, since_ms: int, until_ms: int, app_ids: Sequence[str] | None = None
    ) -> tuple[BackgroundTask, builtins.list[str]]:
        """Deliveries per application of messages created in [since, until): a task, and the
        ``app_ids`` (ids or uids) that name no application (InvalidInput if all of them)."""
        if until_ms <= since_ms:
            raise InvalidInput("until", "must be later than 'since'")
        resolved: builtins.list[str] | None = None
        unresolved: builtins.list[str] = []
        if app_ids is not None:
            resolved = []
            for wanted in app_ids:
                try:
                    resolved.append((await self._store.get_app(wanted)).id)
                except HookpostError:
                    unresolved.append(wanted)
            if app_ids and not resolved:
                raise InvalidInput("appIds", "none of these applications exists")
        params = {"since": since_ms, "until": until_ms, "appIds": resolved}
        return await create_task(self._store, t.APP_STATS, params, self._clock()), unresolved

    async def aggregate_event_types(self) -> BackgroundTask:
        """Per application, the event types its endpoints subscribe to: a task."""
        return await create_task(self._store, t.EVENT_TYPES_AGGREGATE, {}, self._clock())

    async def expunge_all_contents(self, app_id: str) -> BackgroundTask:
        """Expunge every message of the application: a task."""
        app = await self._store.get_app(app_id)
        return await create_task(self._store, t.PURGE_CONTENT, {"appId": app.id}, self._clock())

    # -- running -------------------------------------------------------------------------------
    async def run_one(self, lease_ms: int = t.LEASE_MS) -> bool:
        """Claim one task and run it to its end: False if there was none to claim."""
        lease = secrets.token_hex(8)
        task = await self._store.claim_task(lease, lease_ms, self._clock())
        if task is None:
            return False
        renewer = asyncio.create_task(self._renew(task.id, lease, lease_ms))
        try:
            status, data = t.FINISHED, await WORK[task.task](self, task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # else its lease runs out
                await self._store.release_task(task.id, lease)
            raise
        except Exception as exc:
            # A domain error (its endpoint deleted...) will not go away; anything else is tried
            # again once the lease expires, up to MAX_RUNS runs.
            if not isinstance(exc, HookpostError) and task.runs < t.MAX_RUNS:
                log.warning("background task %s failed; tried again later", task.id, exc_info=True)
                return True
            log.warning("background task %s failed", task.id, exc_info=True)
            status, data = t.FAILED, {"error": str(exc)}
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        now = self._clock()
        event = task_finished(task.id, task.task, status, data, now)
        if not await self._store.finish_task(task.id, lease, status, data, now, [event]):
            log.warning("background task %s: lease lost before it finished", task.id)
        return True

    async def _renew(self, task_id: str, lease: str, lease_ms: int) -> None:
        while True:
            await asyncio.sleep(lease_ms / 3000)
            try:
                await self._store.renew_task(task_id, lease, lease_ms, self._clock())
            except Exception:  # the next renewal may work; the lease outlasts two misses
                log.warning("could not renew background task %s", task_id, exc_info=True)

    # -- the work of each kind -------------------------------------------------------------------
    async def _recover(self, task: BackgroundTask) -> dict[str, Any]:
        p = task.params
        sent = await self._store.recover(
            p["appId"], p["endpointId"], p["since"], p["until"], self._clock()
        )
        until = p["until"]
        return {
            "messages_sent": sent,
            "endp_id": p["endpointId"],
            "since": iso(p["since"]),
            "until": None if until is None else iso(until),
        }

    async def _replay_missing(self, task: BackgroundTask) -> dict[str, Any]:
        p = task.params
        endpoint = await self._store.get_endpoint(p["appId"], p["endpointId"])
        payload_filter = stored_filter(endpoint.payload_filter)
        sent = 0
        after: str | None = None
        while True:
            batch = await self._store.messages_missing(
                endpoint.app_id,
                endpoint.id,
                p["since"],
                p["until"],
                after,
                SCAN_ROWS,
                payload_filter is not None,
            )
            chosen = [
                m.id
                for m in batch
                if filters_match(
                    endpoint.event_types,
                    endpoint.channels,
                    m.event_type,
                    m.channels,
                    payload_filter,
                    Payload(m.payload),
                )
            ]
            if chosen:
                sent += await self._store.queue_missing(
                    endpoint.app_id, endpoint.id, chosen, self._clock()
                )
            if len(batch) < SCAN_ROWS:
                return {"messagesSent": sent}
            after = batch[-1].id

    async def _bulk_replay(self, task: BackgroundTask) -> dict[str, Any]:
        p = task.params
        selection = t.ReplayRange(
            p["appId"],
            p["endpointId"],
            p["since"],
            p["until"],
            [DeliveryStatus(s) for s in p["statuses"]],
            p["eventTypes"],
            task.created_at,
        )
        count = await self._store.replay_deliveries(selection, self._clock(), p["dryRun"])
        if p["dryRun"]:
            return {"dryRun": True, "messagesMatched": count}
        return {"messagesSent": count}

    async def _app_stats(self, task: BackgroundTask) -> dict[str, Any]:
        p = task.params
        rows = await self._store.app_usage(p["appIds"], p["since"], p["until"])
        stats = [{"messageDestinations": n, "appId": a, "appUid": uid} for a, uid, n in rows]
        return {"appStats": stats}

    async def _event_types(self, _task: BackgroundTask) -> dict[str, Any]:
        subscriptions = await self._store.endpoint_subscriptions()
        return {"event_types": t.event_types_aggregate(subscriptions)}

    async def _purge_content(self, task: BackgroundTask) -> dict[str, Any]:
        return {"messagesPurged": await self._store.expunge_all_contents(task.params["appId"])}


async def _unsupported(_service: TaskService, task: BackgroundTask) -> dict[str, Any]:
    raise InvalidInput("task", f"hookpost does not run {task.task} tasks")


WORK: dict[str, Work] = {
    t.RECOVER: TaskService._recover,
    t.REPLAY_MISSING: TaskService._replay_missing,
    t.BULK_REPLAY: TaskService._bulk_replay,
    t.APP_STATS: TaskService._app_stats,
    t.EVENT_TYPES_AGGREGATE: TaskService._event_types,
    t.PURGE_CONTENT: TaskService._purge_content,
}
for _kind in t.KINDS:
    WORK.setdefault(_kind, _unsupported)


WAKE_GAP_S = 0.2  # the least time between two checks for tasks


class TaskRunner(Poller):
    """A worker's loop over background tasks: one at a time, woken by the store's new-work
    signal (a task created in any process) or every ``poll_s``."""

    def __init__(self, service: TaskService, poll_s: float, lease_ms: int = t.LEASE_MS) -> None:
        super().__init__(
            "hookpost-tasks",
            lambda: service.run_one(lease_ms),
            poll_s,
            log,
            "could not run background tasks",
            # The signal comes with every message too: a task claim (a write transaction on
            # SQLite) per message would compete with the deliveries, so check at most this often.
            min_gap_s=WAKE_GAP_S,
        )
