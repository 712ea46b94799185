"""Ids: the base58 encoding's fast width, and the random bits of file ids (drawn from the OS in
batches, and never shared across a fork)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filesapi import ids
from filesapi.ids import BASE58_ALPHABET, IdClock, b58encode_fixed, file_id_timestamp_us, is_file_id


def _one_digit_at_a_time(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, 58)
        digits.append(BASE58_ALPHABET[digit])
    assert value == 0
    return "".join(reversed(digits))


@given(st.integers(0, 58**22 - 1) | st.sampled_from([0, 1, 57, 58, 3363, 3364, 58**4, 58**20, 58**22 - 1]))
def test_the_width_of_ids_encodes_as_one_digit_at_a_time_would(value: int) -> None:
    assert b58encode_fixed(value, 22) == _one_digit_at_a_time(value, 22)
    assert b58encode_fixed(value % 58**21, 21) == _one_digit_at_a_time(value % 58**21, 21)


@pytest.mark.parametrize("value", [58**22, -1, 2**200])
def test_a_value_too_wide_is_refused(value: int) -> None:
    with pytest.raises(ValueError):
        b58encode_fixed(value, 22)


def test_file_ids_are_ordered_and_their_random_bits_never_repeat() -> None:
    clock = IdClock()
    made = [clock.new_file_id() for _ in range(3000)]  # past several draws of random bytes
    assert [i for i, _ in made] == sorted({i for i, _ in made})
    assert all(is_file_id(i) and file_id_timestamp_us(i) == ts for i, ts in made)


def test_a_forked_process_draws_its_own_random_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = IdClock()
    clock.new_file_id()  # the parent has drawn a batch
    draws: list[int] = []
    real = os.urandom

    def urandom(n: int) -> bytes:
        draws.append(n)
        return real(n)

    monkeypatch.setattr(ids.os, "urandom", urandom)
    clock.new_file_id()
    assert draws == []  # taken from the batch already drawn
    ids._forked()  # what os.fork runs in the child
    clock.new_file_id()
    assert len(draws) == 1  # the parent's batch is not used after the fork
