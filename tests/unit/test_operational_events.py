"""Which operational event a change makes (domain.operational), and the payload shapes."""

from __future__ import annotations

import pytest

from hookpost.domain import operational as op


@pytest.mark.parametrize(
    ("succeeded", "final", "attempts", "expected"),
    [
        (True, False, 1, None),  # the everyday success
        (True, False, 4, None),  # never reported failing: nothing to recover from
        (True, False, 5, op.ATTEMPT_RECOVERED),
        (False, False, 3, None),
        (False, False, 4, op.ATTEMPT_FAILING),  # the 4th failure, as Svix
        (False, False, 5, None),  # failing is sent once
        (False, True, 2, op.ATTEMPT_EXHAUSTED),
        (False, True, 4, op.ATTEMPT_EXHAUSTED),  # exhausted wins over failing
    ],
)
def test_attempt_event_type(succeeded: bool, final: bool, attempts: int, expected: str) -> None:
    assert op.attempt_event_type(succeeded, final, attempts) == expected


@pytest.mark.parametrize(
    ("was", "now", "expected"),
    [
        (False, False, op.ENDPOINT_UPDATED),
        (True, True, op.ENDPOINT_UPDATED),
        (False, True, op.ENDPOINT_DISABLED),
        (True, False, op.ENDPOINT_ENABLED),
    ],
)
def test_endpoint_change_event(was: bool, now: bool, expected: str) -> None:
    event = op.endpoint_change_event(was, now, "app_1", "acme", "ep_1", None, 0)
    assert event.event_type == expected
    if expected == op.ENDPOINT_DISABLED:
        assert event.data["trigger"] == "manual" and event.data["failSince"] is None


def test_payload_shape_and_names_filled_in() -> None:
    event = op.attempt_event(
        op.ATTEMPT_EXHAUSTED,
        app_id="app_1",
        msg_id="msg_1",
        endpoint_id="ep_1",
        attempt_id="atmpt_1",
        status_code=500,
        at_ms=1_700_000_000_000,
    )
    assert event.payload() == {
        "type": "message.attempt.exhausted",
        "data": {
            "appId": "app_1",
            "appUid": None,
            "msgId": "msg_1",
            "msgEventId": None,
            "endpointId": "ep_1",
            "lastAttempt": {
                "id": "atmpt_1",
                "responseStatusCode": 500,
                "timestamp": "2023-11-14T22:13:20.000Z",
            },
        },
    }
    assert op.unnamed([event]) == {
        "applications": {"app_1"},
        "messages": {"msg_1"},
        "endpoints": set(),  # the attempt events have no endpointUid
    }
    names = {"applications": {"app_1": "acme"}, "messages": {"msg_1": None}}
    filled = op.named(event, names).data
    assert (filled["appUid"], filled["msgEventId"]) == ("acme", None)


def test_the_operational_app_id_is_no_client_id() -> None:
    from hookpost.domain import ids

    assert ids.has_id_form(ids.APP, op.OPERATIONAL_APP_ID)  # uids may not take this form
    assert op.OPERATIONAL_APP_ID < ids.new_id(ids.APP, 1)  # older than any id made
