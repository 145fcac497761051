"""The GSM 7-bit default alphabet, its extension table and septet packing (TS 23.038)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smssync.gsm.alphabet import (
    BASIC,
    ESCAPE,
    EXTENSION,
    decode_septets,
    encode_septets,
    is_gsm7,
    pack_septets,
    septet_count,
    unpack_septets,
)

GSM_CHARS = sorted(BASIC) + sorted(EXTENSION)
gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=300)


def test_tables_have_the_standard_sizes() -> None:
    # 128 positions, one of them the escape; ten extension characters incl. form feed.
    assert len(BASIC) == 127
    assert sorted(BASIC.values()) == [i for i in range(128) if i != ESCAPE]
    assert set(EXTENSION) == set("^{}\\[~]|€\f")


@pytest.mark.parametrize(
    ("char", "septet"),
    [
        ("@", 0x00),
        ("£", 0x01),
        ("\n", 0x0A),
        ("Δ", 0x10),
        ("Æ", 0x1C),
        (" ", 0x20),
        ("¤", 0x24),
        ("¡", 0x40),
        ("A", 0x41),
        ("§", 0x5F),
        ("¿", 0x60),
        ("à", 0x7F),
    ],
)
def test_known_basic_positions(char: str, septet: int) -> None:
    assert encode_septets(char) == [septet]


def test_extension_characters_are_escaped() -> None:
    assert encode_septets("€") == [0x1B, 0x65]
    assert encode_septets("{}") == [0x1B, 0x28, 0x1B, 0x29]
    assert encode_septets("\f") == [0x1B, 0x0A]
    assert septet_count("a€b") == 4


def test_is_gsm7() -> None:
    assert is_gsm7("Hello, world! @£$¥ {€}")
    assert is_gsm7("")
    assert not is_gsm7("привет")
    assert not is_gsm7("😀")
    assert not is_gsm7("`")  # the backtick is not in the default alphabet


def test_non_gsm_character_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_septets("ж")
    with pytest.raises(ValueError):
        septet_count("ж")


def test_decoding_odd_escapes() -> None:
    # TS 23.038: an unknown extension code shows the default character of that code.
    assert decode_septets([0x1B, 0x41]) == "A"
    assert decode_septets([0x1B, 0x1B]) == " "
    assert decode_septets([0x41, 0x1B]) == "A"


def test_known_packing() -> None:
    # dreamfabric.com/sms "hellohello" and the "How are you?" body of the classic DELIVER.
    assert pack_septets(encode_septets("hellohello")).hex().upper() == "E8329BFD4697D9EC37"
    assert pack_septets(encode_septets("How are you?")).hex().upper() == "C8F71D14969741F977FD07"
    assert decode_septets(unpack_septets(bytes.fromhex("E8329BFD4697D9EC37"), 10)) == "hellohello"


def test_fill_bits_shift_the_stream() -> None:
    # One fill bit: 'A' (0x41) lands on bits 1..7 of the first octet.
    assert pack_septets([0x41], 1) == bytes([0x82])
    with pytest.raises(ValueError):
        pack_septets([0x41], 7)


@given(gsm_text)
def test_text_round_trip(text: str) -> None:
    septets = encode_septets(text)
    assert len(septets) == septet_count(text)
    assert decode_septets(septets) == text


@given(st.lists(st.integers(0, 127), max_size=200), st.integers(0, 6))
def test_packing_round_trip(septets: list[int], fill: int) -> None:
    packed = pack_septets(septets, fill)
    assert len(packed) == (fill + 7 * len(septets) + 7) // 8
    assert unpack_septets(packed, len(septets), fill) == septets
    # The fill bits stay zero.
    if packed:
        assert packed[0] & ((1 << fill) - 1) == 0


@given(st.binary(max_size=50), st.integers(0, 400), st.integers(0, 6))
def test_unpacking_never_overruns(data: bytes, count: int, fill: int) -> None:
    septets = unpack_septets(data, count, fill)
    assert len(septets) <= count
    assert all(0 <= s <= 127 for s in septets)
    decode_septets(septets)
