"""The POST /msg front door (``messages.CreateMessageFrontDoor``) takes the requests that the
rate limit, the body cap and the routing would only pass on, keyed or not; everything else
passes through the full stack, untouched, and is answered as before. Real HTTP to a real
uvicorn; the door is spied on to see who answered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from svix.api import MessageIn

from tests.integration.conftest import ServedApi
from tests.integration.test_api_errors import assert_error
from tests.integration.test_api_harness import ApiServer, close_svix

MAX_PAYLOAD = 4096
BODY = {"eventType": "a.b", "payload": {"n": 1}}


class Spy:
    """Wraps the app's front door and records what it answered for each POST /msg."""

    def __init__(self, app: Any) -> None:
        self.door = app.front_door
        self.taken: list[bool] = []
        app.front_door = self

    async def __call__(self, scope: Any, receive: Any, send: Any) -> bool:
        record = scope["type"] == "http" and scope["path"].endswith("/msg")
        try:
            taken = bool(await self.door(scope, receive, send))
        except Exception:  # the door answered 500 and re-raised for the server's log
            if record:
                self.taken.append(True)
            raise
        if record:
            self.taken.append(taken)
        return taken

    async def which(self, request: Awaitable[httpx.Response]) -> tuple[bool, httpx.Response]:
        """(whether the front door answered, the response) for one request."""
        self.taken.clear()
        response = await request
        assert len(self.taken) == 1, self.taken
        return self.taken[0], response


@pytest.fixture
async def served(
    serve_api: Callable[..., Any], fresh_sqlite_url: str
) -> AsyncIterator[tuple[ServedApi, Spy]]:
    async with serve_api(fresh_sqlite_url, max_payload_bytes=MAX_PAYLOAD, api_rate_limit=1) as api:
        spy = Spy(api.app)
        # Refill the one-per-second buckets as fast as the tests take from them; the
        # rate-limit test stops the clock.
        limiter = api.app.state.rate_limiter
        ticks = [0.0]

        def clock() -> float:
            ticks[0] += 10.0
            return ticks[0]

        limiter.clock = clock
        yield api, spy


async def test_the_everyday_request_is_answered_at_the_door(
    served: tuple[ServedApi, Spy],
) -> None:
    api, spy = served
    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"

        taken, created = await spy.which(http.post(path, json=BODY))
        assert taken and created.status_code == 202, created.text
        assert created.json()["payload"] == {"n": 1}
        taken, hidden = await spy.which(http.post(path + "?with_content=false", json=BODY))
        assert taken and hidden.status_code == 202 and hidden.json()["payload"] == {}
        # Errors of the request itself are the door's to answer, in the usual shapes.
        taken, unknown = await spy.which(http.post("/api/v1/app/app_nope/msg", json=BODY))
        assert taken
        assert_error(unknown, 404, "not_found")
        taken, invalid = await spy.which(http.post(path, json={"payload": {}}))
        assert taken and invalid.status_code == 422
        assert invalid.json()["detail"][0]["loc"] == ["body", "eventType"]
        taken, again = await spy.which(http.post(path, json={**BODY, "eventId": "e1"}))
        assert taken and again.status_code == 202
        taken, conflict = await spy.which(http.post(path, json={**BODY, "eventId": "e1"}))
        assert taken
        assert_error(conflict, 409, "conflict")


async def test_what_a_middleware_acts_on_takes_the_full_stack(
    served: tuple[ServedApi, Spy],
) -> None:
    api, spy = served
    async with api.http() as http, api.http(None) as anonymous, api.http("hpk_nope") as stranger:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"eventType": "a.b",'
            yield b' "payload": {"chunked": true}}'

        taken, chunked = await spy.which(
            http.post(path, content=chunks(), headers={"content-type": "application/json"})
        )
        assert not taken and chunked.status_code == 202
        assert chunked.json()["payload"] == {"chunked": True}

        huge = {"eventType": "a.b", "payload": {"x": "y" * (MAX_PAYLOAD + 70_000)}}
        taken, too_big = await spy.which(http.post(path, json=huge))
        assert not taken
        assert_error(too_big, 413, "payload_too_large")

        other_type = {"content-type": "application/vnd.api+json"}
        content = httpx.Request("POST", "/", json=BODY).content
        taken, routed = await spy.which(http.post(path, content=content, headers=other_type))
        assert not taken and routed.status_code == 202

        taken, bad_query = await spy.which(http.post(path + "?with_content=nope", json=BODY))
        assert not taken and bad_query.status_code == 422

        for client in (anonymous, stranger):
            taken, refused = await spy.which(client.post(path, json=BODY))
            assert not taken
            assert_error(refused, 401, "authentication_failed")


