"""Unit tests for hookpost.api.schemas: validation rules, camelCase I/O, svix SDK compatibility."""

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import svix.models as sdk
from pydantic import BaseModel, ValidationError

from hookpost.api import schemas as s

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdefghijklmn").decode()  # 24 bytes, 32 chars

APP = {"name": "Acme"}
EP = {"url": "https://example.com/webhook"}
MSG = {"eventType": "user.signup", "payload": {"a": 1}}
ET = {"name": "user.signup", "description": "A user signed up"}


def errors(model: type[BaseModel], data: dict[str, Any]) -> list[Any]:
    with pytest.raises(ValidationError) as exc_info:
        model.model_validate(data)
    return exc_info.value.errors()


def assert_invalid(model: type[BaseModel], data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    """Validation fails, and some error's loc starts with ``loc`` (camelCase field names)."""
    locs = [e["loc"] for e in errors(model, data)]
    assert any(got[: len(loc)] == loc for got in locs), locs


def to_sdk(model: BaseModel, sdk_cls: type[Any]) -> Any:
    """Serialise as the API does, through real JSON, and parse with the svix SDK's model."""
    data = json.loads(json.dumps(model.model_dump(mode="json", by_alias=True)))
    return sdk_cls.model_validate(data)


def from_sdk(sdk_model: Any, model: type[BaseModel]) -> Any:
    """Serialise as the svix SDK does for request bodies, and parse with our model."""
    return model.model_validate_json(sdk_model.model_dump_json(exclude_unset=True, by_alias=True))


# --------------------------------------------------------------------------- valid input


def test_application_in_minimal_and_defaults() -> None:
    app = s.ApplicationIn.model_validate(APP)
    assert (app.name, app.uid, app.throttle_rate, app.metadata) == ("Acme", None, None, {})


def test_endpoint_in_full_camel_case() -> None:
    body = {
        "url": "https://example.com/webhook?x=1",
        "description": "main",
        "uid": "ep-1.a_b",
        "disabled": True,
        "throttleRate": 65535,
        "eventTypes": ["user.signup", "user.deleted"],
        "channels": ["project:123", "group_2"],
        "metadata": {"team": "billing"},
        "secret": SECRET,
        "headers": {"Authorization": "Bearer abc", "X-Tab": "a\tb", "X-Empty": ""},
    }
    ep = s.EndpointIn.model_validate(body)
    assert ep.event_types == ["user.signup", "user.deleted"]
    assert ep.channels == ["project:123", "group_2"]
    assert ep.throttle_rate == 65535
    assert ep.headers == body["headers"]
    assert ep.model_dump(by_alias=True, exclude_unset=True) == body


def test_endpoint_in_defaults_and_snake_case_population() -> None:
    ep = s.EndpointIn(url="http://localhost:8080/hook", event_types=["a"])
    assert ep.description == ""
    assert ep.disabled is False
    assert ep.metadata == {}
    assert ep.secret is None
    assert ep.headers is None
    assert ep.model_dump(by_alias=True)["eventTypes"] == ["a"]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "http://localhost:8080/x",
        "HTTPS://Example.COM/Path",
        "https://[::1]:8443/hook",
        "https://10.0.0.1/hook",
        "https://example.com/a?b=c#d",
        "https://bücher.example/hook",
    ],
)
def test_endpoint_urls_accepted(url: str) -> None:
    assert s.EndpointIn.model_validate({"url": url}).url == url


# The longest: 64 bytes (the domain's rule, checked with the body since signatureScheme came).
@pytest.mark.parametrize("secret", [SECRET, SECRET.removeprefix("whsec_"), "whsec_" + "A" * 84])
def test_secrets_accepted(secret: str) -> None:
    assert s.EndpointIn.model_validate({**EP, "secret": secret}).secret == secret


def test_unique_lists_are_deduplicated_in_order() -> None:
    ep = s.EndpointIn.model_validate({**EP, "channels": ["b", "a", "b"], "eventTypes": ["x", "x"]})
    assert ep.channels == ["b", "a"]
    assert ep.event_types == ["x"]


def test_message_in_full_and_defaults() -> None:
    msg = s.MessageIn.model_validate(
        {
            **MSG,
            "payload": {"nested": {"list": [1, 2, None]}, "s": "x"},
            "eventId": "evt-1",
            "channels": ["c:1"],
            "application": {"name": "App", "uid": "app-1"},
            "payloadRetentionPeriod": 5,
            "tags": ["ignored"],  # newer SDK fields are ignored
            "deliverAt": "2030-01-01T00:00:00Z",
        }
    )
    assert msg.payload["nested"] == {"list": [1, 2, None]}
    assert msg.application is not None and msg.application.uid == "app-1"
    assert msg.payload_retention_period == 5
    # absent: the server's default applies (HOOKPOST_PAYLOAD_RETENTION_DAYS)
    assert s.MessageIn.model_validate(MSG).payload_retention_period is None
    hours = s.MessageIn.model_validate({**MSG, "payloadRetentionHours": 2160})
    assert hours.payload_retention_hours == 2160


