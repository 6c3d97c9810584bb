"""Endpoints: subscriber URLs with their filters, secrets, headers and health."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from hookpost.domain import ids
from hookpost.domain import operational as op
from hookpost.domain.catalog import FieldWarning
from hookpost.domain.disabled import MANUAL
from hookpost.domain.errors import Conflict, InvalidInput, NotFound, SecretNotShown, StaleWrite
from hookpost.domain.filters import validate_filter
from hookpost.domain.inputs import UNSET, EndpointChanges, NewEndpoint
from hookpost.domain.limits import Limits, check_timeout, check_url_length
from hookpost.domain.models import (
    BackgroundTask,
    Endpoint,
    EndpointStats,
    Page,
    PageRequest,
    SigningKey,
)
from hookpost.domain.operational import OperationalEvent
from hookpost.domain.retry import check_policy
from hookpost.domain.signing import (
    DEFAULT_SCHEME,
    check_scheme,
    check_signature_header,
    key_fits,
    key_kind,
    keys_for_scheme,
    shown_key,
)
from hookpost.domain.throttle import ThrottleStatus
from hookpost.services.catalog import CatalogCache
from hookpost.services.common import Clock, now_ms
from hookpost.services.tasks import TaskService
from hookpost.store.base import Store

DEFAULT_GRACE_S = 24 * 3600
MAX_GRACE_S = 7 * 24 * 3600
MAX_OLD_KEYS = 10
WRITE_ATTEMPTS = 5  # read-modify-write rounds before a change gives up (409)

UrlCheck = Callable[[str], None]  # raises InvalidInput("url", ...) for a URL we must refuse
# The endpoint changed, computed from the endpoint as it is now and the time.
Change = Callable[[Endpoint, int], Endpoint]


def _no_check(url: str) -> None:
    return None


DEFAULT_LIMITS = Limits()


def with_schedule(endpoint: Endpoint) -> Endpoint:
    """The endpoint with ``retry_schedule`` (what the claim reads) as its policy expands."""
    policy = endpoint.retry_policy
    endpoint.retry_schedule = None if policy is None else list(policy.delays())
    return endpoint


class EndpointService:
    """``app_id`` is an application's id (``AppService.resolve`` turns a uid into one); an
    endpoint may be named by its id or uid."""

    def __init__(
        self,
        store: Store,
        clock: Clock = now_ms,
        url_check: UrlCheck = _no_check,
        limits: Limits = DEFAULT_LIMITS,
        catalog: CatalogCache | None = None,
        strict_event_types: bool = False,
        reveal_secrets: bool = True,
    ):
        self._store = store
        self._clock = clock
        self._url_check = url_check
        self._limits = limits
        self._catalog = catalog
        # HOOKPOST_STRICT_EVENT_TYPES: subscriptions the catalog does not allow are refused
        self._strict = strict_event_types and catalog is not None
        # HOOKPOST_REVEAL_SECRETS: off, a secret is shown only when created or rotated
        self._reveal_secrets = reveal_secrets

    async def _check_subscription(self, event_types: list[str] | None) -> None:
        if self._strict and self._catalog is not None:
            await self._catalog.check_subscription(event_types)

    async def subscription_warnings(self, endpoint: Endpoint) -> list[FieldWarning]:
        """Without strict mode: a warning for each ``eventTypes`` entry that names nothing the
        catalog offers (the endpoint was accepted, but receives nothing for it)."""
        if self._strict or self._catalog is None:
            return []
        return await self._catalog.subscription_warnings(endpoint.event_types)

    def _check_url(self, url: str) -> None:
        check_url_length(url)  # first: the configured check may look the host up
        self._url_check(url)

    async def create(self, app_id: str, endpoint: NewEndpoint) -> Endpoint:
        scheme = endpoint.signature_scheme
        scheme = DEFAULT_SCHEME if scheme is UNSET else check_scheme(scheme)
        header = None if endpoint.signature_header is UNSET else endpoint.signature_header
        check_signature_header(scheme, header)
        kind, secret = key_kind(scheme), endpoint.secret
        key = kind.normalize(secret, "secret") if secret else kind.generate()
        self._check_url(endpoint.url)
        if app_id != op.OPERATIONAL_APP_ID:  # its event types are hookpost's, not the catalog's
            await self._check_subscription(endpoint.event_types)
        policy = None if endpoint.retry_policy is UNSET else check_policy(endpoint.retry_policy)
        timeout = None if endpoint.timeout_s is UNSET else check_timeout(endpoint.timeout_s)
        now = self._clock()
        created = with_schedule(
            Endpoint(
                id=ids.new_id(ids.ENDPOINT, now),
                app_id=app_id,
                url=endpoint.url,
                description=endpoint.description,
                uid=endpoint.uid,
                disabled=endpoint.disabled,
                event_types=endpoint.event_types,
                channels=endpoint.channels,
                payload_filter=validate_filter(
                    None if endpoint.payload_filter is UNSET else endpoint.payload_filter
                ),
                headers=dict(endpoint.headers),
                metadata=dict(endpoint.metadata),
                keys=[SigningKey(key)],
                throttle_rate=endpoint.throttle_rate,
                signature_scheme=scheme,
                signature_header=header,
                retry_policy=policy,
                timeout_s=timeout,
                ordered=False if endpoint.ordered is UNSET else endpoint.ordered,
                send_traceparent=(
                    None if endpoint.send_traceparent is UNSET else endpoint.send_traceparent
                ),
                created_at=now,
                updated_at=now,
            )
        )
        notify = await self._endpoint_event(op.ENDPOINT_CREATED, created, now)
        # NotFound for an unknown app; LimitExceeded when it has the most endpoints allowed
        return await self._store.create_endpoint(
            created, self._limits.max_endpoints_per_app, notify=notify
        )

    async def _endpoint_event(
        self, event_type: str, endpoint: Endpoint, now: int
    ) -> list[OperationalEvent]:
        """endpoint.created or .deleted, none for the operational endpoints themselves."""
        if endpoint.app_id == op.OPERATIONAL_APP_ID:
            return []
        uid = await self._app_uid(endpoint.app_id)
        return [op.endpoint_event(event_type, endpoint.app_id, uid, endpoint.id, endpoint.uid, now)]

    async def _app_uid(self, app_id: str) -> str | None:
        """For the operational events (appUid); not the operational application's."""
        try:
            return (await self._store.get_app(app_id)).uid
        except NotFound:
            return None  # the store's write answers for an unknown application

    async def get(self, app_id: str, endpoint_id: str) -> Endpoint:
        return await self._store.get_endpoint(app_id, endpoint_id)

    async def list(self, app_id: str, page: PageRequest) -> Page[Endpoint]:
        return await self._store.list_endpoints(app_id, page)

    async def upsert(
        self, app_id: str, endpoint_id: str, endpoint: NewEndpoint
    ) -> tuple[Endpoint, bool]:
        """PUT: replace the endpoint's settable fields, or create it (with ``endpoint_id`` as
        its uid unless ``endpoint.uid`` names one) when absent."""
        try:
            current = await self.get(app_id, endpoint_id)
        except NotFound:
            if endpoint.uid is None:
                endpoint = replace(endpoint, uid=endpoint_id)
            return await self.create(app_id, endpoint), True
        return await self._update(current, EndpointChanges.replacing(endpoint)), False

    async def patch(self, app_id: str, endpoint_id: str, changes: EndpointChanges) -> Endpoint:
        return await self._update(await self.get(app_id, endpoint_id), changes)

    async def _update(self, current: Endpoint, changes: EndpointChanges) -> Endpoint:
        given = changes.given()
        if "url" in given:
            self._check_url(given["url"])
        if "payload_filter" in given:
            given["payload_filter"] = validate_filter(given["payload_filter"])
        if "signature_scheme" in given:
            check_scheme(given["signature_scheme"])
        if "event_types" in given and current.app_id != op.OPERATIONAL_APP_ID:
            await self._check_subscription(given["event_types"])
        if "timeout_s" in given:
            check_timeout(given["timeout_s"])
        if "retry_policy" in given:
            check_policy(given["retry_policy"])

        def change(now: Endpoint, _: int) -> Endpoint:
            new = dict(given)
            scheme = new.get("signature_scheme", now.signature_scheme)
            check_signature_header(scheme, new.get("signature_header", now.signature_header))
            if scheme != now.signature_scheme:
                new["keys"] = keys_for_scheme(scheme, now.keys)
            if new.get("disabled") is False and now.disabled:
                new["disabled_reason"] = None  # the store also resets the health record
            if new.get("disabled") is True and not now.disabled:
                new["disabled_reason"] = MANUAL
            return with_schedule(replace(now, **new))

        return await self._modify(current, change)

    async def _modify(self, current: Endpoint, change: Change) -> Endpoint:
        """Read-modify-write with optimistic concurrency. A write in between (another request,
        a secret rotation, the worker disabling the endpoint) makes the store refuse ours
        (``StaleWrite``), and the change is made again on the row as it is now, so that no
        concurrent change is silently undone."""
        reported = current.app_id != op.OPERATIONAL_APP_ID
        app_uid = await self._app_uid(current.app_id) if reported else None
        for _ in range(WRITE_ATTEMPTS):
            now = self._clock()
            updated = replace(change(current, now), updated_at=max(now, current.updated_at + 1))
            notify = [
                op.endpoint_change_event(
                    current.disabled,
                    updated.disabled,
                    updated.app_id,
                    app_uid,
                    updated.id,
                    updated.uid,
                    updated.updated_at,
                )
            ]
            try:
                return await self._store.update_endpoint(
                    updated, current.updated_at, notify=notify if reported else ()
                )
            except StaleWrite:
                current = await self._store.get_endpoint(current.app_id, current.id)
        raise Conflict("the endpoint kept changing while this request ran: try again")

    async def delete(self, app_id: str, endpoint_id: str) -> None:
        endpoint = await self.get(app_id, endpoint_id)
        notify = await self._endpoint_event(op.ENDPOINT_DELETED, endpoint, self._clock())
        await self._store.delete_endpoint(endpoint.app_id, endpoint.id, notify=notify)

    # -- secrets -----------------------------------------------------------------------------
    async def get_secret(self, app_id: str, endpoint_id: str) -> str:
        """The current key, or the public key of an Ed25519 one (see ``shown_key``).
        SecretNotShown when HOOKPOST_REVEAL_SECRETS is off (after the endpoint is found:
        an unknown one is still NotFound)."""
        endpoint = await self.get(app_id, endpoint_id)
        if not self._reveal_secrets:
            raise SecretNotShown(
                "this server shows an endpoint's secret only once, in the answer to the "
                "endpoint's creation or to a rotation (HOOKPOST_REVEAL_SECRETS is off). To get "
                "a new one, rotate it: POST /api/v1/app/"
                f"{endpoint.app_id}/endpoint/{endpoint.id}/secret/rotate answers with the new "
                "key, and the old one keeps signing for gracePeriodSeconds (default 24 hours)"
            )
        return shown_key(endpoint.signature_scheme, endpoint.secret)

    async def rotate_secret(
        self,
        app_id: str,
        endpoint_id: str,
        key: str | None = None,
        grace_s: int = DEFAULT_GRACE_S,
    ) -> Endpoint:
        """The new key signs from now on; the old one keeps signing for ``grace_s`` so that
        receivers can switch without rejecting a single request. The key is of the kind the
        endpoint's signature scheme signs with."""
        if not 0 <= grace_s <= MAX_GRACE_S:
            raise InvalidInput("gracePeriodSeconds", f"must be between 0 and {MAX_GRACE_S}")
        current = await self.get(app_id, endpoint_id)
        kind = key_kind(current.signature_scheme)
        new_key = kind.normalize(key, "key") if key else kind.generate()

        def rotated(endpoint: Endpoint, now: int) -> Endpoint:
            if not key_fits(endpoint.signature_scheme, new_key):
                raise Conflict("the endpoint's signature scheme changed meanwhile: try again")
            old = [SigningKey(endpoint.keys[0].secret, now + grace_s * 1000)]
            old += [k for k in endpoint.keys[1:] if k.active(now)]
            return replace(endpoint, keys=[SigningKey(new_key), *old[:MAX_OLD_KEYS]])

        return await self._modify(current, rotated)

    # -- headers -----------------------------------------------------------------------------
    async def get_headers(self, app_id: str, endpoint_id: str) -> dict[str, str]:
        return (await self.get(app_id, endpoint_id)).headers

    async def set_headers(
        self,
        app_id: str,
        endpoint_id: str,
        headers: Mapping[str, str],
        *,
        merge: bool,
        delete: tuple[str, ...] = (),
    ) -> Endpoint:
        lowered = {name.lower() for name in delete}

        def merged(endpoint: Endpoint, _: int) -> Endpoint:
            kept = dict(endpoint.headers) if merge else {}
            kept = {k: v for k, v in kept.items() if k.lower() not in lowered}
            return replace(endpoint, headers={**kept, **headers})

        return await self._modify(await self.get(app_id, endpoint_id), merged)

    # -- delivery operations -----------------------------------------------------------------
    async def stats(
        self,
        app_id: str,
        endpoint_id: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> EndpointStats:
        endpoint = await self.get(app_id, endpoint_id)
        return await self._store.endpoint_stats(endpoint.app_id, endpoint.id, since_ms, until_ms)

    async def throttle_status(self, app_id: str, endpoint_id: str) -> ThrottleStatus:
        """Svix's rate-limit status: whether the endpoint's throttleRate holds deliveries back
        now, and since when (on this process's clock)."""
        endpoint = await self.get(app_id, endpoint_id)
        now = self._clock()
        state = await self._store.endpoint_pace(endpoint.id, now)
        status = state.status()
        if status.since is None:
            return status
        return ThrottleStatus(True, status.since - state.now + now)  # from the store's clock

    async def recover(
        self, app_id: str, endpoint_id: str, since_ms: int, until_ms: int | None = None
    ) -> BackgroundTask:
        """Queue again every failed (or canceled) delivery of messages created in
        [since, until), in a background task (``TaskService.recover``)."""
        return await TaskService(self._store, self._clock).recover(
            app_id, endpoint_id, since_ms, until_ms
        )
