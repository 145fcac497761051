"""Segment counting and splitting (spec §2.5)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smssync.gsm.alphabet import BASIC, EXTENSION, septet_count
from smssync.gsm.segments import count_segments, encoding_for, split, utf16_units

GSM_CHARS = sorted(BASIC) + sorted(EXTENSION)
gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700)
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=400)


def test_empty_text_is_one_segment() -> None:
    assert count_segments("") == 1
    assert split("") == [""]
    assert encoding_for("") == "gsm7"


def test_gsm7_boundaries() -> None:
    assert count_segments("a" * 160) == 1
    assert count_segments("a" * 161) == 2
    assert count_segments("a" * 306) == 2
    assert count_segments("a" * 307) == 3


def test_extension_characters_count_two() -> None:
    assert encoding_for("€") == "gsm7"
    assert count_segments("€" * 80) == 1
    assert count_segments("€" * 81) == 2
    assert count_segments("a" * 159 + "^") == 2


def test_escape_pair_is_never_split() -> None:
    # 152 septets, then an escape pair that would straddle the 153-septet boundary.
    parts = split("a" * 152 + "€" + "b" * 20)
    assert parts == ["a" * 152, "€" + "b" * 20]
    assert count_segments("a" * 152 + "€" + "b" * 20) == 2


def test_ucs2_boundaries() -> None:
    assert encoding_for("привет") == "ucs2"
    assert count_segments("ж" * 70) == 1
    assert count_segments("ж" * 71) == 2
    # spec §2.5: 84 Cyrillic characters give 2 UCS-2 parts.
    assert count_segments("ж" * 84) == 2
    assert count_segments("ж" * 134) == 2
    assert count_segments("ж" * 135) == 3


def test_surrogate_pair_is_never_split() -> None:
    assert count_segments("😀" * 35) == 1
    assert count_segments("😀" * 36) == 2
    parts = split("ж" + "😀" * 40)
    assert parts == ["ж" + "😀" * 33, "😀" * 7]
    assert all(sum(utf16_units(c) for c in p) <= 67 for p in parts)


def test_spec_example_200_gsm_characters_is_two_parts() -> None:
    assert count_segments("x" * 200) == 2


@given(gsm_text)
def test_gsm7_parts_fit_and_join(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) == count_segments(text)
    if len(parts) == 1:
        assert septet_count(text) <= 160
    else:
        assert septet_count(text) > 160
        assert all(0 < septet_count(p) <= 153 for p in parts)
        # Greedy split: at most one septet wasted per part (an escape pair pushed on).
        assert len(parts) <= -(-septet_count(text) // 152)
        assert len(parts) >= -(-septet_count(text) // 153)


@given(any_text)
def test_any_text_parts_fit_and_join(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    if encoding_for(text) == "ucs2":
        units = [sum(utf16_units(c) for c in p) for p in parts]
        limit = 70 if len(parts) == 1 else 67
        assert all(u <= limit for u in units)
