"""Phone numbers and alphanumeric senders: normalised for matching, raw kept elsewhere."""

from __future__ import annotations

import functools
import re

import phonenumbers

#: Already E.164: what SMSCs report for most senders, kept as it is without parsing.
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_PUNCTUATION = str.maketrans("", "", " -.()/\u00a0")


def looks_numeric(raw: str) -> bool:
    """Tell whether an address is a phone number rather than an alphanumeric sender."""
    stripped = raw.strip().translate(_PUNCTUATION)
    if stripped.startswith("+"):
        stripped = stripped[1:]
    return stripped.isdigit()


def normalize(raw: str, region: str) -> str:
    """Return E.164 for a phone number where possible, else the address trimmed as it is.

    ``00`` prefixes become ``+``; national numbers take ``region``'s country code. Short
    codes and alphanumeric senders (``M-PESA``) are kept, never reduced to digits (S-11).
    """
    text = raw.strip()
    if _E164.fullmatch(text):
        return text
    return _normalize_other(text, region)


@functools.lru_cache(maxsize=4096)
def _normalize_other(text: str, region: str) -> str:
    # Parsing costs as much as the rest of an incoming SMS; senders recur, so remember them.
    if not looks_numeric(text):
        return text
    compact = text.translate(_PUNCTUATION)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    try:
        number = phonenumbers.parse(compact, None if compact.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return compact
    if not phonenumbers.is_possible_number(number):
        return compact
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_recipient(raw: str, region: str) -> str:
    """Return E.164 for a number we are asked to send to; ValueError when it is not one.

    ``region`` "" (none set) reads only numbers with their country code, and short codes.
    """
    if not looks_numeric(raw):
        raise ValueError(f"{raw!r} is not a phone number")
    compact = raw.strip().translate(_PUNCTUATION)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not region and not compact.startswith("+"):
        if len(compact) <= 8:
            return compact  # a short code needs no country
        raise ValueError(f"{raw!r} has no +country code, and no default region is set")
    try:
        number = phonenumbers.parse(compact, None if compact.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{raw!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        if len(compact.lstrip("+")) <= 8:
            # Short codes (e.g. 22141) are valid recipients inside one network.
            return compact
        raise ValueError(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