def test_event_type_models() -> None:
    et = s.EventTypeIn.model_validate(
        {**ET, "schemas": {"1": {"type": "object"}}, "featureFlag": "beta", "deprecated": True}
    )
    assert (et.name, et.archived, et.deprecated, et.feature_flag) == (
        "user.signup",
        False,
        True,
        "beta",
    )
    upd = s.EventTypeUpdate.model_validate({"description": "d"})
    assert (upd.archived, upd.deprecated, upd.schemas, upd.feature_flag) == (
        False,
        False,
        None,
        None,
    )


def test_recover_in_converts_to_utc() -> None:
    rec = s.RecoverIn.model_validate(
        {"since": "2024-05-01T14:00:00+02:00", "until": "2024-05-01T12:30:00Z"}
    )
    assert rec.since == NOW and rec.since.tzinfo == UTC
    assert rec.until == NOW + timedelta(minutes=30)
    assert s.RecoverIn.model_validate({"since": "2024-05-01T12:00:00Z"}).until is None


def test_secret_rotate_defaults() -> None:
    assert s.EndpointSecretRotateIn.model_validate({}).grace_period_seconds == 86400
    rot = s.EndpointSecretRotateIn.model_validate({"key": None, "gracePeriodSeconds": None})
    assert (rot.key, rot.grace_period_seconds) == (None, 86400)
    rot = s.EndpointSecretRotateIn.model_validate({"key": SECRET, "gracePeriodSeconds": 0})
    assert (rot.key, rot.grace_period_seconds) == (SECRET, 0)


def test_app_portal_access_in() -> None:
    body = s.AppPortalAccessIn.model_validate({"featureFlags": ["a", "a", "b"]})
    assert body.feature_flags == ["a", "b"]
    assert body.application is None
    assert s.AppPortalAccessIn.model_validate({}).feature_flags == []


def test_status_text() -> None:
    assert s.status_text(s.MessageStatus.SUCCESS) is s.MessageStatusText.SUCCESS
    assert [s.status_text(st).value for st in s.MessageStatus] == [
        "success",
        "pending",
        "fail",
        "sending",
    ]


# --------------------------------------------------------------------------- patch semantics


@pytest.mark.parametrize(
    ("model", "field", "alias"),
    [
        (s.ApplicationPatch, "uid", "uid"),
        (s.ApplicationPatch, "throttle_rate", "throttleRate"),
        (s.EndpointPatch, "uid", "uid"),
        (s.EndpointPatch, "throttle_rate", "throttleRate"),
        (s.EndpointPatch, "event_types", "eventTypes"),
        (s.EndpointPatch, "channels", "channels"),
        (s.EventTypePatch, "schemas", "schemas"),
        (s.EventTypePatch, "feature_flag", "featureFlag"),
    ],
)
def test_patch_distinguishes_absent_from_null(
    model: type[BaseModel], field: str, alias: str
) -> None:
    absent = model.model_validate({})
    assert absent.model_fields_set == set()
    assert absent.model_dump(exclude_unset=True) == {}
    null = model.model_validate({alias: None})
    assert null.model_fields_set == {field}
    assert null.model_dump(exclude_unset=True, by_alias=True) == {alias: None}


@pytest.mark.parametrize(
    ("model", "alias"),
    [
        (s.ApplicationPatch, "name"),
        (s.ApplicationPatch, "metadata"),
        (s.EndpointPatch, "url"),
        (s.EndpointPatch, "description"),
        (s.EndpointPatch, "disabled"),
        (s.EndpointPatch, "metadata"),
        (s.EventTypePatch, "description"),
        (s.EventTypePatch, "archived"),
        (s.EventTypePatch, "deprecated"),
    ],
)
def test_patch_rejects_null_for_non_nullable_fields(model: type[BaseModel], alias: str) -> None:
    assert_invalid(model, {alias: None}, (alias,))


def test_patch_values_are_validated() -> None:
    patch = s.EndpointPatch.model_validate(
        {"url": "https://example.org/", "eventTypes": [], "throttleRate": 0}
    )
    assert patch.model_fields_set == {"url", "event_types", "throttle_rate"}
    assert patch.event_types == []
    assert_invalid(s.EndpointPatch, {"url": "ftp://example.org/"}, ("url",))
    assert_invalid(s.EndpointPatch, {"channels": ["a b"]}, ("channels", 0))
    assert_invalid(s.EndpointPatch, {"eventTypes": ["e"] * 1001}, ("eventTypes",))
    assert_invalid(s.EndpointPatch, {"throttleRate": -1}, ("throttleRate",))
    assert_invalid(s.ApplicationPatch, {"name": ""}, ("name",))
    assert_invalid(s.ApplicationPatch, {"throttleRate": 65536}, ("throttleRate",))