async def test_the_route_reads_a_json_body_as_the_door_does(
    served: tuple[ServedApi, Spy],
) -> None:
    """A JSON body the door passes on (chunked here) is read by the route as the door reads
    one: the token before the body, and the body by the door's strict parser."""
    api, spy = served

    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    json_type = {"content-type": "application/json"}
    async with api.http() as http, api.http(None) as anonymous:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        for client in (anonymous, http):
            for door in (True, False):
                request = (
                    client.post(path, content=b"{broken", headers=json_type)
                    if door
                    else client.post(path, content=chunks(b"{bro", b"ken"), headers=json_type)
                )
                taken, refused = await spy.which(request)
                if client is anonymous:
                    assert not taken
                    assert_error(refused, 401, "authentication_failed")
                else:
                    assert taken is door and refused.status_code == 422
                    assert refused.json()["detail"][0]["type"] == "json_invalid"
        for door in (True, False):
            request = (
                http.post(path, content=b"", headers=json_type)
                if door
                else http.post(path, content=chunks(b""), headers=json_type)
            )
            taken, empty = await spy.which(request)
            assert taken is door and empty.status_code == 422
            assert empty.json()["detail"] == [
                {
                    "loc": ["body", 0],
                    "msg": "JSON decode error: Input is a zero-length, empty document",
                    "type": "json_invalid",
                }
            ]


async def test_a_keyed_send_is_answered_at_the_door(served: tuple[ServedApi, Spy]) -> None:
    """Every send of the official SDKs carries an idempotency key: the door runs it under the
    key as the stack's middleware does, and the two replay each other's answers."""
    api, spy = served
    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"

        keyed = {"idempotency-key": "k1"}
        taken, first = await spy.which(http.post(path, json=BODY, headers=keyed))
        assert taken and first.status_code == 202 and "idempotent-replayed" not in first.headers
        taken, replay = await spy.which(http.post(path, json=BODY, headers=keyed))
        assert taken and replay.headers["idempotent-replayed"] == "true"
        assert replay.content == first.content
        # The stack (another JSON content type) replays what the door stored, and back.
        routed = {"content-type": "application/vnd.api+json"}
        content = httpx.Request("POST", "/", json=BODY).content
        taken, across = await spy.which(
            http.post(path, content=content, headers={**keyed, **routed})
        )
        assert not taken and across.content == first.content
        assert across.headers["idempotent-replayed"] == "true"
        k2 = {"idempotency-key": "k2"}
        taken, stacked = await spy.which(http.post(path, content=content, headers={**k2, **routed}))
        assert not taken and stacked.status_code == 202
        taken, back = await spy.which(http.post(path, json=BODY, headers=k2))
        assert taken and back.content == stacked.content
        assert back.headers["idempotent-replayed"] == "true"
        # A refusal is an answer too: stored, and replayed even once the cause is gone.
        k3 = {"idempotency-key": "k3"}
        taken, invalid = await spy.which(http.post(path, json={"payload": {}}, headers=k3))
        assert taken and invalid.status_code == 422
        taken, again = await spy.which(http.post(path, json=BODY, headers=k3))
        assert taken and again.status_code == 422 and again.content == invalid.content
        assert again.headers["idempotent-replayed"] == "true"
        listed = (await http.get(path)).json()["data"]
        assert len(listed) == 2  # k1's and k2's

    sdk = ApiServer(api.url, api.hp).svix()
    try:
        spy.taken.clear()
        out = await sdk.message.create(app_id, MessageIn(event_type="a.b", payload={"n": 2}))
        assert out.id.startswith("msg_") and spy.taken == [True]
    finally:
        await close_svix(sdk)


