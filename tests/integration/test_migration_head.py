"""The migrations' head revision: the ``HEAD_REVISION`` constant and ``is_current`` (on a
SQLite file)."""

from __future__ import annotations

import asyncio


def test_head_revision_constant_matches_alembic() -> None:
    """``HEAD_REVISION`` lets processes skip Alembic when the schema is current: it must be
    the real head, or a new migration would never run."""
    from alembic.script import ScriptDirectory

    from hookpost.store.migrate import HEAD_REVISION, alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite:///unused.db"))
    assert script.get_heads() == [HEAD_REVISION]


async def test_is_current_only_at_head(tmp_path) -> None:
    from hookpost.store.migrate import is_current, upgrade

    url = f"sqlite:///{tmp_path}/h.db"
    assert not await is_current(url)  # no file yet
    await asyncio.to_thread(upgrade, url)
    assert await is_current(url)
