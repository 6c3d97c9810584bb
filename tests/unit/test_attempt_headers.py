"""domain.attempt_headers: the stored form of an attempt's headers (issue 23)."""

from __future__ import annotations

import orjson

from hookpost.domain import attempt_headers as ah
from hookpost.domain.signing import StandardWebhooksV1, generate_secret

MSG = "msg_2doesnotexist0000000000000"
SECRET = generate_secret()


def sent(**custom: str) -> dict[str, str]:
    """Headers as delivery.sending builds them."""
    return {
        **(ah.with_custom(custom) if custom else ah.DEFAULT_HEADERS),
        **StandardWebhooksV1().sign_headers(MSG, 1765152000, b"{}", [SECRET]),
    }


def test_what_is_stored_reads_back_as_sent() -> None:
    headers = sent(**{"X-Tenant": "acme"})
    read = ah.decode_headers(ah.encode_headers(headers, MSG, ["X-Tenant"]), MSG)
    assert read.sent == headers and read.sensitive == [] and read.response is None
    assert read.recorded is True


def test_only_what_cannot_be_derived_is_stored() -> None:
    raw = ah.encode_headers(sent(), MSG)
    stored = orjson.loads(raw)
    assert stored["webhook-id"] == 0  # the message id, not repeated
    assert "content-type" not in stored and "user-agent" not in stored
    assert set(stored) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert len(raw) <= 120, raw  # compact: one signature, no spaces


def test_a_sensitive_endpoint_header_is_named_never_stored() -> None:
    headers = sent(**{"Authorization": "Bearer t0p-s3cret", "X-Service-Token": "also-secret"})
    raw = ah.encode_headers(headers, MSG, ["Authorization", "X-Service-Token"])
    assert "t0p-s3cret" not in raw and "also-secret" not in raw
    read = ah.decode_headers(raw, MSG)
    assert read.sensitive == ["Authorization", "X-Service-Token"]
    assert "Authorization" not in read.sent and "X-Service-Token" not in read.sent
    assert read.sent == {k: v for k, v in headers.items() if k not in read.sensitive}


def test_only_endpoint_headers_are_redacted() -> None:
    # A signature header whose name happens to hold a secret word is hookpost's, and shown.
    headers = {**sent(), "X-Auth-Signature": "sha256=ab"}
    read = ah.decode_headers(ah.encode_headers(headers, MSG), MSG)
    assert read.sent["X-Auth-Signature"] == "sha256=ab" and read.sensitive == []


def test_unusual_values_of_the_implicit_headers_are_kept() -> None:
    changed = {**sent(), "user-agent": "hookpost/9"}
    assert (
        ah.decode_headers(ah.encode_headers(changed, MSG), MSG).sent["user-agent"] == "hookpost/9"
    )


def test_a_failed_answers_headers_are_capped_and_redacted() -> None:
    answer = [("Server", "nginx"), ("Set-Cookie", "sid=secret"), ("X-Nul", "a\x00b")]
    kept = ah.capped_response(answer)
    assert kept == [("Server", "nginx"), ("X-Nul", "a\ufffdb")]
    read = ah.decode_headers(ah.encode_headers(sent(), MSG, (), kept), MSG)
    assert read.response == kept

    many = [(f"x-h{i}", "v") for i in range(100)]
    assert len(ah.capped_response(many)) == ah.RESPONSE_HEADERS_MAX_COUNT
    big = [("x-a", "a" * 1500), ("x-b", "b" * 1500), ("x-c", "c")]
    assert ah.capped_response(big) == [("x-a", "a" * 1500)]  # in order, up to the byte cap


def test_an_attempt_recorded_before_reads_as_unrecorded() -> None:
    read = ah.decode_headers(None, MSG)
    assert read.recorded is False
    assert read.sent == {"content-type": ah.CONTENT_TYPE, "user-agent": ah.USER_AGENT}
    assert read.sensitive == [] and read.response is None


def test_a_custom_user_agent_replaces_hookposts_in_any_case() -> None:
    for name in ("User-Agent", "user-agent", "USER-AGENT"):
        headers = sent(**{name: "acme-relay/2"})
        assert [v for k, v in headers.items() if k.lower() == "user-agent"] == ["acme-relay/2"]
        read = ah.decode_headers(ah.encode_headers(headers, MSG, [name]), MSG)
        assert read.sent == headers  # hookpost's user agent is not added back
    assert sent()["user-agent"] == ah.USER_AGENT
    assert sent(**{"X-Tenant": "a"})["user-agent"] == ah.USER_AGENT
