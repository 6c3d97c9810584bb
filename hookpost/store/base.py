"""The store ports: one protocol per role, each implemented by every backend.

It is deliberately not an "execute this SQL" port: SQLite and PostgreSQL differ exactly where
it matters (claiming with SKIP LOCKED, waking workers, upserts), so each backend implements
these operations its own way. ``tests/contract`` holds the behaviour every backend must show.
Each consumer depends on the roles it uses: the worker on ``DeliveryQueue`` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from hookpost.domain.models import (
    ApiToken,
    Application,
    Attempt,
    AttemptResult,
    BackgroundTask,
    ClaimedDelivery,
    Delivery,
    DeliveryOptions,
    DeliveryStatus,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    Page,
    PageRequest,
)
from hookpost.domain.operational import OperationalEvent
from hookpost.domain.queries import (
    AttemptFilter,
    CreatedMessage,
    Finished,
    FinishOutcome,
    IdempotencyKey,
    KeyAnswer,
    MessageFilter,
    QueueDepth,
)
from hookpost.domain.retention import CleanupCounts
from hookpost.domain.tasks import ReplayRange
from hookpost.domain.throttle import PaceState
from hookpost.store.operator_ports import Alerts, Stats, Traces


class Lifecycle(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...


class Catalog(Protocol):
    """Applications, event types and endpoints."""

    # applications
    async def create_app(self, app: Application) -> Application: ...
    async def get_app(self, app_id_or_uid: str) -> Application: ...
    async def list_apps(self, page: PageRequest) -> Page[Application]: ...
    async def update_app(self, app: Application) -> Application: ...
    async def delete_app(self, app_id: str) -> None:
        """Delete the application and everything it holds. It is hidden from every read
        at once (its endpoints disabled, its tokens revoked), then its rows are deleted
        ``batch_rows`` per transaction (see ``hookpost.store.purge``)."""
        ...

    async def purge_deleted(self) -> int:
        """Finish the deletions that were interrupted (a crash) after hiding their
        applications or endpoints: how many were left."""
        ...

    # event types
    async def create_event_type(
        self, event_type: EventType, max_count: int | None = None
    ) -> EventType:
        """With ``max_count``, refused (``LimitExceeded``) when the catalog holds that many
        already (counted in the insert's transaction)."""
        ...

    async def get_event_type(self, name: str) -> EventType: ...
    async def list_event_types(
        self, page: PageRequest, include_archived: bool = False
    ) -> Page[EventType]: ...
    async def update_event_type(self, event_type: EventType) -> EventType: ...
    async def delete_event_type(self, name: str) -> None: ...

    # endpoints
    async def create_endpoint(
        self,
        endpoint: Endpoint,
        max_per_app: int | None = None,
        notify: Sequence[OperationalEvent] = (),
    ) -> Endpoint:
        """NotFound for an unknown application. With ``max_per_app``, refused
        (``LimitExceeded``) when the application has that many endpoints already (counted in
        the insert's transaction, the application's row locked: concurrent creates cannot
        overshoot). ``notify``: operational events written in the same transaction (here and
        in ``update_endpoint`` and ``delete_endpoint``): a message of the operational
        application for each event one of its enabled endpoints wants (its filterTypes), with
        those deliveries; nothing for the others."""
        ...

    async def get_endpoint(self, app_id: str, endpoint_id_or_uid: str) -> Endpoint: ...
    async def list_endpoints(self, app_id: str, page: PageRequest) -> Page[Endpoint]: ...
    async def update_endpoint(
        self,
        endpoint: Endpoint,
        expected_updated_at: int | None = None,
        notify: Sequence[OperationalEvent] = (),
    ) -> Endpoint:
        """Write every settable column. With ``expected_updated_at``, only if the row still has
        that ``updated_at`` (else ``StaleWrite``): every write to an endpoint, the worker's
        auto-disable included, makes ``updated_at`` strictly larger."""
        ...

    async def delete_endpoint(
        self, app_id: str, endpoint_id: str, notify: Sequence[OperationalEvent] = ()
    ) -> None:
        """As ``delete_app``: hidden and disabled at once (``notify`` written with that),
        then deleted in batches."""
        ...

    async def any_sealed_keys(self) -> tuple[str, str] | None:
        """One endpoint's id and sealed signing keys (None without endpoints): lets start-up prove
        that the main key is the one that sealed this database's secrets."""
        ...


class Messages(Protocol):
    """Messages: created with their deliveries, in ONE transaction."""

    async def create_message(
        self,
        message: Message,
        now_ms: int,
        endpoint_ids: Sequence[str] | None = None,
        key: IdempotencyKey | None = None,
    ) -> CreatedMessage:
        """``endpoint_ids`` given: deliveries for exactly those (enabled) endpoints of the app,
        ignoring their filters (test events); otherwise for every matching enabled endpoint.
        ``key``: the send's idempotency key. What the key holds already (unexpired at
        ``now_ms``) wins: nothing is created, and it comes back as ``replayed`` (SQLite:
        checked in the message's transaction, so no other process can slip in between;
        PostgreSQL: in the group commit's statement, after taking the key's advisory lock, so
        no other process can either; for a message made alone, looked up just before, where
        two processes sending one key at once can both create). Otherwise, if the message is
        created, the key is recorded with the message's id (SQLite: in the message's
        transaction; PostgreSQL: in the same statement, or right after a message made alone);
        if not (its eventId is taken), nothing is recorded."""
        ...

    async def get_message(self, app_id: str, msg_id_or_event_id: str) -> Message: ...
    async def list_messages(
        self,
        app_id: str,
        page: PageRequest,
        filt: MessageFilter,
        *,
        with_content: bool = True,
        max_content_bytes: int | None = None,
    ) -> Page[Message]:
        """Without ``with_content``, payloads are not read (each reads as ``b""``). With
        ``max_content_bytes``, the page stops before the message whose payload would take the
        page's payloads over it (``done`` False; a page holds at least one message)."""
        ...

    async def expunge_message(self, app_id: str, msg_id: str) -> None: ...


class DeliveryQueue(Protocol):
    """The work queue: the worker's only port.

    Due times and lease expiry are kept on one clock: the callers' ``now_ms`` on SQLite (one
    host) and in memory; on PostgreSQL, the database's own, so that workers on hosts whose
    clocks disagree neither take each other's in-flight deliveries nor wait for due ones.
    """

    def on_new_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the event loop) when deliveries become due now: after a
        message with deliveries is created, a resend, a recover or a release. SQLite calls it
        in-process; PostgreSQL through LISTEN/NOTIFY, so workers in other processes wake too."""
        ...

    async def claim_due(
        self,
        limit: int,
        lease_ms: int,
        now_ms: int,
        exclude_endpoints: Sequence[str] = (),
        *,
        max_per_endpoint: int | None = None,
        in_flight: Mapping[str, int] | None = None,
        exclude_deliveries: Sequence[int] = (),
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries, skipping ``exclude_endpoints``: per endpoint,
        the shares and round-robin order of ``domain.scheduling`` (each endpoint's oldest
        first); its cost depends on the endpoints with due rows and the rows taken, not on
        the due backlog. With ``max_per_endpoint``, at most ``max_per_endpoint -
        in_flight.get(endpoint, 0)`` of one endpoint's deliveries are leased; the rest stay
        due, untouched. A disabled endpoint's due deliveries are canceled, not returned.
        ``exclude_deliveries``: ids never taken, even with an expired lease (the caller still
        has them in flight). A claimed delivery's ``due_at`` is as stored (on PostgreSQL, on
        the database's clock)."""
        ...

    async def finish_attempts(
        self,
        results: Sequence[AttemptResult],
        now_ms: int,
        disable_after_ms: int,
        disable_after_failures: int = 0,
        notify: Sequence[OperationalEvent] = (),
    ) -> FinishOutcome:
        """Record every attempt; move each delivery whose lease is still the result's to its
        next state, and apply those results to their endpoints' health (domain.health; 0
        ``disable_after_failures``: no count-based disabling). A
        result whose lease was lost (``stale``) changes neither its delivery nor the health
        of its endpoint: the delivery's new owner decides. In the same transaction: the
        operational events ``notify`` and endpoint.disabled for each endpoint disabled now
        (as ``Catalog.create_endpoint`` writes them; ``notified`` counts their deliveries).
        Without either, nothing more is read or written."""
        ...

    async def release(self, leases: Sequence[tuple[int, str]], now_ms: int) -> int: ...
    async def renew(self, leases: Sequence[tuple[int, str]], lease_ms: int, now_ms: int) -> int:
        """Extend each of these (delivery id, lease) that is still held to ``lease_ms`` from
        now, in one statement; the number renewed. A lease already lost stays lost."""
        ...

    async def queue_depth(self, now_ms: int) -> QueueDepth: ...
    async def next_due_at(self, now_ms: int | None = None) -> int | None:
        """When the next delivery is due (a lease's expiry included); None if none is. Given
        the caller's ``now_ms``, on the caller's clock: PostgreSQL keeps due times on the
        database's clock, which a host's clock may be ahead of or behind."""
        ...

    async def settle_ordered(self, now_ms: int) -> int:
        """The sweep of ordered endpoints (domain.ordering): settle each endpoint with parked
        deliveries that has no live one, or is no longer ordered; how many became due. Cheap
        when there is nothing to do (one index probe); it repairs what a crash between a
        create's commit and its settle (PostgreSQL) or ``ordered`` switched on while
        deliveries were in flight left behind."""
        ...

    async def delivery_options(self) -> DeliveryOptions:
        """The event types' retry schedules and the endpoints' request timeouts, where set
        (the worker caches them: docs/decisions/0027)."""
        ...


