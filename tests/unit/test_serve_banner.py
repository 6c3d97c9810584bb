"""The start-up banner says whether receivers on this machine can be reached (issue 24: a new
user's first endpoint is usually http://localhost:..., which the SSRF guard refuses)."""

from __future__ import annotations

from hookpost.cli import _receivers_line
from hookpost.settings import Settings


def test_the_banner_says_localhost_is_refused_until_allowed() -> None:
    line = _receivers_line(Settings())
    assert "localhost" in line and "refused" in line and "HOOKPOST_ALLOW_SUBNETS" in line


def test_a_subnet_without_localhost_still_says_localhost_is_refused() -> None:
    line = _receivers_line(Settings(allow_subnets="10.1.0.0/16"))
    assert "HOOKPOST_ALLOW_SUBNETS=10.1.0.0/16" in line and "refused" in line


def test_allowed_localhost_and_a_disabled_guard_are_said_so() -> None:
    allowed = _receivers_line(Settings(allow_subnets="127.0.0.0/8"))
    assert "HOOKPOST_ALLOW_SUBNETS=127.0.0.0/8" in allowed and "refused" not in allowed
    assert "SSRF guard is off" in _receivers_line(Settings(ssrf_guard=False))
