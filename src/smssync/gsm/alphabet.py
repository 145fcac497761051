"""The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1).

Text travels as septet values 0..127. A character of the extension table costs two septets:
the escape 0x1B, then its code in the extension table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "BASIC",
    "ESCAPE",
    "EXTENSION",
    "decode_septets",
    "encode_septets",
    "is_gsm7",
    "pack_septets",
    "septet_count",
    "unpack_septets",
]

#: The escape septet that announces a character of the extension table.
ESCAPE = 0x1B

# The 128 characters of the default alphabet, in septet order; 0x1B is the escape and has
# no character of its own (a placeholder keeps the positions right).
_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: Character to septet, for the default alphabet (the escape itself excluded).
BASIC: dict[str, int] = {ch: i for i, ch in enumerate(_BASIC_TABLE) if i != ESCAPE}

#: Character to septet after the escape, for the extension table.
EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_BASIC_REVERSE: dict[int, str] = {i: ch for ch, i in BASIC.items()}
_EXTENSION_REVERSE: dict[int, str] = {i: ch for ch, i in EXTENSION.items()}


def is_gsm7(text: str) -> bool:
    """Return whether every character is in the default alphabet or its extension."""
    return all(ch in BASIC or ch in EXTENSION for ch in text)


def septet_count(text: str) -> int:
    """Return how many septets the text takes in GSM-7; extension characters count two."""
    total = 0
    for ch in text:
        if ch in BASIC:
            total += 1
        elif ch in EXTENSION:
            total += 2
        else:
            raise ValueError(f"character {ch!r} is not in the GSM 7-bit alphabet")
    return total


def encode_septets(text: str) -> list[int]:
    """Return the septet values of the text; raise ValueError for a non-GSM character."""
    out: list[int] = []
    for ch in text:
        code = BASIC.get(ch)
        if code is not None:
            out.append(code)
            continue
        code = EXTENSION.get(ch)
        if code is None:
            raise ValueError(f"character {ch!r} is not in the GSM 7-bit alphabet")
        out.extend((ESCAPE, code))
    return out


def decode_septets(septets: Sequence[int] | Iterable[int]) -> str:
    """Return the text of septet values.

    TS 23.038 asks a receiver to show an unknown extension code as the default-alphabet
    character of the same code, and 0x1B 0x1B (reserved for a further table) as a space.
    A lone escape at the very end is dropped.
    """
    values = list(septets)
    out: list[str] = []
    i = 0
    while i < len(values):
        code = values[i] & 0x7F
        if code != ESCAPE:
            out.append(_BASIC_REVERSE[code])
            i += 1
            continue
        if i + 1 >= len(values):
            break
        nxt = values[i + 1] & 0x7F
        if nxt == ESCAPE:
            out.append(" ")
        else:
            out.append(_EXTENSION_REVERSE.get(nxt, _BASIC_REVERSE[nxt]))
        i += 2
    return "".join(out)


def pack_septets(septets: Sequence[int], fill_bits: int = 0) -> bytes:
    """Pack septets low bit first after ``fill_bits`` zero bits (TS 23.038 §6.1.2.1.1).

    The fill bits align text that follows a user data header to a septet boundary.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    total_bits = fill_bits + 7 * len(septets)
    acc = 0
    for i, septet in enumerate(septets):
        acc |= (septet & 0x7F) << (fill_bits + 7 * i)
    return acc.to_bytes((total_bits + 7) // 8, "little")


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """Return ``count`` septets packed in ``data`` after ``fill_bits``; fewer if data runs out."""
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    count = max(0, min(count, (len(data) * 8 - fill_bits) // 7))
    acc = int.from_bytes(data, "little") >> fill_bits
    return [(acc >> (7 * i)) & 0x7F for i in range(count)]