class DeliveryLog(Protocol):
    """Deliveries and attempts as operators read and steer them."""

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now_ms: int) -> None: ...
    async def recover(
        self,
        app_id: str,
        endpoint_id: str,
        since_ms: int,
        until_ms: int | None,
        now_ms: int,
        finished: Finished | None = None,
    ) -> int:
        """Queue again the endpoint's failed and canceled deliveries of messages created in
        [since, until), ``batch_rows`` per transaction: how many. ``finished(how many)``: the
        operational events written in the last batch's transaction (as
        ``Catalog.create_endpoint`` writes them)."""
        ...

    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery: ...
    # attempts and delivery views
    async def list_attempts(
        self, app_id: str, page: PageRequest, filt: AttemptFilter
    ) -> Page[Attempt]: ...
    async def get_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> Attempt: ...
    async def expunge_attempt(self, app_id: str, msg_id: str, attempt_id: str) -> None: ...
    async def list_deliveries_for_message(
        self, app_id: str, msg_id: str, page: PageRequest
    ) -> Page[tuple[Delivery, Endpoint]]: ...
    async def list_deliveries_for_endpoint(
        self,
        app_id: str,
        endpoint_id: str,
        page: PageRequest,
        status: DeliveryStatus | None = None,
        *,
        with_content: bool = True,
        max_content_bytes: int | None = None,
    ) -> Page[tuple[Delivery, Message]]:
        """``with_content`` and ``max_content_bytes`` as for ``Messages.list_messages``."""
        ...

    async def endpoint_stats(
        self, app_id: str, endpoint_id: str, since_ms: int | None, until_ms: int | None
    ) -> EndpointStats: ...

    async def endpoint_pace(self, endpoint_id: str, now_ms: int) -> PaceState:
        """The endpoint's throttle rate and pace, and its oldest pending due time, for Svix's
        rate-limit status (domain.throttle)."""
        ...


