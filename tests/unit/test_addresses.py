from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smssync.addresses import looks_numeric, normalize, normalize_recipient


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+254700000001", "+254700000001"),
        ("0700 000 001", "+254700000001"),
        ("00254700000001", "+254700000001"),
        ("(0700) 000-001", "+254700000001"),
        ("M-PESA", "M-PESA"),
        ("  Safaricom ", "Safaricom"),
        ("22141", "22141"),
        ("+000000000000", "+000000000000"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw, "KE") == expected


def test_recipient_must_be_a_number() -> None:
    assert normalize_recipient("0700000002", "KE") == "+254700000002"
    assert normalize_recipient("22141", "KE") == "22141"
    for bad in ("M-PESA", "", "+1", "12345678901234567890"):
        with pytest.raises(ValueError):
            normalize_recipient(bad, "KE")


@given(st.text(max_size=30))
def test_normalize_never_raises_and_keeps_alphanumerics(raw: str) -> None:
    result = normalize(raw, "KE")
    if not looks_numeric(raw):
        assert result == raw.strip()