def test_headers_patch_null_deletes_and_sdk_delete_list() -> None:
    patch = s.EndpointHeadersPatchIn.model_validate(
        {"headers": {"X-New": "1", "X-Old": None}, "deleteHeaders": ["X-Gone", "X-Old"]}
    )
    assert patch.headers_to_set() == {"X-New": "1"}
    assert patch.headers_to_delete() == ["X-Old", "X-Gone"]
    assert s.EndpointHeadersPatchIn.model_validate({"headers": {}}).headers_to_delete() == []


# --------------------------------------------------------------------------- invalid input

LONG_URL = "https://example.com/" + "a" * 65536

INVALID: list[tuple[type[BaseModel], dict[str, Any], tuple[Any, ...]]] = [
    # applications
    (s.ApplicationIn, {}, ("name",)),
    (s.ApplicationIn, {"name": ""}, ("name",)),
    (s.ApplicationIn, {"name": "x" * 1025}, ("name",)),
    (s.ApplicationIn, {**APP, "uid": "bad uid"}, ("uid",)),
    (s.ApplicationIn, {**APP, "uid": ""}, ("uid",)),
    (s.ApplicationIn, {**APP, "uid": "a" * 257}, ("uid",)),
    (s.ApplicationIn, {**APP, "uid": "abc\n"}, ("uid",)),
    (s.ApplicationIn, {**APP, "throttleRate": 0}, ("throttleRate",)),
    (s.ApplicationIn, {**APP, "throttleRate": 65536}, ("throttleRate",)),
    (s.ApplicationIn, {**APP, "metadata": {f"k{i}": "v" for i in range(101)}}, ("metadata",)),
    (s.ApplicationIn, {**APP, "metadata": {"k" * 257: "v"}}, ("metadata", "k" * 257, "[key]")),
    (s.ApplicationIn, {**APP, "metadata": {"k": "v" * 4097}}, ("metadata", "k")),
    (s.ApplicationIn, {**APP, "metadata": {"k": 1}}, ("metadata", "k")),
    (s.ApplicationIn, {**APP, "metadata": None}, ("metadata",)),
    # endpoints: url
    (s.EndpointIn, {}, ("url",)),
    (s.EndpointIn, {"url": ""}, ("url",)),
    (s.EndpointIn, {"url": "ftp://example.com/x"}, ("url",)),
    (s.EndpointIn, {"url": "file:///etc/passwd"}, ("url",)),
    (s.EndpointIn, {"url": "javascript:alert(1)"}, ("url",)),
    (s.EndpointIn, {"url": "example.com/hook"}, ("url",)),
    (s.EndpointIn, {"url": "/relative/path"}, ("url",)),
    (s.EndpointIn, {"url": "https://"}, ("url",)),
    (s.EndpointIn, {"url": "https://:443/x"}, ("url",)),
    (s.EndpointIn, {"url": "https://user:pw@example.com/"}, ("url",)),
    (s.EndpointIn, {"url": "https://user@example.com/"}, ("url",)),
    (s.EndpointIn, {"url": "https://exa mple.com/"}, ("url",)),
    (s.EndpointIn, {"url": " https://example.com/"}, ("url",)),
    (s.EndpointIn, {"url": "https://example.com/\r\nX-Injected: 1"}, ("url",)),
    (s.EndpointIn, {"url": "https://example.com:99999/"}, ("url",)),
    (s.EndpointIn, {"url": "https://example.com:0/"}, ("url",)),
    (s.EndpointIn, {"url": "https://example.com:abc/"}, ("url",)),
    (s.EndpointIn, {"url": "https://[::1/"}, ("url",)),
    (s.EndpointIn, {"url": LONG_URL}, ("url",)),
    # endpoints: filters
    (s.EndpointIn, {**EP, "channels": []}, ("channels",)),
    (s.EndpointIn, {**EP, "channels": [f"c{i}" for i in range(11)]}, ("channels",)),
    (s.EndpointIn, {**EP, "channels": ["a b"]}, ("channels", 0)),
    (s.EndpointIn, {**EP, "channels": ["ok", "a/b"]}, ("channels", 1)),
    (s.EndpointIn, {**EP, "channels": ["c" * 129]}, ("channels", 0)),
    (s.EndpointIn, {**EP, "channels": [""]}, ("channels", 0)),
    (s.EndpointIn, {**EP, "eventTypes": []}, ("eventTypes",)),
    (s.EndpointIn, {**EP, "eventTypes": [f"e{i}" for i in range(1001)]}, ("eventTypes",)),
    (s.EndpointIn, {**EP, "eventTypes": ["bad type"]}, ("eventTypes", 0)),
    (s.EndpointIn, {**EP, "eventTypes": ["a:b"]}, ("eventTypes", 0)),
    (s.EndpointIn, {**EP, "eventTypes": ["e" * 257]}, ("eventTypes", 0)),
    # endpoints: other fields
    (s.EndpointIn, {**EP, "secret": "short"}, ("secret",)),
    (s.EndpointIn, {**EP, "secret": "whsec_" + "!" * 32}, ("secret",)),
    (s.EndpointIn, {**EP, "secret": "whsec_" + "a" * 101}, ("secret",)),
    (s.EndpointIn, {**EP, "secret": "whsec_" + "a" * 33}, ("secret",)),  # bad base64 padding
    (s.EndpointIn, {**EP, "secret": "xx" + SECRET}, ("secret",)),
    (s.EndpointIn, {**EP, "description": "d" * 8193}, ("description",)),
    (s.EndpointIn, {**EP, "description": None}, ("description",)),
    (s.EndpointIn, {**EP, "throttleRate": 0}, ("throttleRate",)),
    (s.EndpointIn, {**EP, "uid": "bad/uid"}, ("uid",)),
    (s.EndpointIn, {**EP, "metadata": {"k": ["v"]}}, ("metadata", "k")),
    (s.EndpointIn, {**EP, "headers": {"Host": "evil"}}, ("headers", "Host", "[key]")),
    (s.EndpointUpdate, {"url": "gopher://x"}, ("url",)),
    (s.EndpointUpdate, {**EP, "channels": ["a b"]}, ("channels", 0)),
    # endpoint headers
    (s.EndpointHeadersIn, {}, ("headers",)),
    (s.EndpointHeadersIn, {"headers": {"X Foo": "1"}}, ("headers", "X Foo", "[key]")),
    (s.EndpointHeadersIn, {"headers": {"X:Foo": "1"}}, ("headers", "X:Foo", "[key]")),
    (s.EndpointHeadersIn, {"headers": {"": "1"}}, ("headers", "", "[key]")),
    (s.EndpointHeadersIn, {"headers": {"X-Föö": "1"}}, ("headers", "X-Föö", "[key]")),
    (s.EndpointHeadersIn, {"headers": {"X" * 257: "1"}}, ("headers", "X" * 257, "[key]")),
    (s.EndpointHeadersIn, {"headers": {"X-A": "a\r\nX-B: b"}}, ("headers", "X-A")),
    (s.EndpointHeadersIn, {"headers": {"X-A": "a\nb"}}, ("headers", "X-A")),
    (s.EndpointHeadersIn, {"headers": {"X-A": "a\rb"}}, ("headers", "X-A")),
    (s.EndpointHeadersIn, {"headers": {"X-A": "a\x00b"}}, ("headers", "X-A")),
    (s.EndpointHeadersIn, {"headers": {"X-A": "v" * 4097}}, ("headers", "X-A")),
    (s.EndpointHeadersIn, {"headers": {"X-A": None}}, ("headers", "X-A")),
    (s.EndpointHeadersIn, {"headers": {f"X-{i}": "v" for i in range(101)}}, ("headers",)),
    (s.EndpointHeadersIn, {"headers": {"X-A": "1", "x-a": "2"}}, ("headers",)),
    (s.EndpointHeadersPatchIn, {}, ("headers",)),
    (s.EndpointHeadersPatchIn, {"headers": {"Host": None}}, ("headers", "Host", "[key]")),
    (s.EndpointHeadersPatchIn, {"headers": {"X-A": "a\nb"}}, ("headers", "X-A")),
    (s.EndpointHeadersPatchIn, {"headers": {}, "deleteHeaders": ["a b"]}, ("deleteHeaders", 0)),
    (
        s.EndpointHeadersPatchIn,
        {"headers": {"X-A": "1"}, "deleteHeaders": ["x-a"]},
        ("deleteHeaders",),
    ),
    # secrets
    (s.EndpointSecretRotateIn, {"key": "nope"}, ("key",)),
    (s.EndpointSecretRotateIn, {"gracePeriodSeconds": -1}, ("gracePeriodSeconds",)),
    (s.EndpointSecretRotateIn, {"gracePeriodSeconds": 604801}, ("gracePeriodSeconds",)),
    # messages
    (s.MessageIn, {"eventType": "a"}, ("payload",)),
    (s.MessageIn, {**MSG, "payload": [1, 2]}, ("payload",)),
    (s.MessageIn, {**MSG, "payload": "text"}, ("payload",)),
    (s.MessageIn, {**MSG, "payload": None}, ("payload",)),
    (s.MessageIn, {"payload": {}}, ("eventType",)),
    (s.MessageIn, {**MSG, "eventType": "user signup"}, ("eventType",)),
    (s.MessageIn, {**MSG, "eventType": "e" * 257}, ("eventType",)),
    (s.MessageIn, {**MSG, "eventType": ""}, ("eventType",)),
    (s.MessageIn, {**MSG, "eventId": "id with space"}, ("eventId",)),
    (s.MessageIn, {**MSG, "eventId": "i" * 257}, ("eventId",)),
    (s.MessageIn, {**MSG, "channels": [f"c{i}" for i in range(6)]}, ("channels",)),
    (s.MessageIn, {**MSG, "channels": []}, ("channels",)),
    (s.MessageIn, {**MSG, "channels": ["c" * 129]}, ("channels", 0)),
    (s.MessageIn, {**MSG, "channels": ["a#b"]}, ("channels", 0)),
    (s.MessageIn, {**MSG, "payloadRetentionPeriod": 0}, ("payloadRetentionPeriod",)),
    (s.MessageIn, {**MSG, "payloadRetentionHours": 0}, ("payloadRetentionHours",)),
    (s.MessageIn, {**MSG, "payloadRetentionHours": 2161}, ("payloadRetentionHours",)),
    (
        s.MessageIn,
        {**MSG, "payloadRetentionPeriod": 5, "payloadRetentionHours": 5},
        ("payloadRetentionHours",),
    ),
    (s.MessageIn, {**MSG, "payloadRetentionPeriod": 91}, ("payloadRetentionPeriod",)),
    (s.MessageIn, {**MSG, "application": {"name": ""}}, ("application", "name")),
    (s.EventExampleIn, {}, ("eventType",)),
    (s.EventExampleIn, {"eventType": "bad type"}, ("eventType",)),
    # event types
    (s.EventTypeIn, {"description": "d"}, ("name",)),
    (s.EventTypeIn, {"name": "x"}, ("description",)),
    (s.EventTypeIn, {**ET, "name": "bad name"}, ("name",)),
    (s.EventTypeIn, {**ET, "name": "n" * 257}, ("name",)),
    (s.EventTypeIn, {**ET, "description": "d" * 8193}, ("description",)),
    (s.EventTypeIn, {**ET, "featureFlag": "bad flag"}, ("featureFlag",)),
    (s.EventTypeIn, {**ET, "schemas": {"1": "not an object"}}, ("schemas", "1")),
    (s.EventTypeIn, {**ET, "schemas": [{"type": "object"}]}, ("schemas",)),
    (s.EventTypeUpdate, {}, ("description",)),
    (s.EventTypePatch, {"featureFlag": "bad flag"}, ("featureFlag",)),
    # recover
    (s.RecoverIn, {}, ("since",)),
    (s.RecoverIn, {"since": "not a date"}, ("since",)),
    (s.RecoverIn, {"since": "2024-05-01T12:00:00"}, ("since",)),  # naive
    (s.RecoverIn, {"since": "2024-05-01T12:00:00Z", "until": "2024-05-01T12:00:00"}, ("until",)),
    (s.RecoverIn, {"since": "2024-05-01T12:00:00Z", "until": "2024-05-01T11:00:00Z"}, ("until",)),
    # app portal
    (s.AppPortalAccessIn, {"featureFlags": ["bad flag"]}, ("featureFlags", 0)),
    (s.AppPortalAccessIn, {"featureFlags": [f"f{i}" for i in range(101)]}, ("featureFlags",)),
    (s.AppPortalAccessIn, {"application": {"name": ""}}, ("application", "name")),
]


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    INVALID,
    ids=[f"{m.__name__}-{i}" for i, (m, _, _) in enumerate(INVALID)],
)
def test_invalid_input_names_the_field(
    model: type[BaseModel], data: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    assert_invalid(model, data, loc)


FORBIDDEN_HEADERS = [
    "Host",
    "content-length",
    "Transfer-Encoding",
    "CONNECTION",
    "keep-alive",
    "Proxy-Authenticate",
    "proxy-authorization",
    "TE",
    "trailer",
    "Upgrade",
    "Content-Type",
    "webhook-id",
    "Webhook-Signature",
    "webhook-anything",
    "svix-id",
    "SVIX-Signature",
]


@pytest.mark.parametrize("name", FORBIDDEN_HEADERS)
@pytest.mark.parametrize("model", [s.EndpointHeadersIn, s.EndpointHeadersPatchIn])
def test_forbidden_header_names(model: type[BaseModel], name: str) -> None:
    assert_invalid(model, {"headers": {name: "x"}}, ("headers", name, "[key]"))


def test_endpoint_in_headers_forbidden_name() -> None:
    assert_invalid(s.EndpointIn, {**EP, "headers": {"svix-id": "x"}}, ("headers", "svix-id"))


def test_error_message_explains_the_rule() -> None:
    [err] = errors(s.EndpointIn, {"url": "ftp://example.com/"})
    assert "http or https" in err["msg"]
    [err] = errors(s.EndpointHeadersIn, {"headers": {"Host": "x"}})
    assert "reserved" in err["msg"]


# --------------------------------------------------------------------------- responses


def app_out(**kw: Any) -> s.ApplicationOut:
    base: dict[str, Any] = {
        "id": "app_1",
        "name": "Acme",
        "uid": "acme",
        "throttle_rate": 10,
        "metadata": {"k": "v"},
        "created_at": NOW,
        "updated_at": LATER,
    }
    return s.ApplicationOut(**{**base, **kw})


def endpoint_out(**kw: Any) -> s.EndpointOut:
    base: dict[str, Any] = {
        "id": "ep_1",
        "url": "https://example.com/hook",
        "description": "main",
        "uid": "ep-1",
        "disabled": False,
        "throttle_rate": 5,
        "event_types": ["user.signup"],
        "channels": ["c:1"],
        "metadata": {},
        "created_at": NOW,
        "updated_at": NOW,
        "health": s.EndpointHealthOut(
            state=s.EndpointHealthState.DEGRADED,
            consecutive_failures=2,
            last_success_at=NOW,
            last_failure_at=NOW,
            last_status_code=503,
            disabled_reason=None,
        ),
    }
    return s.EndpointOut(**{**base, **kw})


def message_out(**kw: Any) -> s.MessageOut:
    base: dict[str, Any] = {
        "id": "msg_1",
        "event_type": "user.signup",
        "event_id": "evt-1",
        "payload": {"a": [1, {"b": None}]},
        "channels": ["c:1"],
        "timestamp": NOW,
    }
    return s.MessageOut(**{**base, **kw})


def event_type_out(**kw: Any) -> s.EventTypeOut:
    base: dict[str, Any] = {
        "name": "user.signup",
        "description": "d",
        "archived": False,
        "deprecated": True,
        "schemas": {"1": {"type": "object"}},
        "feature_flag": "beta",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return s.EventTypeOut(**{**base, **kw})


def message_endpoint_out(**kw: Any) -> s.MessageEndpointOut:
    base: dict[str, Any] = {
        "id": "ep_1",
        "url": "https://example.com/hook",
        "description": "",
        "status": s.MessageStatus.PENDING,
        "status_text": s.MessageStatusText.PENDING,
        "next_attempt": LATER,
        "channels": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return s.MessageEndpointOut(**{**base, **kw})


def endpoint_message_out(**kw: Any) -> s.EndpointMessageOut:
    base: dict[str, Any] = {
        **message_out().model_dump(),
        "status": s.MessageStatus.FAIL,
        "status_text": s.MessageStatusText.FAIL,
        "next_attempt": None,
    }
    return s.EndpointMessageOut(**{**base, **kw})


def attempt_out(**kw: Any) -> s.MessageAttemptOut:
    base: dict[str, Any] = {
        "id": "atmpt_1",
        "msg_id": "msg_1",
        "endpoint_id": "ep_1",
        "url": "https://example.com/hook",
        "response": "{}",
        "response_status_code": 200,
        "response_duration_ms": 12,
        "status": s.MessageStatus.SUCCESS,
        "status_text": s.MessageStatusText.SUCCESS,
        "trigger_type": s.MessageAttemptTriggerType.MANUAL,
        "timestamp": NOW,
    }
    return s.MessageAttemptOut(**{**base, **kw})


OUT_CASES: list[tuple[BaseModel, type[Any]]] = [
    (app_out(), sdk.ApplicationOut),
    (app_out(uid=None, throttle_rate=None), sdk.ApplicationOut),
    (endpoint_out(), sdk.EndpointOut),
    (
        endpoint_out(uid=None, throttle_rate=None, event_types=None, channels=None),
        sdk.EndpointOut,
    ),
    (message_out(), sdk.MessageOut),
    (message_out(event_id=None, channels=None), sdk.MessageOut),
    (event_type_out(), sdk.EventTypeOut),
    (event_type_out(schemas=None, feature_flag=None), sdk.EventTypeOut),
    (message_endpoint_out(), sdk.MessageEndpointOut),
    (message_endpoint_out(next_attempt=None), sdk.MessageEndpointOut),
    (endpoint_message_out(), sdk.EndpointMessageOut),
    (attempt_out(), sdk.MessageAttemptOut),
    (
        attempt_out(response_status_code=0, status=2, status_text="fail", trigger_type=0),
        sdk.MessageAttemptOut,
    ),
    (s.EndpointSecretOut(key=SECRET), sdk.EndpointSecretOut),
    (
        s.EndpointHeadersOut(headers={"X-A": "1"}, sensitive=["Authorization"]),
        sdk.EndpointHeadersOut,
    ),
    (s.EndpointStats(success=1, pending=2, sending=3, fail=4, canceled=5), sdk.EndpointStats),
    (
        s.RecoverOut(id="qtask_1", status="running", task="endpoint.recover", updated_at=NOW),
        sdk.RecoverOut,
    ),
    (s.AppPortalAccessOut(url="https://portal.example/#key=x", token="t"), sdk.AppPortalAccessOut),
    (s.EmptyResponse(), sdk.EmptyResponse),
    (
        s.ListResponseApplicationOut(
            data=[app_out()], iterator="it", prev_iterator="-it", done=False
        ),
        sdk.ListResponseApplicationOut,
    ),
    (
        s.ListResponseApplicationOut(data=[], iterator=None, done=True),
        sdk.ListResponseApplicationOut,
    ),
    (
        s.ListResponseEventTypeOut(data=[event_type_out()], iterator=None, done=True),
        sdk.ListResponseEventTypeOut,
    ),
    (
        s.ListResponseEndpointOut(data=[endpoint_out()], iterator=None, done=True),
        sdk.ListResponseEndpointOut,
    ),
    (
        s.ListResponseMessageOut(data=[message_out()], iterator="i", done=False),
        sdk.ListResponseMessageOut,
    ),
    (
        s.ListResponseEndpointMessageOut(data=[endpoint_message_out()], iterator=None, done=True),
        sdk.ListResponseEndpointMessageOut,
    ),
    (
        s.ListResponseMessageEndpointOut(data=[message_endpoint_out()], iterator=None, done=True),
        sdk.ListResponseMessageEndpointOut,
    ),
    (
        s.ListResponseMessageAttemptOut(data=[attempt_out()], iterator=None, done=True),
        sdk.ListResponseMessageAttemptOut,
    ),
]


@pytest.mark.parametrize(
    ("model", "sdk_cls"),
    OUT_CASES,
    ids=[f"{type(m).__name__}-{i}" for i, (m, _) in enumerate(OUT_CASES)],
)
def test_svix_sdk_parses_responses(model: BaseModel, sdk_cls: type[Any]) -> None:
    parsed = to_sdk(model, sdk_cls)
    ours = model.model_dump(mode="json", by_alias=True)
    theirs = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    # Every field the SDK knows came through with the same value (hookpost's extensions, such
    # as an endpoint's signatureScheme or a message's payloadSha256, are fields it does not
    # know, at any depth).
    assert _known(ours, theirs) == theirs


def _known(ours: Any, theirs: Any) -> Any:
    """``ours`` restricted to the keys ``theirs`` has, at every level."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        return {k: _known(ours[k], v) for k, v in theirs.items() if k in ours}
    if isinstance(theirs, list) and isinstance(ours, list) and len(ours) == len(theirs):
        return [_known(o, t) for o, t in zip(ours, theirs, strict=True)]
    return ours


def test_sdk_sees_the_values() -> None:
    app = to_sdk(app_out(), sdk.ApplicationOut)
    assert (app.id, app.uid, app.throttle_rate, app.created_at) == ("app_1", "acme", 10, NOW)
    attempt = to_sdk(attempt_out(), sdk.MessageAttemptOut)
    assert attempt.status is sdk.MessageStatus.SUCCESS
    assert attempt.trigger_type is sdk.MessageAttemptTriggerType.MANUAL
    page = to_sdk(
        s.ListResponseMessageOut(
            data=[message_out()], iterator="i", prev_iterator="-i", done=False
        ),
        sdk.ListResponseMessageOut,
    )
    assert (page.iterator, page.prev_iterator, page.done) == ("i", "-i", False)
    assert page.data[0].payload == {"a": [1, {"b": None}]}


def test_out_models_serialise_camel_case_and_utc_z() -> None:
    paris = timezone(timedelta(hours=2))
    data = app_out(created_at=NOW.astimezone(paris), uid=None).model_dump(
        mode="json", by_alias=True
    )
    assert data == {
        "id": "app_1",
        "name": "Acme",
        "uid": None,
        "throttleRate": 10,
        "metadata": {"k": "v"},
        "createdAt": "2024-05-01T12:00:00Z",
        "updatedAt": "2024-05-01T12:05:00Z",
    }
    attempt = attempt_out().model_dump(mode="json", by_alias=True)
    assert set(attempt) == {
        "id",
        "msgId",
        "endpointId",
        "url",
        "response",
        "responseStatusCode",
        "responseDurationMs",
        "status",
        "statusText",
        "triggerType",
        "timestamp",
    }
    assert (attempt["status"], attempt["statusText"], attempt["triggerType"]) == (0, "success", 1)


def test_list_response_always_has_iterator_key() -> None:
    data = s.ListResponseEndpointOut(data=[], iterator=None, done=True).model_dump(
        mode="json", by_alias=True
    )
    assert data == {"data": [], "iterator": None, "prevIterator": None, "done": True}


def test_out_models_reject_naive_datetimes() -> None:
    data = app_out().model_dump(mode="json", by_alias=True)
    assert_invalid(s.ApplicationOut, {**data, "createdAt": "2024-05-01T12:00:00"}, ("createdAt",))
    with pytest.raises(ValidationError):
        app_out(updated_at=datetime(2024, 5, 1))  # deliberately naive


def test_out_models_round_trip_camel_case() -> None:
    for model in (app_out(), endpoint_out(), message_out(), attempt_out(), event_type_out()):
        dumped = model.model_dump(mode="json", by_alias=True)
        assert type(model).model_validate(dumped) == model


def test_enum_values_match_the_reference() -> None:
    assert [m.value for m in s.MessageStatus] == [0, 1, 2, 3]
    assert [m.value for m in s.MessageStatusText] == ["success", "pending", "fail", "sending"]
    assert [m.value for m in s.MessageAttemptTriggerType] == [0, 1]
    assert [m.value for m in s.BackgroundTaskStatus] == ["running", "finished", "failed"]
    assert [m.value for m in s.BackgroundTaskType] == [
        "endpoint.replay",
        "endpoint.recover",
        "application.stats",
        "message.broadcast",
        "sdk.generate",
        "event-type.aggregate",
        "application.purge_content",
        "endpoint.bulk-replay",
    ]
    # ... and the SDK knows every one of them
    for ours, theirs in [
        (s.MessageStatus, sdk.MessageStatus),
        (s.MessageStatusText, sdk.MessageStatusText),
        (s.MessageAttemptTriggerType, sdk.MessageAttemptTriggerType),
        (s.BackgroundTaskStatus, sdk.BackgroundTaskStatus),
        (s.BackgroundTaskType, sdk.BackgroundTaskType),
    ]:
        for member in ours:
            theirs(member.value)


def test_error_models() -> None:
    err = s.HttpErrorOut(code="not_found", detail="Entity not found")
    assert err.model_dump(by_alias=True) == {"code": "not_found", "detail": "Entity not found"}
    val = s.HTTPValidationError.model_validate(
        {"detail": [{"loc": ["body", "eventTypes", 0], "msg": "bad", "type": "value_error"}]}
    )
    assert val.detail[0].loc == ["body", "eventTypes", 0]


# --------------------------------------------------------------------------- SDK requests


def test_sdk_request_bodies_parse() -> None:
    app = from_sdk(
        sdk.ApplicationIn(name="Acme", uid="acme", throttle_rate=3, metadata={"k": "v"}),
        s.ApplicationIn,
    )
    assert (app.uid, app.throttle_rate, app.metadata) == ("acme", 3, {"k": "v"})

    patch = from_sdk(sdk.ApplicationPatch(uid=None, name="New"), s.ApplicationPatch)
    assert patch.model_fields_set == {"uid", "name"}

    ep = from_sdk(
        sdk.EndpointIn(
            url="https://example.com/h",
            event_types=["a.b"],
            channels=["c"],
            secret=SECRET,
            headers={"X-Key": "v"},
            metadata={"m": "n"},
            throttle_rate=7,
            disabled=True,
            uid="u",
            description="d",
        ),
        s.EndpointIn,
    )
    assert (ep.secret, ep.headers, ep.event_types) == (SECRET, {"X-Key": "v"}, ["a.b"])

    upd = from_sdk(
        sdk.EndpointUpsertIn(url="https://example.com/h", channels=["c"]), s.EndpointUpdate
    )
    assert upd.channels == ["c"]

    ep_patch = from_sdk(sdk.EndpointPatch(channels=None, disabled=False), s.EndpointPatch)
    assert ep_patch.model_fields_set == {"channels", "disabled"}

    hdrs = from_sdk(sdk.EndpointHeadersIn(headers={"X-A": "1"}), s.EndpointHeadersIn)
    assert hdrs.headers == {"X-A": "1"}
    hpatch = from_sdk(
        sdk.EndpointHeadersPatchIn(headers={"X-A": "2"}, delete_headers=["X-B"]),
        s.EndpointHeadersPatchIn,
    )
    assert (hpatch.headers_to_set(), hpatch.headers_to_delete()) == ({"X-A": "2"}, ["X-B"])

    rot = from_sdk(sdk.EndpointSecretRotateIn(key=SECRET), s.EndpointSecretRotateIn)
    assert (rot.key, rot.grace_period_seconds) == (SECRET, 86400)

    rec = from_sdk(sdk.RecoverIn(since=NOW, until=LATER), s.RecoverIn)
    assert (rec.since, rec.until) == (NOW, LATER)

    msg = from_sdk(
        sdk.MessageIn(
            event_type="user.signup",
            payload={"x": 1},
            event_id="e1",
            channels=["c"],
            application=sdk.ApplicationIn(name="App", uid="app"),
            tags=["t"],
        ),
        s.MessageIn,
    )
    assert msg.application is not None and msg.application.uid == "app"

    example = from_sdk(sdk.EventExampleIn(event_type="user.signup"), s.EventExampleIn)
    assert example.event_type == "user.signup"

    et = from_sdk(
        sdk.EventTypeIn(name="a.b", description="d", schemas={"1": {"type": "object"}}),
        s.EventTypeIn,
    )
    assert et.schemas == {"1": {"type": "object"}}
    et_upd = from_sdk(sdk.EventTypeUpsertIn(description="d", archived=True), s.EventTypeUpdate)
    assert et_upd.archived is True
    et_patch = from_sdk(sdk.EventTypePatch(schemas=None), s.EventTypePatch)
    assert et_patch.model_fields_set == {"schemas"}

    portal = from_sdk(
        sdk.AppPortalAccessIn(feature_flags=["f"], application=sdk.ApplicationIn(name="A")),
        s.AppPortalAccessIn,
    )
    assert portal.feature_flags == ["f"]


# --------------------------------------------------------------------------- schema generation


ALL_MODELS = [
    obj
    for name in s.__all__
    if isinstance(obj := getattr(s, name), type) and issubclass(obj, BaseModel)
]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_json_schema_generates(model: type[BaseModel]) -> None:
    for mode in ("validation", "serialization"):
        schema = model.model_json_schema(by_alias=True, mode=mode)
        assert schema["type"] == "object" or "$defs" in schema or "properties" in schema


def test_non_nullable_patch_fields_are_not_nullable_in_the_schema() -> None:
    props = s.EndpointPatch.model_json_schema()["properties"]
    assert props["url"]["type"] == "string"
    assert {"type": "null"} in props["uid"]["anyOf"]
