"""The alert-rule form of the portal and dashboard: fields read into the API's rule fields
(blank: left out on create, removed on edit), errors naming the field, a rule written back."""

from __future__ import annotations

import pytest

from hookpost.dashboard import alert_form
from hookpost.domain.alerts import AlertRule, validate_spec
from hookpost.domain.errors import InvalidInput

FORM = {
    "name": " Too many ",
    "kind": "threshold",
    "metric": "sum",
    "field": "data.amount",
    "eventTypes": "invoice.paid, invoice.* ",
    "payloadFilter": '{"currency": "EUR"}',
    "operator": "gte",
    "value": "2.5",
    "windowSeconds": "300",
    "cooldownSeconds": "",
    "enabled": "on",
}


def test_a_filled_form_reads_into_a_valid_spec() -> None:
    spec = alert_form.given(alert_form.read(FORM))
    assert spec == {
        "name": "Too many",
        "kind": "threshold",
        "metric": "sum",
        "field": "data.amount",
        "eventTypes": ["invoice.paid", "invoice.*"],
        "payloadFilter": {"currency": "EUR"},
        "operator": "gte",
        "value": 2.5,
        "windowSeconds": 300,
        "enabled": True,
    }
    assert validate_spec(spec)["cooldownSeconds"] == 0  # the default for what was blank


def test_blank_fields_are_none_so_that_an_edit_removes_them() -> None:
    read = alert_form.read({"name": "x", "kind": "digest", "schedule": "1h"})
    assert read["windowSeconds"] is None and read["payloadFilter"] is None
    assert read["eventTypes"] is None and read["enabled"] is False  # an unticked box


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        ("windowSeconds", "5m", "must be a whole number"),
        ("cooldownSeconds", "1.5", "must be a whole number"),
        ("value", "lots", "must be a number"),
        ("sensitivity", "high", "must be a number"),
        ("payloadFilter", "{nope", "is not valid JSON"),
    ],
)
def test_an_unreadable_field_is_named(field: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        alert_form.read({**FORM, field: raw})
    assert caught.value.field == field and message in caught.value.message


def test_a_rule_is_written_back_into_its_fields() -> None:
    spec = validate_spec(alert_form.given(alert_form.read(FORM)))
    rule = AlertRule("alrt_1", "app_1", spec, 0, 0)
    fields = alert_form.fields_of(rule)
    assert fields["eventTypes"] == "invoice.paid, invoice.*"
    assert fields["payloadFilter"] == '{"currency": "EUR"}'
    assert fields["enabled"] == "on" and fields["pushedMetric"] == ""
    defaults = {"cooldownSeconds": 0, "evaluateEverySeconds": 10}
    assert alert_form.read(fields) == {**alert_form.read(FORM), **defaults}


@pytest.mark.parametrize(
    ("given", "line"),
    [
        (
            {"kind": "threshold", "operator": "gt", "value": 10, "windowSeconds": 60},
            "count > 10 over 60 s",
        ),
        (
            {"kind": "anomaly", "metric": "p95", "field": "ms", "windowSeconds": 60},
            "p95(ms) over 60 s, anomaly score ≥ 3.0 against 6 windows",
        ),
        ({"kind": "digest", "schedule": "1d"}, "a digest every 1d"),
        (
            {
                "kind": "threshold",
                "pushedMetric": "queue",
                "operator": "lt",
                "value": 1,
                "windowSeconds": 10,
            },
            "queue < 1 over 10 s",
        ),
    ],
)
def test_the_condition_column(given: dict[str, object], line: str) -> None:
    rule = AlertRule("alrt_1", "app_1", validate_spec({"name": "r", **given}), 0, 0)
    assert alert_form.condition(rule) == line
