"""Ids (``domain.ids``): the base62 encoder matches the original one-digit-at-a-time one."""

from __future__ import annotations

import random

import pytest

from hookpost.domain import ids


def reference_encode(value: int) -> str:
    """The original one-digit-at-a-time base62 encoder."""
    out = []
    for _ in range(22):
        value, digit = divmod(value, 62)
        out.append(ids.ALPHABET[digit])
    return "".join(reversed(out))


class TestIdEncoding:
    @pytest.mark.parametrize(
        "value",
        [0, 1, 61, 62, 62**4 - 1, 62**4, 62**20 - 1, 62**20, 2**128 - 1, 62**22, 2**140],
    )
    def test_edges_match_the_reference(self, value: int) -> None:
        assert ids._encode(value) == reference_encode(value)

    def test_random_values_match_the_reference(self) -> None:
        rng = random.Random(1)
        for _ in range(20_000):
            value = rng.getrandbits(rng.choice([8, 48, 80, 127, 128]))
            assert ids._encode(value) == reference_encode(value)

    def test_ids_still_sort_by_time_and_decode(self) -> None:
        times = range(1_700_000_000_000, 1_700_000_000_050)
        made = [ids.new_id("atmpt", ms) for ms in times]
        assert made == sorted(made)
        assert [ids.id_time_ms(i) for i in made] == list(times)
