"""The API resolves a path's application (id or uid) once, and checks the caller's access on
the very id it then hands the services (issue 25: nothing resolves the path twice)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hookpost.api.errors import ApiError
from hookpost.api.routes.common import ApiState, Ctx, app_scope
from hookpost.domain.errors import NotFound
from hookpost.domain.models import ApiToken

OWN, OTHER = "app_own", "app_other"


class Resolver:
    """Answers each call with the next of ``answers`` (an id, or NotFound), like a cache entry
    that changed between two lookups."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, app_id_or_uid: str) -> str:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if answer is None:
            raise NotFound("application", app_id_or_uid)
        return answer


def _ctx(resolver: Resolver, own: str | None = OWN) -> Ctx:
    services = SimpleNamespace(apps=SimpleNamespace(resolve=resolver))
    hp = SimpleNamespace(settings=None, services=services)
    return Ctx(ApiToken("tok_1", "hash", own), ApiState(hp, None))  # type: ignore[arg-type]


async def test_the_id_checked_is_the_id_returned() -> None:
    resolver = Resolver(OWN, OTHER)  # a uid moving to another tenant between two lookups
    assert await _ctx(resolver).app_id("acme") == OWN
    assert resolver.calls == 1


async def test_a_scoped_token_gets_only_what_its_path_resolves_to() -> None:
    # The token's own app was deleted, and a uid equal to its id (written before such uids
    # were refused) now resolves to another tenant's application.
    with pytest.raises(ApiError) as denied:
        await _ctx(Resolver(OTHER)).app_id(OWN)
    assert denied.value.status == 404
    scope = await app_scope(_ctx(Resolver(OTHER)), OWN)
    with pytest.raises(ApiError):
        _ = scope.id
    # Its own application, by id or uid: allowed; an unknown one: 404 without a second lookup.
    assert await _ctx(Resolver(OWN)).app_id(OWN) == OWN
    assert (await app_scope(_ctx(Resolver(OWN)), "acme")).id == OWN
    with pytest.raises(NotFound):
        await _ctx(Resolver(None)).app_id(OWN)
    with pytest.raises(ApiError):
        await _ctx(Resolver(None)).app_id("acme")


async def test_id_if_exists_is_what_the_scope_resolved() -> None:
    resolver = Resolver(None, OTHER)
    scope = await app_scope(_ctx(resolver, own=None), "acme")
    assert scope.id_if_exists() is None
    assert resolver.calls == 1
    assert (await app_scope(_ctx(Resolver(OTHER), own=None), "acme")).id_if_exists() == OTHER
