"""Lifecycle: a store answers ``ping`` once opened.

Run once per backend, through the ``store`` fixture (``conftest``)."""

from __future__ import annotations

from hookpost.store.base import Store


class TestLifecycle:
    async def test_ping(self, store: Store) -> None:
        await store.ping()
