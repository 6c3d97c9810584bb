"""The dashboard's endpoint form: fields read into the services' inputs (each error naming its
field), and an endpoint written back into the same fields."""

from __future__ import annotations

import pytest

from hookpost.dashboard import endpoint_form
from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import Endpoint


def test_every_field_is_read() -> None:
    values = endpoint_form.read(
        {
            "url": " https://example.com/hook ",
            "description": "billing",
            "channels": "eu, us  vip",
            "filter": '{"amount": {"$gt": 10}}',
            "retryPolicy": '{"schedule": [5, 60]}',
            "throttleRate": "20",
            "timeoutSeconds": "7",
            "ordered": "on",
            "headers": "X-Team: billing\n\nX-Env:  prod ",
            "signatureScheme": "stripe",
        },
        ["invoice.paid"],
    )
    created = endpoint_form.new_endpoint(values)
    assert created.url == "https://example.com/hook"
    assert created.event_types == ["invoice.paid"]
    assert created.channels == ["eu", "us", "vip"]
    assert created.payload_filter == {"amount": {"$gt": 10}}
    assert created.retry_policy is not None and created.retry_policy.as_dict() == {
        "schedule": [5, 60]
    }
    assert (created.throttle_rate, created.timeout_s, created.ordered) == (20, 7, True)
    assert created.headers == {"X-Team": "billing", "X-Env": "prod"}
    assert created.signature_scheme == "stripe"
    assert "headers" not in endpoint_form.changes(values).given()


def test_blank_fields_mean_the_defaults() -> None:
    values = endpoint_form.read({"url": "https://example.com/h"}, [])
    assert values["event_types"] is None and values["channels"] is None
    assert values["payload_filter"] is None and values["retry_policy"] is None
    assert values["throttle_rate"] is None and values["ordered"] is False


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"throttleRate": "fast"}, "throttleRate"),
        ({"filter": "{nope"}, "filter"),
        ({"retryPolicy": "[1]"}, "retryPolicy"),
        ({"headers": "no colon here"}, "headers"),
        ({"signatureScheme": "md5"}, "signatureScheme"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        endpoint_form.read({"url": "https://example.com/h", **fields}, [])
    assert caught.value.field == field


def test_a_url_is_required() -> None:
    with pytest.raises(InvalidInput, match="url"):
        endpoint_form.new_endpoint(endpoint_form.read({"url": "  "}, []))


def test_an_endpoint_round_trips_through_its_fields() -> None:
    endpoint = Endpoint(
        "ep_1", "app_1", "https://example.com/h", channels=["eu"], headers={"X-A": "1"},
        throttle_rate=3, ordered=True, payload_filter={"a": 1},
    )  # fmt: skip
    values = endpoint_form.read(endpoint_form.fields_of(endpoint), [])
    assert values["channels"] == ["eu"] and values["headers"] == {"X-A": "1"}
    assert values["throttle_rate"] == 3 and values["ordered"] is True
    assert values["payload_filter"] == {"a": 1}
