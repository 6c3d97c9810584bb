"""A lease must outlast a whole request with room to spare: shorter ones are refused at start,
naming both settings."""

from __future__ import annotations

import pytest

from hookpost.settings import Settings
from hookpost.wiring import ConfigError, Hookpost, check_lease


@pytest.mark.parametrize(
    ("lease_s", "timeout_s", "ok"),
    [
        (60.0, 15.0, True),  # the defaults
        (22.5, 15.0, True),  # half the timeout to spare
        (22.4, 15.0, False),
        (15.0, 15.0, False),  # the lease runs out as the request does
        (10.0, 15.0, False),
        (2.0, 1.0, True),  # at least a second to spare
        (1.9, 1.0, False),
    ],
)
def test_the_lease_must_exceed_the_request_timeout_by_a_margin(
    lease_s: float, timeout_s: float, ok: bool
) -> None:
    settings = Settings(lease_s=lease_s, request_timeout_s=timeout_s)
    if ok:
        check_lease(settings)
        return
    with pytest.raises(ConfigError) as refused:
        check_lease(settings)
    message = str(refused.value)
    assert f"HOOKPOST_LEASE_S={lease_s:g}" in message
    assert f"HOOKPOST_REQUEST_TIMEOUT_S={timeout_s:g}" in message


def test_hookpost_refuses_to_start_with_a_short_lease() -> None:
    settings = Settings(database_url="sqlite:///unused.db", lease_s=10.0)
    with pytest.raises(ConfigError, match="HOOKPOST_LEASE_S=10 is too short"):
        Hookpost(settings)  # before it touches anything
