"""The domain's quotas and bounds (hookpost.domain.limits) and their settings."""

from __future__ import annotations

import pytest

from hookpost.domain.errors import InvalidInput
from hookpost.domain.limits import (
    MAX_URL_LENGTH,
    RECOVER_MAX_AGE_MS,
    Limits,
    check_recover_range,
    check_url_length,
    items_within,
    too_many_endpoints,
)
from hookpost.settings import Settings

NOW = 1_700_000_000_000


@pytest.mark.parametrize(
    ("sizes", "limit", "budget", "expected"),
    [
        ([], 5, 10, 0),
        ([3, 3, 3], 5, 10, 3),  # all fit
        ([3, 3, 3, 3], 5, 10, 3),  # the fourth would make 12
        ([5, 5, 1], 5, 10, 2),  # exactly the budget fits
        ([50, 1], 5, 10, 1),  # one over the budget alone: a page of one
        ([1] * 9, 5, 100, 5),  # the limit
        ([0] * 9, 5, 0, 5),
    ],
)
def test_items_within(sizes: list[int], limit: int, budget: int, expected: int) -> None:
    assert items_within(sizes, limit, budget) == expected


def test_items_within_reads_no_further_than_it_needs() -> None:
    read: list[int] = []

    def sizes() -> object:
        for size in [4, 4, 4, 4, 4]:
            read.append(size)
            yield size

    assert items_within(sizes(), 10, 8) == 2  # type: ignore[arg-type]
    assert len(read) == 3


def test_url_length() -> None:
    check_url_length("x" * MAX_URL_LENGTH)
    with pytest.raises(InvalidInput) as refused:
        check_url_length("x" * (MAX_URL_LENGTH + 1))
    assert refused.value.field == "url" and str(MAX_URL_LENGTH) in refused.value.message


def test_recover_range() -> None:
    check_recover_range(NOW - RECOVER_MAX_AGE_MS, None, NOW)
    check_recover_range(NOW - 1, NOW, NOW)
    with pytest.raises(InvalidInput) as refused:
        check_recover_range(NOW - RECOVER_MAX_AGE_MS - 1, None, NOW)
    assert refused.value.field == "since" and "14 days" in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        check_recover_range(NOW - 5, NOW - 5, NOW)
    assert refused.value.field == "until"


def test_limit_exceeded_names_the_setting() -> None:
    error = too_many_endpoints(100)
    assert error.code == "limit_exceeded" and error.limit == 100
    assert "HOOKPOST_MAX_ENDPOINTS_PER_APP (100)" in str(error)


def test_settings_limits_zero_means_no_limit() -> None:
    assert Settings().limits() == Limits()
    env = {
        "HOOKPOST_MAX_ENDPOINTS_PER_APP": "0",
        "HOOKPOST_MAX_EVENT_TYPES": "7",
        "HOOKPOST_MAX_PAGE_CONTENT_BYTES": "0",
    }
    limits = Settings.from_env(env).limits()
    assert limits == Limits(
        max_endpoints_per_app=None, max_event_types=7, max_page_content_bytes=None
    )