class Tokens(Protocol):
    async def create_token(self, token: ApiToken) -> None: ...
    async def find_token(self, token_hash: str) -> ApiToken | None: ...
    async def list_tokens(self, page: PageRequest, app_id: str | None = None) -> Page[ApiToken]:
        """Every token (of application ``app_id`` only, if given), paged by id."""
        ...

    async def delete_token(self, token_hash: str) -> bool:
        """Revoke a token; False if there was none with that hash."""
        ...

    async def delete_token_by_id(self, token_id: str) -> ApiToken | None:
        """Revoke a token by its id: the record it had (None: there was none)."""
        ...

    async def replace_env_token(self, token: ApiToken) -> int:
        """In one write: delete every token that ``domain.permissions.is_env_admin_token``
        holds for but ``token`` (another hash), and store ``token`` unless its hash is stored
        already. Returns how many were deleted."""
        ...

    async def count_admin_tokens(self) -> int: ...


class Idempotency(Protocol):
    """What idempotency keys hold: a request's answer, or the message a send created (which
    ``Messages.create_message`` records)."""

    async def get_idempotent(self, scope: str, key: str, now_ms: int) -> KeyAnswer | None: ...
    async def put_idempotent(
        self,
        scope: str,
        key: str,
        status: int,
        body: bytes,
        expires_at: int,
        now_ms: int,
        app_id: str | None = None,
    ) -> KeyAnswer | None:
        """Store an answer under a key, unless the key holds something unexpired at
        ``now_ms`` already: the first answer wins (two processes may answer one key at once).
        None if stored; else what the key holds. ``app_id``: the application the request's
        route resolved, whose deletion deletes the answer."""
        ...

    async def purge_expired_keys(self, now_ms: int, limit: int) -> int:
        """Delete up to ``limit`` keys expired at ``now_ms``: how many."""
        ...