async def test_one_key_through_the_door_and_the_route_creates_one_message(
    served: tuple[ServedApi, Spy],
) -> None:
    """Both ways in send through one implementation: a key sent at the door and then through
    the FastAPI route (a JSON type the door passes on), or the other way round, or both at
    once, creates one message, and every answer is that message."""
    api, spy = served
    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        content = httpx.Request("POST", "/", json=BODY).content
        routed = {"content-type": "application/vnd.api+json"}
        odd = {"content-type": "text/json"}  # not even parsed as JSON by the route

        door_first = {"idempotency-key": "door-first"}
        taken, first = await spy.which(http.post(path, json=BODY, headers=door_first))
        assert taken and first.status_code == 202
        for headers in (routed, odd):
            taken, repeat = await spy.which(
                http.post(path, content=content, headers={**door_first, **headers})
            )
            assert not taken and repeat.status_code == 202, repeat.text
            assert repeat.json()["id"] == first.json()["id"]
            assert repeat.headers["idempotent-replayed"] == "true"

        route_first = {"idempotency-key": "route-first"}
        taken, first = await spy.which(
            http.post(path, content=content, headers={**route_first, **routed})
        )
        assert not taken and first.status_code == 202
        taken, repeat = await spy.which(http.post(path, json=BODY, headers=route_first))
        assert taken and repeat.json()["id"] == first.json()["id"]
        assert repeat.headers["idempotent-replayed"] == "true"

        at_once = {"idempotency-key": "at-once"}
        sends = await asyncio.gather(
            *(
                http.post(path, json=BODY, headers=at_once)
                if i % 2
                else http.post(path, content=content, headers={**at_once, **routed})
                for i in range(6)
            )
        )
        assert {r.status_code for r in sends} == {202}
        assert len({r.json()["id"] for r in sends}) == 1
        assert len((await http.get(path)).json()["data"]) == 3


async def test_a_repeat_is_answered_with_the_message_as_it_is_now(
    served: tuple[ServedApi, Spy],
) -> None:
    """A send's key holds its message, not the bytes first sent: once the message's content
    is expunged, a repeat (at the door or through the stack) answers it with ``{}`` as its
    payload; with the repeat's own ``with_content``. Once its application is deleted, a repeat
    is a 404 like any read of it, and runs no send."""
    api, spy = served
    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        key = {"idempotency-key": "k1"}
        taken, first = await spy.which(http.post(path, json=BODY, headers=key))
        assert taken and first.status_code == 202 and first.json()["payload"] == {"n": 1}
        msg_id = first.json()["id"]
        taken, hidden = await spy.which(
            http.post(path + "?with_content=false", json=BODY, headers=key)
        )
        assert taken and hidden.headers["idempotent-replayed"] == "true"
        assert hidden.json() == {**first.json(), "payload": {}}
        assert (await http.delete(f"{path}/{msg_id}/content")).status_code == 204

        content = httpx.Request("POST", "/", json=BODY).content
        routed = {**key, "content-type": "application/vnd.api+json"}

        async def repeats() -> AsyncIterator[httpx.Response]:
            """A repeat at the door, then one through the stack."""
            at_door = {**key, "content-type": "application/json"}
            for door, headers in ((True, at_door), (False, routed)):
                taken, answer = await spy.which(http.post(path, content=content, headers=headers))
                assert taken is door
                yield answer

        async for replay in repeats():
            assert replay.status_code == 202 and replay.headers["idempotent-replayed"] == "true"
            assert replay.json() == {**first.json(), "payload": {}, "expunged": True}
        assert len((await http.get(path)).json()["data"]) == 1

        assert (await http.delete(f"/api/v1/app/{app_id}")).status_code == 204
        async for gone in repeats():
            assert_error(gone, 404, "not_found")


