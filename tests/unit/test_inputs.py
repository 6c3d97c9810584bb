"""The services' typed inputs: what a PATCH sets, what a PUT replaces, and the small rules the
routes used to apply themselves (example payloads, status-code classes, message filters)."""

from __future__ import annotations

from hookpost.domain.examples import example_payload
from hookpost.domain.inputs import (
    UNSET,
    AppChanges,
    EndpointChanges,
    NewApp,
    NewEndpoint,
    status_code_class,
)
from hookpost.domain.models import ApiToken, EventType, Message
from hookpost.domain.queries import MessageFilter


def test_changes_hold_only_what_was_given_and_none_clears() -> None:
    assert EndpointChanges().given() == {}
    assert EndpointChanges(disabled=True, uid=None).given() == {"disabled": True, "uid": None}
    assert AppChanges(name="x").uid is UNSET


def test_a_put_replaces_every_changeable_field_and_no_other() -> None:
    new = NewEndpoint(url="https://example.com/h", headers={"x": "1"}, secret="whsec_x")
    replacing = EndpointChanges.replacing(new).given()
    assert replacing["url"] == "https://example.com/h"
    assert replacing["uid"] is None and replacing["event_types"] is None
    assert "headers" not in replacing and "secret" not in replacing
    app = AppChanges.replacing(NewApp("Acme", uid="acme")).given()
    assert app == {"name": "Acme", "uid": "acme", "metadata": {}, "throttle_rate": None}


def test_example_payload_is_the_newest_schemas_example_else_a_generic_one() -> None:
    schemas = {
        "1": {"examples": [{"v": 1}]},
        "2": {"examples": [{"v": 2, "n": 0}, {"v": 2, "n": 1}]},
    }
    et = EventType("a.b", schemas=schemas)
    assert example_payload(et, "a.b") == {"v": 2, "n": 0}
    assert example_payload(et, "a.b", 1) == {"v": 2, "n": 1}
    assert example_payload(et, "a.b", 9) == {"v": 2, "n": 0}
    generic = {"example": True, "eventType": "a.b", "message": "an example event"}
    assert example_payload(None, "a.b") == generic
    assert example_payload(EventType("a.b"), "a.b") == generic


def test_status_code_classes() -> None:
    assert [status_code_class(c) for c in (0, 99, 100, 204, 399, 404, 503)] == [
        0,
        0,
        100,
        200,
        300,
        400,
        500,
    ]


def test_token_expiry() -> None:
    forever = ApiToken("t", "h", None)
    assert not forever.expired(2**62)
    ttl = ApiToken("t", "h", None, expires_at=1_000)
    assert not ttl.expired(999)
    assert ttl.expired(1_000)


def test_message_filter_matches() -> None:
    msg = Message("msg_1", "app_1", "a.b", b"{}", channels=["eu"], created_at=100)
    assert MessageFilter().matches(msg)
    assert MessageFilter(event_types=["a.b", "c.d"], channel="eu", before=101, after=99).matches(
        msg
    )
    assert not MessageFilter(event_types=["c.d"]).matches(msg)
    assert not MessageFilter(channel="us").matches(msg)
    assert not MessageFilter(before=100).matches(msg)
    assert not MessageFilter(after=100).matches(msg)