class Retention(Protocol):
    """Erasing expired payloads and deleting old messages (``domain.retention``), a batch per
    short transaction: claims and sends go on between two batches."""

    async def erase_expired_payloads(self, now_ms: int, limit: int) -> int:
        """Erase up to ``limit`` of the payloads ``domain.retention.payload_expired`` holds for
        at ``now_ms``, soonest expiry first, as an expunge does (the payload ``{}``, the message
        ``expunged``, its ``payload_sha256`` kept), and their attempts' response bodies; how
        many messages."""
        ...

    async def delete_old_messages(
        self, before_ms: int, limit: int, after_id: str | None = None
    ) -> tuple[CleanupCounts, str | None]:
        """Look at up to ``limit`` messages created before ``before_ms`` (ids after
        ``after_id``), oldest first, and delete those ``domain.retention.deletable`` holds for
        (none of their deliveries pending or sending, checked under the deliveries' locks),
        with their deliveries and attempts. Returns what was deleted and the last id looked
        at, for the next batch's ``after_id`` (None: nothing was left to look at)."""
        ...

    async def delete_finished_tasks(self, before_ms: int) -> int:
        """Delete the background tasks ``domain.retention.task_deletable`` holds for; how
        many (few rows: one statement)."""
        ...

    async def delete_expired_tokens(self, now_ms: int) -> int:
        """Delete the API tokens ``domain.retention.token_deletable`` holds for at ``now_ms``;
        how many (few rows: one statement)."""
        ...

    async def count_cleanup(self, now_ms: int, before_ms: int | None) -> CleanupCounts:
        """What ``erase_expired_payloads`` and ``delete_expired_tokens`` at ``now_ms``, and
        ``delete_old_messages`` and ``delete_finished_tasks`` before ``before_ms`` (None: no
        deleting) would do, written nowhere (a dry run)."""
        ...

    def cleanup_turn(self) -> AbstractAsyncContextManager[bool]:
        """One cleanup at a time: entered, whether this caller's turn it is (not waited for).
        PostgreSQL: a session advisory lock, across every process; SQLite: in this process
        (one worker process writes there, and its writes take turns anyway)."""
        ...


