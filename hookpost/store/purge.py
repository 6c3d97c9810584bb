"""Deleting an application or an endpoint a batch per transaction, shared by the backends.

A delete first flags the row ``deleted`` in one short transaction: from then on every read
hides it, its uid is free again, and its endpoints are disabled, so nothing more is queued for
them and a claim cancels what was queued instead of sending it. Its rows are then deleted
``batch_rows`` at a time, children first, and the flagged row last (its cascade takes whatever
was written meanwhile), so that a big application never holds the write lock for long. If that
is interrupted (a crash), the row stays flagged and hidden, and ``purge_deleted`` finishes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from hookpost.domain.operational import OperationalEvent

BATCH_ROWS = 1000  # rows per transaction of a batched write (deletes, recover)

# (table, column): the rows whose ``column`` holds the deleted row's id, in deletion order.
ENDPOINT_ROWS = (("attempts", "endpoint_id"), ("deliveries", "endpoint_id"))
# After each of its endpoints' rows; message_traces has no foreign key (0035-tracing).
APP_ROWS = (("message_traces", "app_id"), ("messages", "app_id"))


class BatchedDeletes:
    """``delete_app``, ``delete_endpoint`` and ``purge_deleted`` over each backend's steps."""

    batch_rows: int  # the backend's: BATCH_ROWS unless changed (tests make it small)

    # -- each backend's steps ------------------------------------------------------------------
    async def _flag_app(self, app_id: str) -> list[str]:
        """Flag the application and all its endpoints deleted, revoke its tokens (NotFound
        if there is no such application not yet deleted); its endpoints' ids."""
        raise NotImplementedError

    async def _flag_endpoint(
        self, app_id: str, endpoint_id: str, notify: Sequence[OperationalEvent] = ()
    ) -> None:
        """Flag the endpoint deleted, and write ``notify`` in the same transaction."""
        raise NotImplementedError

    async def _delete_some(self, table: str, column: str, value: str, limit: int) -> int:
        """Delete up to ``limit`` rows of ``table`` whose ``column`` is ``value``: how many."""
        raise NotImplementedError

    async def _delete_app_keys(self, app_id: str, limit: int) -> int:
        """Delete up to ``limit`` idempotency keys whose answers the application's routes
        stored: how many."""
        raise NotImplementedError

    async def _delete_flagged(self, table: str, row_id: str) -> None:
        """Delete the flagged row itself (and, by cascade, anything written meanwhile)."""
        raise NotImplementedError

    async def _flagged(self) -> tuple[dict[str, list[str]], list[str]]:
        """The flagged applications with their endpoints' ids, and the other flagged
        endpoints."""
        raise NotImplementedError

    # -- the operations ------------------------------------------------------------------------
    async def delete_app(self, app_id: str) -> None:
        await self._purge_app(app_id, await self._flag_app(app_id))

    async def delete_endpoint(
        self, app_id: str, endpoint_id: str, notify: Sequence[OperationalEvent] = ()
    ) -> None:
        await self._flag_endpoint(app_id, endpoint_id, notify)
        await self._purge_endpoint(endpoint_id)

    async def purge_deleted(self) -> int:
        apps, endpoints = await self._flagged()
        for app_id, endpoint_ids in apps.items():
            await self._purge_app(app_id, endpoint_ids)
        for endpoint_id in endpoints:
            await self._purge_endpoint(endpoint_id)
        return len(apps) + len(endpoints)

    async def _purge_app(self, app_id: str, endpoint_ids: list[str]) -> None:
        for endpoint_id in endpoint_ids:
            await self._purge_endpoint(endpoint_id)
        await self._delete_rows(APP_ROWS, app_id)
        while await self._delete_app_keys(app_id, self.batch_rows):
            pass
        await self._delete_flagged("applications", app_id)

    async def _purge_endpoint(self, endpoint_id: str) -> None:
        await self._delete_rows(ENDPOINT_ROWS, endpoint_id)
        await self._delete_flagged("endpoints", endpoint_id)

    async def _delete_rows(self, steps: tuple[tuple[str, str], ...], value: str) -> None:
        for table, column in steps:
            while await self._delete_some(table, column, value, self.batch_rows):
                pass
