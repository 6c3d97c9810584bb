"""Process-wide logging for the ``hookpost`` command's processes (``configure``).

* ``HOOKPOST_LOG_LEVEL`` sets the root level; ``HOOKPOST_LOG_FORMAT`` is ``text`` (one readable
  line) or ``json`` (one object per line: ``ts``, ``level``, ``logger``, ``msg``, ``pid``, the ids
  and details a line carries in ``extra=``, see ``FIELDS``). uvicorn's loggers propagate to the
  same handler, so every line of a process has one format.
* Every line passes through ``Redactor``: token-shaped strings (``hpk_...``, ``whsec_...``,
  ``Bearer ...``) and the deployment's configured secrets are replaced. It is a last guard: the
  code logs no secret in the first place (tests/multiprocess/test_logs.py checks both).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hookpost.settings import Settings

# What a line may carry besides its message (``log.warning(..., extra={...})``).
IDS = ("app_id", "endpoint_id", "message_id", "attempt_id")
FIELDS = (
    *IDS,
    "attempt",
    "status_code",
    "error_class",
    "next_attempt_at",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
)
REDACTED = "[redacted]"
# Tokens and signing secrets by their shape (hookpost's prefixes), and whatever
# follows "Bearer": a line never needs them.
_SHAPED = re.compile(r"\b(?:hpk|whsec)_[A-Za-z0-9+/=_.-]{6,}|(?i:\bbearer\s+)[^\s\"',;\\]+")
MIN_LITERAL = 8  # a shorter configured value would blank ordinary words


class Redactor:
    """Removes secrets from a line: by shape, and the configured values themselves (an
    ``HOOKPOST_ADMIN_TOKEN`` may have any shape, the main key has none)."""

    def __init__(self, literals: Iterable[str] = ()) -> None:
        self._literals = sorted({s for s in literals if len(s) >= MIN_LITERAL}, key=len)[::-1]

    def __call__(self, text: str) -> str:
        for literal in self._literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        return _SHAPED.sub(_keep_bearer, text)


def _keep_bearer(match: re.Match[str]) -> str:
    text = match.group(0)
    return "Bearer " + REDACTED if text[:6].lower() == "bearer" else REDACTED


def _details(record: logging.LogRecord) -> dict[str, Any]:
    return {f: v for f in FIELDS if (v := getattr(record, f, None)) is not None}


class TextFormatter(logging.Formatter):
    """``2026-12-07 18:31:20,123 WARNING hookpost.worker: message  app_id=... attempt=2``."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        details = _details(record)
        if details:
            head, sep, tail = line.partition("\n")  # after the message, before a traceback
            pairs = " ".join(f"{k}={v}" for k, v in details.items())
            line = f"{head}  {pairs}{sep}{tail}"
        return self._redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (a traceback goes in ``exc``, escaped, on the same line)."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,  # serve's worker child logs to the same stream
        }
        out.update(_details(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        # Redacted value by value, before encoding: a literal is matched as it was written.
        for key, value in out.items():
            if isinstance(value, str):
                out[key] = self._redact(value)
        return json.dumps(out, ensure_ascii=False, default=str)


def formatter_for(settings: Settings) -> logging.Formatter:
    redact = Redactor((settings.admin_token, settings.main_key, settings.metrics_token))
    return JsonFormatter(redact) if settings.log_format == "json" else TextFormatter(redact)


def configure(settings: Settings) -> None:
    """One handler on the root logger (stderr), in ``settings``' format and level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(settings))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # one line per migration plugin otherwise
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def uvicorn_level(settings: Settings) -> str:
    """uvicorn's own lines: its start-up chatter repeats the banner, so warnings only,
    unless debugging."""
    return "debug" if settings.log_level == "DEBUG" else "warning"
