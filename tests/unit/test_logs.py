"""hookpost.logs: the formats, the redactor, and the settings that choose them."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from hookpost.domain.retry import error_class, outcome_class
from hookpost.logs import REDACTED, JsonFormatter, Redactor, TextFormatter, formatter_for
from hookpost.settings import Settings


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("hookpost.worker", logging.WARNING, __file__, 1, msg, args, None)
    r.__dict__.update(extra)
    return r


def test_log_settings_from_the_environment() -> None:
    s = Settings.from_env({"HOOKPOST_LOG_LEVEL": "debug", "HOOKPOST_LOG_FORMAT": "JSON"})
    assert (s.log_level, s.log_format, s.access_log) == ("DEBUG", "json", False)
    assert Settings().log_level == "INFO" and Settings().log_format == "text"
    assert Settings.from_env({"HOOKPOST_ACCESS_LOG": "1"}).access_log is True
    with pytest.raises(ValueError, match="HOOKPOST_LOG_FORMAT='xml'"):
        Settings.from_env({"HOOKPOST_LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="HOOKPOST_LOG_LEVEL='loud'"):
        Settings.from_env({"HOOKPOST_LOG_LEVEL": "loud"})
    assert isinstance(formatter_for(Settings(log_format="json")), JsonFormatter)
    assert isinstance(formatter_for(Settings()), TextFormatter)


def test_json_lines_carry_the_ids_as_fields() -> None:
    line = JsonFormatter(Redactor()).format(
        record("attempt %d failed", 2, app_id="app_1", message_id="msg_1", attempt=2, other=1)
    )
    assert "\n" not in line
    out = json.loads(line)
    assert out["msg"] == "attempt 2 failed" and out["level"] == "WARNING"
    assert out["logger"] == "hookpost.worker" and out["ts"].endswith("Z")
    assert (out["app_id"], out["message_id"], out["attempt"]) == ("app_1", "msg_1", 2)
    assert "other" not in out and "endpoint_id" not in out


def test_a_traceback_stays_on_the_json_line() -> None:
    try:
        raise RuntimeError("boom hpk_leaked-in-an-exception-0001")
    except RuntimeError:
        r = record("failed")
        r.exc_info = sys.exc_info()
    out = json.loads(JsonFormatter(Redactor()).format(r))
    assert "RuntimeError: boom" in out["exc"] and "hpk_leaked" not in out["exc"]


def test_the_redactor_removes_tokens_secrets_and_configured_values() -> None:
    redact = Redactor(["any-shaped-admin-token-1", "short"])
    text = redact(
        "a hpk_abcdefghijklmnop b whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw c "
        "Authorization: Bearer some.opaque-value d any-shaped-admin-token-1 e short"
    )
    assert text == (
        f"a {REDACTED} b {REDACTED} c Authorization: Bearer {REDACTED} d {REDACTED} e short"
    )
    assert redact("app_1 endpoint ep_2 msg_3") == "app_1 endpoint ep_2 msg_3"


def test_text_lines_append_the_ids() -> None:
    line = TextFormatter(Redactor()).format(record("failed", endpoint_id="ep_1", attempt=3))
    assert line.endswith("WARNING hookpost.worker: failed  endpoint_id=ep_1 attempt=3")


def test_outcome_and_error_classes() -> None:
    assert [outcome_class(c, None) for c in (200, 204, 301, 404, 429, 500, 503)] == [
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "4xx",
        "5xx",
        "5xx",
    ]
    assert outcome_class(0, "timeout: no complete response within 15s") == "error"
    assert outcome_class(999, None) == "error"
    assert error_class("connection error: Connection refused: 10.0.0.1:443") == "connection error"
    assert error_class("timeout: no complete response within 15s") == "timeout"