class Tasks(Protocol):
    """Background tasks (domain.tasks), and the work they do that the other roles lack.

    Leases are on the callers' clock (``now_ms``), on PostgreSQL too: a task lease is a
    minute, far beyond the skew of hosts that share one database.
    """

    async def create_task(self, task: BackgroundTask) -> None: ...
    async def get_task(self, task_id: str) -> BackgroundTask: ...
    async def list_tasks(
        self, page: PageRequest, status: str | None = None, kind: str | None = None
    ) -> Page[BackgroundTask]:
        """Paged by id (creation order), only those with ``status`` and ``kind`` if given."""
        ...

    async def claim_task(self, lease: str, lease_ms: int, now_ms: int) -> BackgroundTask | None:
        """Take the oldest running task whose lease is free or expired at ``now_ms``: it is
        ``lease``'s until ``now_ms + lease_ms``, and its ``runs`` one more (as returned). One
        claimer at a time gets a task, across processes (PostgreSQL: SKIP LOCKED)."""
        ...

    async def renew_task(self, task_id: str, lease: str, lease_ms: int, now_ms: int) -> bool:
        """Extend the lease if ``lease`` still holds it."""
        ...

    async def release_task(self, task_id: str, lease: str) -> None:
        """Give the task up (a worker stopping): the next claim takes it at once."""
        ...

    async def finish_task(
        self,
        task_id: str,
        lease: str,
        status: str,
        data: Mapping[str, object],
        now_ms: int,
        notify: Sequence[OperationalEvent] = (),
    ) -> bool:
        """If ``lease`` still holds the task: its final ``status`` and ``data``, and the
        operational events ``notify`` in the same transaction (as ``Catalog.create_endpoint``
        writes them). False, and nothing written, otherwise."""
        ...

    # the work
    async def messages_missing(
        self,
        app_id: str,
        endpoint_id: str,
        since_ms: int,
        until_ms: int | None,
        after: str | None,
        limit: int,
        with_payload: bool,
    ) -> list[Message]:
        """Up to ``limit`` messages of the application created in [since, until) (ids after
        ``after``), in id order, that have no delivery for the endpoint. Payloads are read
        only ``with_payload`` (else ``b""``)."""
        ...

    async def queue_missing(
        self, app_id: str, endpoint_id: str, msg_ids: Sequence[str], now_ms: int
    ) -> int:
        """A delivery due now (trigger manual) for each of these messages of the application
        that has none for the endpoint (a live endpoint of the application): how many."""
        ...

    async def replay_deliveries(
        self, selection: ReplayRange, now_ms: int, dry_run: bool = False
    ) -> int:
        """Queue again (trigger manual) the deliveries ``selection`` names (its replayable
        statuses only), ``batch_rows`` per transaction; how many (``dry_run``: how many it
        would, writing nothing)."""
        ...

    async def app_usage(
        self, app_ids: Sequence[str] | None, since_ms: int, until_ms: int
    ) -> list[tuple[str, str | None, int]]:
        """(app id, uid, deliveries of its messages created in [since, until)) for each
        application (of ``app_ids`` if given), the operational one excluded."""
        ...

    async def endpoint_subscriptions(self) -> list[tuple[str, list[str] | None]]:
        """(app id, eventTypes) of every live endpoint, the operational ones excluded."""
        ...

    async def expunge_all_contents(self, app_id: str) -> int:
        """Expunge every message of the application, ``batch_rows`` per transaction: how
        many were not expunged already."""
        ...


class Store(
    Lifecycle,
    Catalog,
    Messages,
    DeliveryQueue,
    DeliveryLog,
    Tokens,
    Idempotency,
    Retention,
    Tasks,
    Alerts,
    Traces,
    Stats,
    Protocol,
):
    """Every role: what a backend implements, and what the wiring hands out."""
