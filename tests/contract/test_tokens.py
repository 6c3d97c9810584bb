"""The Tokens port.

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

from hookpost.domain.ids import TOKEN, new_id
from hookpost.domain.models import ApiToken
from hookpost.store.base import Store

from .support import DAY, T0, new_app


class TestTokens:
    async def test_tokens(self, store: Store) -> None:
        app = await new_app(store)
        assert await store.count_admin_tokens() == 0
        admin = ApiToken(new_id(TOKEN), "hash-admin", None, "bootstrap", T0, None)
        scoped = ApiToken(new_id(TOKEN), "hash-app", app.id, "ci", T0, T0 + DAY)
        await store.create_token(admin)
        await store.create_token(scoped)
        assert await store.find_token("hash-admin") == admin
        assert await store.find_token("hash-app") == scoped
        assert await store.find_token("hash-nope") is None
        assert await store.count_admin_tokens() == 1
        await store.create_token(ApiToken(new_id(TOKEN), "hash-admin-2", None, "", T0))
        assert await store.count_admin_tokens() == 2
        assert await store.delete_token("hash-app") is True
        assert await store.find_token("hash-app") is None
        assert await store.delete_token("hash-app") is False
        assert await store.find_token("hash-admin") == admin
