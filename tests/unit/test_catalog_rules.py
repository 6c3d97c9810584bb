"""domain.catalog: what a strict catalog allows, and payloads against JSON Schemas."""

from __future__ import annotations

import hashlib

import pytest

from hookpost.domain.catalog import (
    check_schemas,
    compile_schemas,
    event_type_problem,
    payload_mismatch,
    subscription_problem,
    subscription_problems,
)
from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import EventType
from hookpost.domain.provenance import payload_sha256

CATALOG = {
    "invoice.paid": EventType("invoice.paid"),
    "invoice.voided": EventType("invoice.voided"),
    "user.created": EventType("user.created"),
    "user.old": EventType("user.old", archived=True),
    "legacy.gone": EventType("legacy.gone", archived=True),
}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("invoice.paid", None),
        ("invoice.unknown", "event type 'invoice.unknown' is not in the catalog"),
        ("user.old", "event type 'user.old' is archived"),
        ("*", None),
        ("invoice.*", None),
        ("user.*", None),  # user.created is live, user.old archived
        ("legacy.*", "pattern 'legacy.*' matches no live event type in the catalog"),
        ("nothing.*", "pattern 'nothing.*' matches no live event type in the catalog"),
        ("invoice.paid.*", "pattern 'invoice.paid.*' matches no live event type in the catalog"),
    ],
)
def test_subscription_entries(entry: str, problem: str | None) -> None:
    assert subscription_problem(entry, CATALOG) == problem


def test_star_needs_one_live_type() -> None:
    archived_only = {"a.b": EventType("a.b", archived=True)}
    assert subscription_problem("*", archived_only) is not None
    assert subscription_problem("*", {}) is not None


def test_subscription_problems_name_each_entry_by_index() -> None:
    found = subscription_problems(["invoice.paid", "nope", "user.old", "user.*"], CATALOG)
    assert [i for i, _ in found] == [1, 2]
    assert subscription_problems(None, CATALOG) == []


def test_message_types() -> None:
    assert event_type_problem("a", EventType("a")) is None
    assert event_type_problem("a", None) == "event type 'a' is not in the catalog"
    assert event_type_problem("a", EventType("a", archived=True)) == "event type 'a' is archived"


# --------------------------------------------------------------------------- schemas

SCHEMA_V1 = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        "customer": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "tier": {"enum": ["gold", "silver"]}},
            "required": ["id"],
        },
        "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
    },
    "required": ["amount", "customer"],
}


def _error(schemas: dict[str, object], payload: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        payload_mismatch(compile_schemas(schemas), payload)  # type: ignore[arg-type]
    return caught.value


def test_valid_payload_passes() -> None:
    payload_mismatch(
        compile_schemas({"1": SCHEMA_V1}),
        {"amount": 5, "customer": {"id": "c1", "tier": "gold"}, "lines": [{"sku": "x"}]},
    )
    payload_mismatch(compile_schemas(None), {"anything": True})
    payload_mismatch(compile_schemas({}), {"anything": True})


@pytest.mark.parametrize(
    ("payload", "path", "words"),
    [
        ({"amount": "12", "customer": {"id": "c"}}, ("amount",), "'type' rule"),
        ({"amount": -1, "customer": {"id": "c"}}, ("amount",), "'minimum' rule (0)"),
        ({"amount": 1, "customer": {}}, ("customer", "id"), "is required"),
        ({"customer": {"id": "c"}}, ("amount",), "is required"),
        ({"amount": 1, "customer": {"id": "c", "tier": "bronze"}}, ("customer", "tier"), "enum"),
        (
            {"amount": 1, "customer": {"id": "c"}, "lines": [{"sku": 1}, {}]},
            ("lines", 1, "sku"),
            "",
        ),
    ],
)
def test_the_error_names_the_failing_json_path(
    payload: dict[str, object], path: tuple[object, ...], words: str
) -> None:
    error = _error({"1": SCHEMA_V1}, payload)
    assert error.field == "payload"
    assert error.path == path
    assert "version 1" in error.message and words in error.message


def test_the_message_never_echoes_the_payloads_values() -> None:
    error = _error({"1": SCHEMA_V1}, {"amount": "sk_live_secret", "customer": {"id": "c"}})
    assert "sk_live_secret" not in error.message and "sk_live_secret" not in str(error)


def test_any_version_may_match_and_the_newest_is_reported() -> None:
    v2 = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}
    schemas = {"1": SCHEMA_V1, "2": v2, "10": {**v2, "required": ["grand_total"]}}
    compiled = compile_schemas(schemas)
    assert [v for v, _ in compiled] == ["10", "2", "1"]
    payload_mismatch(compiled, {"total": 3})  # version 2
    payload_mismatch(compiled, {"amount": 1, "customer": {"id": "c"}})  # version 1
    error = _error(schemas, {"other": 1})
    assert error.path == ("grand_total",) and "version 10" in error.message


def test_schema_drafts_follow_dollar_schema() -> None:
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "properties": {"n": {"type": "number", "minimum": 0, "exclusiveMinimum": True}},
    }
    payload_mismatch(compile_schemas({"1": draft4}), {"n": 1})
    assert _error({"1": draft4}, {"n": 0}).path == ("n",)


def test_references_resolve_within_the_schema() -> None:
    schema = {
        "$defs": {"money": {"type": "integer"}},
        "properties": {"amount": {"$ref": "#/$defs/money"}},
    }
    assert _error({"1": schema}, {"amount": 1.5}).path == ("amount",)


@pytest.mark.parametrize(
    ("schemas", "path"),
    [
        ({"1": {"type": 5}}, ("1", "type")),
        ({"1": {"properties": {"a": {"minimum": "zero"}}}}, ("1", "properties", "a", "minimum")),
        ({"1": {"required": "id"}}, ("1", "required")),
        ({"2": []}, ("2",)),
    ],
)
def test_invalid_schemas_are_refused_naming_the_path(
    schemas: dict[str, object], path: tuple[object, ...]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_schemas(schemas)  # type: ignore[arg-type]
    assert caught.value.field == "schemas" and caught.value.path == path


def test_valid_schemas_pass() -> None:
    check_schemas({"1": SCHEMA_V1, "2": {}, "3": {"description": "free text", "examples": [{}]}})
    check_schemas(None)


def test_payload_sha256_is_sha256_of_the_bytes() -> None:
    body = b'{"id":1,"name":"\xc3\xa9"}'
    assert payload_sha256(body) == hashlib.sha256(body).hexdigest()
    assert len(payload_sha256(b"")) == 64


def test_the_settings_read_from_the_environment() -> None:
    from hookpost.settings import Settings

    default = Settings.from_env({})
    assert (default.strict_event_types, default.reveal_secrets) == (False, True)
    env = {"HOOKPOST_STRICT_EVENT_TYPES": "1", "HOOKPOST_REVEAL_SECRETS": "0"}
    chosen = Settings.from_env(env)
    assert (chosen.strict_event_types, chosen.reveal_secrets) == (True, False)
