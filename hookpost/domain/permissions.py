"""What each kind of API token may do: the permission matrix (docs/permissions.md).

An admin token (``app_id`` None) runs the service. An app-scoped token (the app portal's, handed
to a tenant) manages its own application's endpoints and reads, resends and recovers its
deliveries. It does not create messages: a message is signed with the endpoint's real secret
and sent to a URL with headers the tenant chose, so only the operator may originate one (Svix
requires an organisation token too). Nor does it expunge content, write the event-type catalog
or manage tokens and applications.
"""

from __future__ import annotations

from enum import StrEnum

from hookpost.domain.models import ApiToken


class Permission(StrEnum):
    READ = "read"  # the app, its endpoints (secrets, headers, stats), messages, attempts; catalog
    MANAGE_ENDPOINTS = "manage-endpoints"  # create, change, delete, rotate the secret
    REPLAY = "replay"  # resend, recover, send an event type's example
    LOGOUT = "logout"  # revoke the calling token itself
    CREATE_MESSAGE = "create-message"
    EXPUNGE_CONTENT = "expunge-content"  # message and attempt content
    MANAGE_APPS = "manage-apps"  # create, update, delete applications
    MANAGE_EVENT_TYPES = "manage-event-types"
    MANAGE_TOKENS = "manage-tokens"  # mint app-portal access, list, create and revoke tokens
    # the operational webhook endpoints (the operator's own), their secrets included
    MANAGE_OPERATIONAL_WEBHOOKS = "manage-operational-webhooks"


APP_TOKEN_PERMISSIONS = frozenset(
    {Permission.READ, Permission.MANAGE_ENDPOINTS, Permission.REPLAY, Permission.LOGOUT}
)
# Admin tokens cannot log out: revoke one with `hookpost token revoke` or the token API.
ADMIN_PERMISSIONS = frozenset(Permission) - {Permission.LOGOUT}


def permissions_of(token: ApiToken) -> frozenset[Permission]:
    return ADMIN_PERMISSIONS if token.app_id is None else APP_TOKEN_PERMISSIONS


def allows(token: ApiToken, permission: Permission) -> bool:
    return permission in permissions_of(token)


def refusal(token: ApiToken, permission: Permission) -> str:
    """Why ``token`` may not do what ``permission`` covers (the 403's detail)."""
    if token.app_id is None:
        return "only app-scoped tokens can be logged out"  # LOGOUT: the only one it lacks
    return f"this operation ({permission.value}) needs an admin token"


# The token that HOOKPOST_ADMIN_TOKEN sets is an admin token under this (reserved) name: a
# new value replaces it, so changing the variable and restarting revokes the old one.
ENV_ADMIN_TOKEN_NAME = "HOOKPOST_ADMIN_TOKEN"


HINT_CHARS = 4
MIN_HINTED_LENGTH = 16  # a shorter token would give away too much of itself


def token_hint(plaintext: str) -> str | None:
    """What a listing shows of a token to tell it apart (``...wxyz``): its last characters,
    stored beside its hash. None for a token too short to spare them."""
    if len(plaintext) < MIN_HINTED_LENGTH:
        return None
    return "..." + plaintext[-HINT_CHARS:]


def is_env_admin_token(token: ApiToken) -> bool:
    return token.app_id is None and token.name == ENV_ADMIN_TOKEN_NAME
