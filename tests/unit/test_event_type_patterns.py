"""Event type patterns (domain.matching): exact names, ``*`` and ``prefix.*``."""

from __future__ import annotations

import pytest

from hookpost.domain.matching import event_type_matches, is_event_type_pattern


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("invoice.paid", "invoice.paid", True),
        ("invoice.paid", "invoice.paid.late", False),
        ("*", "anything.at.all", True),
        ("invoice.*", "invoice.paid", True),
        ("invoice.*", "invoice.paid.late", True),
        ("invoice.*", "invoice", False),
        ("invoice.*", "invoices.paid", False),
        ("invoice.paid.*", "invoice.paid", False),
    ],
)
def test_event_type_matches(pattern: str, event_type: str, expected: bool) -> None:
    assert event_type_matches(pattern, event_type) is expected


def test_which_names_are_patterns() -> None:
    assert is_event_type_pattern("*")
    assert is_event_type_pattern("invoice.*")
    assert not is_event_type_pattern("invoice.paid")
