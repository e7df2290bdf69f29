"""The emulator's random strings (client ids and secrets, codes, tokens, app passwords): the
requested length, only characters of the alphabet, and every character of it in use, as Nextcloud's
ISecureRandom::generate gives."""

from __future__ import annotations

import collections

import pytest

from opnc.sandbox.nextcloud_accounts import ALPHANUMERIC, SYMBOLS, random_string


@pytest.mark.parametrize("length", [0, 1, 64, 72, 128, 1000])
def test_random_string_has_the_requested_length_and_only_alphabet_characters(length: int) -> None:
    for alphabet in (ALPHANUMERIC, ALPHANUMERIC + SYMBOLS, "ab"):
        value = random_string(length, alphabet)
        assert len(value) == length
        assert set(value) <= set(alphabet)


def test_random_string_uses_every_character_about_equally() -> None:
    alphabet = ALPHANUMERIC + SYMBOLS  # 94 characters: 256 is no multiple, so rejection matters
    counts = collections.Counter(random_string(94 * 1000, alphabet))
    assert set(counts) == set(alphabet)
    # 1000 expected per character (standard deviation about 31). A byte-modulo draw without
    # rejection would give the first 68 characters 3 chances in 256 and the other 26 only 2
    # (about 1100 against 730): far outside these bounds.
    assert 850 < min(counts.values()) and max(counts.values()) < 1150


def test_random_strings_do_not_repeat() -> None:
    assert len({random_string(64) for _ in range(1000)}) == 1000
