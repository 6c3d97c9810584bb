"""The Tokens port.

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

from hookpost.domain.ids import TOKEN, new_id
from hookpost.domain.models import ApiToken, PageRequest
from hookpost.domain.permissions import ENV_ADMIN_TOKEN_NAME, is_env_admin_token
from hookpost.store.base import Store

from .support import DAY, T0, new_app


class TestTokens:
    async def test_tokens(self, store: Store) -> None:
        app = await new_app(store)
        assert await store.count_admin_tokens() == 0
        admin = ApiToken(new_id(TOKEN), "hash-admin", None, "bootstrap", T0, None)
        scoped = ApiToken(new_id(TOKEN), "hash-app", app.id, "ci", T0, T0 + DAY, "...wxyz")
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

    async def test_list_and_revoke_by_id(self, store: Store) -> None:
        app = await new_app(store)
        other = await new_app(store)
        made = [
            ApiToken(new_id(TOKEN, T0 + i), f"hash-{i}", app_id, f"t{i}", T0 + i, None)
            for i, app_id in enumerate((None, app.id, other.id, app.id, None))
        ]
        for token in made:
            await store.create_token(token)
        page = await store.list_tokens(PageRequest(limit=2))
        assert page.items == made[:2] and not page.done
        rest = await store.list_tokens(PageRequest(limit=10, iterator=page.items[-1].id))
        assert rest.items == made[2:] and rest.done
        scoped = await store.list_tokens(PageRequest(limit=10), app.id)
        assert scoped.items == [made[1], made[3]] and scoped.done
        newest = await store.list_tokens(PageRequest(limit=1, descending=True))
        assert newest.items == [made[4]]

        assert await store.delete_token_by_id(made[1].id) == made[1]
        assert await store.delete_token_by_id(made[1].id) is None
        assert await store.find_token("hash-1") is None
        assert await store.find_token("hash-3") == made[3]
        assert (await store.list_tokens(PageRequest(limit=10), app.id)).items == [made[3]]

    async def test_replace_env_token_mirrors_the_domain_rule(self, store: Store) -> None:
        """Exactly the tokens ``is_env_admin_token`` holds for are replaced: an admin token
        of another name, and an app-scoped one of that name, are left alone."""
        app = await new_app(store)

        def env(token_hash: str, at: int) -> ApiToken:
            hint = "..." + token_hash[-4:]
            return ApiToken(
                new_id(TOKEN, at), token_hash, None, ENV_ADMIN_TOKEN_NAME, at, None, hint
            )

        bystanders = [
            ApiToken(new_id(TOKEN), "hash-admin", None, "bootstrap", T0),
            ApiToken(new_id(TOKEN), "hash-scoped", app.id, ENV_ADMIN_TOKEN_NAME, T0),
        ]
        for token in bystanders:
            await store.create_token(token)
        first = env("hash-env-1", T0)
        assert await store.replace_env_token(first) == 0
        assert await store.find_token("hash-env-1") == first
        # The same value again (a restart): nothing deleted, the first record kept.
        assert await store.replace_env_token(env("hash-env-1", T0 + 1)) == 0
        assert await store.find_token("hash-env-1") == first
        # A new value: the old one goes.
        second = env("hash-env-2", T0 + 2)
        assert await store.replace_env_token(second) == 1
        assert await store.find_token("hash-env-1") is None
        assert await store.find_token("hash-env-2") == second
        listed = (await store.list_tokens(PageRequest(limit=10))).items
        assert sorted(t.token_hash for t in listed) == ["hash-admin", "hash-env-2", "hash-scoped"]
        assert [t for t in listed if is_env_admin_token(t)] == [second]