async def test_a_keyed_send_at_the_door_costs_no_lookup(
    served: tuple[ServedApi, Spy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The door does not look a key up before the send: the message's write checks it, and a
    repeat gets the stored answer from there. Only answers the write did not store look the
    key up first (a repeat gets what was stored, not a new answer)."""
    api, spy = served
    store = api.hp.store
    lookups: list[str] = []
    original_get = store.get_idempotent

    async def counting_get(scope: str, key: str, now: int) -> Any:
        lookups.append(key.rsplit(" ", 1)[-1])
        return await original_get(scope, key, now)

    monkeypatch.setattr(store, "get_idempotent", counting_get)
    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        k1 = {"idempotency-key": "k1"}
        taken, first = await spy.which(http.post(path, json=BODY, headers=k1))
        assert taken and first.status_code == 202
        other = {"eventType": "c.d", "payload": {"other": True}}
        taken, repeat = await spy.which(http.post(path, json=other, headers=k1))
        assert taken and repeat.content == first.content
        assert repeat.headers["idempotent-replayed"] == "true"
        assert lookups == []
        # A refusal is looked up before it is stored; its repeat with a valid body gets the
        # refusal back from the write, and creates nothing.
        k2 = {"idempotency-key": "k2"}
        taken, refused = await spy.which(http.post(path, json={"payload": {}}, headers=k2))
        assert taken and refused.status_code == 422 and lookups == ["k2"]
        taken, again = await spy.which(http.post(path, json=BODY, headers=k2))
        assert taken and again.status_code == 422 and again.content == refused.content
        assert again.headers["idempotent-replayed"] == "true" and lookups == ["k2"]
        assert len((await http.get(path)).json()["data"]) == 1
        # `application` creates an application before the message: the key is looked up
        # first, and a repeat of a refused send does not create it.
        k3 = {"idempotency-key": "k3"}
        app_path = "/api/v1/app/new-app/msg"
        with_app = {**BODY, "application": {"name": "New", "uid": "new-app"}}
        invalid = {**with_app, "eventType": "not valid!"}
        taken, refused = await spy.which(http.post(app_path, json=invalid, headers=k3))
        assert taken and refused.status_code == 422 and lookups[-1] == "k3"
        taken, replayed = await spy.which(http.post(app_path, json=with_app, headers=k3))
        assert taken and replayed.status_code == 422
        assert replayed.headers["idempotent-replayed"] == "true"
        assert (await http.get("/api/v1/app/new-app")).status_code == 404
        taken, made = await spy.which(
            http.post(app_path, json=with_app, headers={"idempotency-key": "k4"})
        )
        assert taken and made.status_code == 202
        assert (await http.get("/api/v1/app/new-app")).status_code == 200


async def test_a_repeat_waits_for_the_first_whichever_way_each_came_in(
    served: tuple[ServedApi, Spy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The door and the stack share one in-flight map: a repeat arriving through the stack
    while the door's first request is inside its message write waits for it (it does not
    even look the key up), then replays its answer."""
    api, spy = served
    store = api.hp.store
    entered, release = asyncio.Event(), asyncio.Event()
    lookups: list[str] = []
    original_create, original_get = store.create_message, store.get_idempotent

    async def held_create(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await original_create(*args, **kwargs)

    async def counting_get(scope: str, key: str, now: int) -> Any:
        lookups.append(key)
        return await original_get(scope, key, now)

    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        monkeypatch.setattr(store, "create_message", held_create)
        monkeypatch.setattr(store, "get_idempotent", counting_get)
        spy.taken.clear()
        key = {"idempotency-key": "same"}
        first = asyncio.create_task(http.post(path, json=BODY, headers=key))
        await asyncio.wait_for(entered.wait(), 10)
        routed = {**key, "content-type": "application/vnd.api+json"}
        content = httpx.Request("POST", "/", json=BODY).content
        second = asyncio.create_task(http.post(path, content=content, headers=routed))
        try:
            # An observation window (what is checked is that nothing happens): the repeat
            # reaches the stack's middleware within it; with a map of its own it would look
            # the key up (and find nothing) at once.
            await asyncio.sleep(0.2)
            assert lookups == []
        finally:
            release.set()  # else a failure leaves the first request hanging the shutdown
        a, b = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert sorted(spy.taken) == [False, True]  # one at the door, one through the stack
    assert a.status_code == b.status_code == 202 and a.content == b.content
    assert b.headers["idempotent-replayed"] == "true"


async def test_the_first_answer_to_a_key_wins_across_processes(
    served: tuple[ServedApi, Spy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may answer a key between this one's lookup and its write: the answer
    stored first stays, and is what this request answers too."""
    api, spy = served
    store = api.hp.store
    original_get = store.get_idempotent
    elsewhere = b'{"id":"msg_from_another_process"}'

    async def racing_get(scope: str, key: str, now: int) -> Any:
        found = await original_get(scope, key, now)
        # Another process stores its answer right after our lookup found nothing.
        await store.put_idempotent(scope, key, 202, elsewhere, now + 60_000, now)
        return found

    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        monkeypatch.setattr(store, "get_idempotent", racing_get)
        keyed = {"idempotency-key": "k1"}
        taken, refused = await spy.which(http.post(path, json={"payload": {}}, headers=keyed))
        assert taken and refused.status_code == 202 and refused.content == elsewhere
        assert refused.headers["idempotent-replayed"] == "true"
        monkeypatch.undo()
        taken, again = await spy.which(http.post(path, json=BODY, headers=keyed))
        assert again.status_code == 202 and again.content == elsewhere


async def test_a_failed_key_lookup_is_a_503(
    served: tuple[ServedApi, Spy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key's lookup failing because the database is away is a 503 (a retry executes), both
    in the stack and at the door; any other failure is a 500."""
    from hookpost.domain.errors import StoreUnavailable

    api, spy = served
    failure: list[Exception] = []

    async def failing_get(*args: Any) -> Any:
        raise failure[0]

    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        monkeypatch.setattr(api.hp.store, "get_idempotent", failing_get)
        keyed = {"idempotency-key": "k1"}
        routed = {**keyed, "content-type": "application/vnd.api+json"}
        content = httpx.Request("POST", "/", json=BODY).content
        with_app = {**BODY, "application": {"name": "New", "uid": "new-app"}}
        failure[:] = [StoreUnavailable("away")]
        taken, in_stack = await spy.which(http.post(path, content=content, headers=routed))
        assert not taken
        assert_error(in_stack, 503, "store_unavailable")
        taken, at_door = await spy.which(
            http.post("/api/v1/app/new-app/msg", json=with_app, headers=keyed)
        )
        assert taken
        assert_error(at_door, 503, "store_unavailable")
        failure[:] = [RuntimeError("a bug")]
        taken, broken = await spy.which(http.post(path, content=content, headers=routed))
        assert not taken
        assert_error(broken, 500, "internal_error")
        monkeypatch.undo()
        taken, sent = await spy.which(http.post(path, content=content, headers=routed))
        assert not taken and sent.status_code == 202  # no failure was stored
        assert (await http.get("/api/v1/app/new-app")).status_code == 404


@pytest.mark.parametrize("rate_limit", [1, 0], ids=["rate-limited", "unlimited"])
async def test_a_database_away_while_authenticating_is_a_503(
    serve_api: Callable[..., Any],
    fresh_sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    rate_limit: int,
) -> None:
    """The rate limit and idempotency middlewares authenticate outside FastAPI's error
    handlers (and the door leaves a failed authentication to them): a database away while
    they look a token up is the same 503 with Retry-After as anywhere else, not a 500."""
    from hookpost.domain.errors import StoreUnavailable

    async def down(*args: Any) -> Any:
        raise StoreUnavailable("sqlite: database is locked")

    async with serve_api(fresh_sqlite_url, api_rate_limit=rate_limit) as api:
        async with api.http() as http:
            app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        monkeypatch.setattr(api.hp.store, "find_token", down)
        async with api.http("hpk_not_cached_yet") as http:
            path = f"/api/v1/app/{app_id}/msg"
            keyed = {"idempotency-key": "k1"}
            for response in (
                await http.get("/api/v1/app"),
                await http.post(path, json=BODY),
                await http.post(path, json=BODY, headers=keyed),
            ):
                assert_error(response, 503, "store_unavailable")
                assert response.headers["retry-after"] == "1"


async def test_an_empty_bucket_is_left_to_the_rate_limit(served: tuple[ServedApi, Spy]) -> None:
    api, spy = served
    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        api.app.state.rate_limiter.clock = lambda: 1e9  # stopped: a burst of 2, then empty
        results = [await spy.which(http.post(path, json=BODY)) for _ in range(3)]
    assert [(taken, r.status_code) for taken, r in results] == [
        (True, 202),
        (True, 202),
        (False, 429),
    ]
    assert results[2][1].headers["retry-after"] == "1"


async def test_an_unexpected_error_is_the_same_500_at_the_door_and_in_the_stack(
    served: tuple[ServedApi, Spy],
) -> None:
    api, spy = served

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
        path = f"/api/v1/app/{app_id}/msg"
        api.hp.services.messages.send_to_app_id = broken
        taken, at_door = await spy.which(http.post(path, json=BODY))
        content = httpx.Request("POST", "/", json=BODY).content
        other_type = {"content-type": "application/vnd.api+json"}
        not_taken, in_stack = await spy.which(http.post(path, content=content, headers=other_type))
    assert taken and not not_taken
    for response in (at_door, in_stack):
        assert_error(response, 500, "internal_error")


async def test_a_body_the_door_cannot_bound_by_its_length_goes_round(
    served: tuple[ServedApi, Spy],
) -> None:
    """The door reads the body without counting it, so a Transfer-Encoding beside the
    Content-Length (which an h11 server obeys: any size could follow) is the body cap's."""
    api, spy = served
    async with api.http() as http:
        app_id = (await http.post("/api/v1/app", json={"name": "a"})).json()["id"]
    body = b'{"eventType": "a.b", "payload": {}}'
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [
        (b"authorization", f"Bearer {api.admin_token}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"transfer-encoding", b"chunked"),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/api/v1/app/{app_id}/msg",
        "query_string": b"",
        "headers": headers,
    }
    assert await spy.door(scope, receive, send) is False and sent == []
    # The same request without the Transfer-Encoding is the door's.
    scope["headers"] = headers[:3]
    assert await spy.door(scope, receive, send) is True
    assert sent[0]["status"] == 202
