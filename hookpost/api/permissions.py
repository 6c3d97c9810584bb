"""The permission each API operation needs, by operation id: the matrix of docs/permissions.md.

``routes.common.context`` (the shared authentication dependency) looks the request's route up
here and the request context checks it (see ``Ctx``); which token kind holds which permission
is the domain's rule (``domain.permissions``). ``create_app`` refuses to build an app with an
operation missing from this table, so a new route cannot ship without a declared permission.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from hookpost.domain.permissions import Permission

P = Permission

# None: no token at all (health checks).
ROUTE_PERMISSIONS: dict[str, Permission | None] = {
    # applications
    "v1.application.list": P.READ,  # an app-scoped token lists its own application only
    "v1.application.create": P.MANAGE_APPS,
    "v1.application.get": P.READ,
    "v1.application.update": P.MANAGE_APPS,
    "v1.application.patch": P.MANAGE_APPS,
    "v1.application.delete": P.MANAGE_APPS,
    # endpoints
    "v1.endpoint.list": P.READ,
    "v1.endpoint.create": P.MANAGE_ENDPOINTS,
    "v1.endpoint.get": P.READ,
    "v1.endpoint.update": P.MANAGE_ENDPOINTS,
    "v1.endpoint.patch": P.MANAGE_ENDPOINTS,
    "v1.endpoint.delete": P.MANAGE_ENDPOINTS,
    "v1.endpoint.get-secret": P.READ,
    "v1.endpoint.rotate-secret": P.MANAGE_ENDPOINTS,
    "v1.endpoint.get-headers": P.READ,
    "v1.endpoint.update-headers": P.MANAGE_ENDPOINTS,
    "v1.endpoint.patch-headers": P.MANAGE_ENDPOINTS,
    "v1.endpoint.get-stats": P.READ,
    "v1.endpoint.get-throttling-status": P.READ,
    "v1.endpoint.recover": P.REPLAY,
    "v1.endpoint.replay-missing": P.REPLAY,
    "v1.endpoint.bulk-replay": P.REPLAY,
    "v1.endpoint.send-example": P.REPLAY,
    # messages
    "v1.message.list": P.READ,
    "v1.message.create": P.CREATE_MESSAGE,
    "v1.message.get": P.READ,
    "v1.message.expunge-content": P.EXPUNGE_CONTENT,
    "v1.message.bulk-expunge-content": P.EXPUNGE_CONTENT,
    "v1.message.expunge-all-contents": P.EXPUNGE_CONTENT,
    "v1.message.get-raw-payload": P.READ,
    # attempts
    "v1.message-attempt.list-by-endpoint": P.READ,
    "v1.message-attempt.count-by-endpoint": P.READ,
    "v1.message-attempt.list-by-msg": P.READ,
    "v1.message-attempt.list-attempted-messages": P.READ,
    "v1.message-attempt.list-attempted-destinations": P.READ,
    "v1.message-attempt.get": P.READ,
    "v1.message-attempt.get-headers": P.READ,
    "v1.message-attempt.expunge-content": P.EXPUNGE_CONTENT,
    "v1.message-attempt.resend": P.REPLAY,
    # the event-type catalog (shared by every application)
    "v1.event-type.list": P.READ,
    "v1.event-type.create": P.MANAGE_EVENT_TYPES,
    "v1.event-type.get": P.READ,
    "v1.event-type.update": P.MANAGE_EVENT_TYPES,
    "v1.event-type.patch": P.MANAGE_EVENT_TYPES,
    "v1.event-type.delete": P.MANAGE_EVENT_TYPES,
    "v1.event-type.get-retry-schedule": P.READ,
    "v1.event-type.set-retry-schedule": P.MANAGE_EVENT_TYPES,
    # tokens
    "v1.authentication.app-portal-access": P.MANAGE_TOKENS,
    "v1.authentication.logout": P.LOGOUT,
    "v1.authentication.list-tokens": P.MANAGE_TOKENS,
    "v1.authentication.create-token": P.MANAGE_TOKENS,
    "v1.authentication.revoke-token": P.MANAGE_TOKENS,
    "v1.authentication.expire-all": P.MANAGE_TOKENS,
    # background tasks and the usage statistics they compute (any application's)
    "v1.background-task.list": P.MANAGE_APPS,
    "v1.background-task.get": P.MANAGE_APPS,
    "v1.statistics.aggregate-app-stats": P.MANAGE_APPS,
    "v1.statistics.aggregate-event-types": P.MANAGE_APPS,
    # attempt statistics (routes/stats.py)
    "v1.application.stats.attempts": P.READ,
    "v1.stats.app-delivery": P.READ,
    "v1.stats.endpoint-delivery": P.READ,
    # operational webhook endpoints (admin tokens only: they hear about every application)
    "v1.operational-webhook.endpoint.list": P.MANAGE_OPERATIONAL_WEBHOOKS,
    "v1.operational-webhook.endpoint.create": P.MANAGE_OPERATIONAL_WEBHOOKS,
    "v1.operational-webhook.endpoint.get": P.MANAGE_OPERATIONAL_WEBHOOKS,
    "v1.operational-webhook.endpoint.upsert": P.MANAGE_OPERATIONAL_WEBHOOKS,
    "v1.operational-webhook.endpoint.delete": P.MANAGE_OPERATIONAL_WEBHOOKS,
    "v1.operational-webhook.endpoint.get-secret": P.MANAGE_OPERATIONAL_WEBHOOKS,
    "v1.operational-webhook.endpoint.rotate-secret": P.MANAGE_OPERATIONAL_WEBHOOKS,
    "v1.operational-webhook.endpoint.get-headers": P.MANAGE_OPERATIONAL_WEBHOOKS,
    "v1.operational-webhook.endpoint.set-headers": P.MANAGE_OPERATIONAL_WEBHOOKS,
    # alert rules and pushed metrics (hookpost extensions, decision 0038)
    "v1.alert-rule.list": P.READ,
    "v1.alert-rule.create": P.MANAGE_ENDPOINTS,
    "v1.alert-rule.get": P.READ,
    "v1.alert-rule.patch": P.MANAGE_ENDPOINTS,
    "v1.alert-rule.delete": P.MANAGE_ENDPOINTS,
    "v1.metric.push": P.CREATE_MESSAGE,
    # health
    "v1.health.get": None,
    "v1.health.head": None,
    "v1.health.ping": None,
    "v1.health.ping-head": None,
}


def route_permission(route: APIRoute) -> Permission | None:
    """The permission ``route`` needs (KeyError for an undeclared operation: refused)."""
    return ROUTE_PERMISSIONS[str(route.operation_id)]


def operations(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """The operations of an app's route table (``app.routes``) that its document lists."""
    found = (context.original_route for context in iter_route_contexts(routes))
    return [r for r in found if isinstance(r, APIRoute) and r.include_in_schema]


def check_declared(routes: Sequence[BaseRoute]) -> None:
    """Raise unless every operation of the API's document declares its permission."""
    missing = [
        f"{sorted(r.methods or ())} {r.path} ({r.operation_id})"
        for r in operations(routes)
        if r.operation_id not in ROUTE_PERMISSIONS
    ]
    if missing:
        raise RuntimeError(
            "operations without a declared permission (add them to "
            "hookpost/api/permissions.py and docs/permissions.md): " + ", ".join(missing)
        )
