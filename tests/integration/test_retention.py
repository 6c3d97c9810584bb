"""Retention through the API and the CLI, on both backends: a message's own period erases its
payload and its attempts' response bodies (GET and the listing say so, ``payloadSha256``
stays), the default period keeps the others, and ``hookpost cleanup --dry-run`` counts.

Time moves by an injected clock (the retention service's), never by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson
import pytest
from svix.api import ApplicationIn, EndpointIn, MessageIn, SvixAsync

from hookpost.cli import main
from hookpost.domain.retention import DAY_MS, HOUR_MS, RetentionPolicy
from hookpost.services.common import now_ms
from hookpost.services.retention import RetentionService
from hookpost.store.secretbox import generate_main_key
from tests.integration.test_api_harness import ApiServer, close_svix, running_api
from tests.support.polling import eventually
from tests.support.receiver import Receiver, always

PAYLOAD = {"card": "4242", "amount": 42}


def _settings(url: str) -> dict[str, Any]:
    return {} if url.startswith("sqlite") else {"main_key": generate_main_key()}


async def test_a_retention_period_erases_the_payload_and_the_responses(
    any_database_url: str, receiver: Receiver
) -> None:
    receiver.respond("/hook", always(200, "secret response body"))
    async with running_api(any_database_url, **_settings(any_database_url)) as api:
        svix = api.svix()
        try:
            await _erase_and_check(api, svix, receiver)
        finally:
            await close_svix(svix)


async def _erase_and_check(api: ApiServer, svix: SvixAsync, receiver: Receiver) -> None:
    app = await svix.application.create(ApplicationIn(name="Acme"))
    await svix.endpoint.create(app.id, EndpointIn(url=receiver.url("/hook")))
    short = await svix.message.create(
        app.id, MessageIn(event_type="card.charged", payload=PAYLOAD, payload_retention_hours=1)
    )
    days = await svix.message.create(
        app.id, MessageIn(event_type="card.charged", payload=PAYLOAD, payload_retention_period=2)
    )
    default = await svix.message.create(
        app.id, MessageIn(event_type="card.charged", payload=PAYLOAD)
    )
    sha = hashlib.sha256(orjson.dumps(PAYLOAD)).hexdigest()

    async def raw(path: str) -> dict[str, Any]:
        async with api.http() as http:
            r = await http.get(path)
            assert r.status_code == 200, r.text
            return dict(r.json())

    async def attempts(msg_id: str) -> list[dict[str, Any]]:
        found = await raw(f"/api/v1/app/{app.id}/attempt/msg/{msg_id}?with_content=true")
        return list(found["data"])

    for msg in (short, days, default):
        (attempt,) = await eventually(lambda m=msg: attempts(m.id), lambda a: len(a) == 1)
        assert attempt["response"] == "secret response body"

    hp = api.hp
    start = now_ms()

    async def cleanup_at(at: int) -> int:
        service = RetentionService(
            hp.store, hp.services.retention.policy, clock=lambda: at, pause_s=0
        )
        return (await service.cleanup()).payloads

    assert await cleanup_at(start + HOUR_MS - 60_000) == 0  # not yet
    assert await cleanup_at(start + HOUR_MS + 60_000) == 1
    got = await raw(f"/api/v1/app/{app.id}/msg/{short.id}")
    assert (got["payload"], got["expunged"], got["payloadSha256"]) == ({}, True, sha)
    (attempt,) = await attempts(short.id)
    assert attempt["response"] == ""
    listed = await raw(f"/api/v1/app/{app.id}/msg?with_content=true")
    by_id = {m["id"]: m for m in listed["data"]}
    assert by_id[short.id]["expunged"] and by_id[short.id]["payload"] == {}
    assert by_id[days.id]["expunged"] is False and by_id[days.id]["payload"] == PAYLOAD
    # the extension field does not trouble the SDK
    assert (await svix.message.get(app.id, short.id)).id == short.id

    assert await cleanup_at(start + 2 * DAY_MS + 60_000) == 1  # payloadRetentionPeriod: 2
    assert (await raw(f"/api/v1/app/{app.id}/msg/{days.id}"))["expunged"] is True
    # The default (HOOKPOST_PAYLOAD_RETENTION_DAYS, 90 days) keeps the third one until then.
    assert await cleanup_at(start + 89 * DAY_MS) == 0
    assert await cleanup_at(start + 90 * DAY_MS + 60_000) == 1
    assert (await raw(f"/api/v1/app/{app.id}/msg/{default.id}"))["payloadSha256"] == sha


async def test_the_default_period_is_the_deployments(any_database_url: str) -> None:
    async with running_api(
        any_database_url, payload_retention_days=3, **_settings(any_database_url)
    ) as api:
        assert api.hp.services.retention.policy == RetentionPolicy(payload_days=3)
        async with api.http() as http:
            r = await http.post("/api/v1/app", json={"name": "Acme"})
            app_id = r.json()["id"]
            r = await http.post(
                f"/api/v1/app/{app_id}/msg", json={"eventType": "a.b", "payload": {"x": 1}}
            )
            assert r.status_code == 202, r.text
        msg = await api.hp.store.get_message(app_id, r.json()["id"])
        assert msg.payload_expires_at == msg.created_at + 3 * DAY_MS


def test_cleanup_cli_dry_run_counts_then_deletes(
    any_database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hookpost.domain.ids import MESSAGE, new_id
    from hookpost.domain.models import Message
    from hookpost.wiring import Hookpost

    if not any_database_url.startswith("sqlite"):
        monkeypatch.setenv("HOOKPOST_MAIN_KEY", generate_main_key())
    monkeypatch.delenv("HOOKPOST_RETENTION_DAYS", raising=False)

    async def populate() -> None:
        async with Hookpost.open(any_database_url) as hp:
            app = await hp.apps.create("Acme")
            now = now_ms()
            for age_days in (40, 35, 10):  # two beyond 30 days, one within
                at = now - age_days * DAY_MS
                msg = Message(new_id(MESSAGE, at), app.id, "a.b", b"{}", created_at=at)
                await hp.store.create_message(msg, at)

    asyncio.run(populate())
    args = ["cleanup", "--db", any_database_url, "--older-than", "30d"]
    main([*args, "--dry-run"])
    out = capsys.readouterr().out
    assert "would delete 2 messages, 0 deliveries, 0 attempts" in out
    main(args)
    assert "deleted 2 messages" in capsys.readouterr().out
    main([*args, "--dry-run"])
    assert "would delete 0 messages" in capsys.readouterr().out
    main(["cleanup", "--db", any_database_url])
    assert "no horizon" in capsys.readouterr().out
