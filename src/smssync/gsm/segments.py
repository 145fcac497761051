"""How a text is split into SMS parts (3GPP TS 23.040 §9.2.3.24.1, spec §2.5).

A single SMS holds 160 GSM-7 septets or 70 UCS-2 code units. A concatenated part carries the
6-octet UDH ``05 00 03 ref total seq`` and holds 153 septets or 67 code units. A part never
ends between an escape and its extension character, nor between two halves of a surrogate
pair.
"""

from __future__ import annotations

from typing import Literal

from smssync.gsm.alphabet import BASIC, EXTENSION, is_gsm7

__all__ = [
    "GSM7_PART",
    "GSM7_SINGLE",
    "UCS2_PART",
    "UCS2_SINGLE",
    "Encoding",
    "count_segments",
    "encoding_for",
    "split",
    "utf16_units",
]

Encoding = Literal["gsm7", "ucs2"]

#: Septets in one unsplit GSM-7 message.
GSM7_SINGLE = 160
#: Septets per part behind an 8-bit-reference concatenation UDH (6 octets = 7 septets).
GSM7_PART = 153
#: UTF-16 code units in one unsplit UCS-2 message.
UCS2_SINGLE = 70
#: UTF-16 code units per part behind an 8-bit-reference concatenation UDH.
UCS2_PART = 67


def encoding_for(text: str) -> Encoding:
    """Return "gsm7" when every character fits the default alphabet, else "ucs2"."""
    return "gsm7" if is_gsm7(text) else "ucs2"


def utf16_units(ch: str) -> int:
    """Return how many UTF-16 code units the character takes (2 above the BMP)."""
    return 2 if ord(ch) > 0xFFFF else 1


def _cost(ch: str, encoding: Encoding) -> int:
    if encoding == "ucs2":
        return utf16_units(ch)
    if ch in BASIC:
        return 1
    if ch in EXTENSION:
        return 2
    raise ValueError(f"character {ch!r} is not in the GSM 7-bit alphabet")


def split(text: str, encoding: Encoding | None = None) -> list[str]:
    """Return the parts the text is sent as; an empty text is one empty part.

    Characters are never cut, so an escape pair or a surrogate pair stays in one part; a
    part may therefore hold one unit less than the maximum.
    """
    enc = encoding or encoding_for(text)
    single, per_part = (GSM7_SINGLE, GSM7_PART) if enc == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    costs = [_cost(ch, enc) for ch in text]
    if sum(costs) <= single:
        return [text]
    parts: list[str] = []
    start = 0
    used = 0
    for i, cost in enumerate(costs):
        if used + cost > per_part:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return parts


def count_segments(text: str) -> int:
    """Return how many SMS parts the text needs."""
    return len(split(text))
