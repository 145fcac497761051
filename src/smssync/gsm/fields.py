"""The fields inside an SMS TPDU (3GPP TS 23.040 §9.1.2, §9.2.3): addresses, time stamps,
validity periods and user data headers. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from smssync.errors import ProtocolError
from smssync.gsm.alphabet import decode_septets, encode_septets, pack_septets, unpack_septets

__all__ = [
    "Concat",
    "PduError",
    "Reader",
    "decode_address",
    "decode_smsc",
    "decode_timestamp",
    "decode_udh",
    "decode_validity",
    "encode_address",
    "encode_concat_udh",
    "encode_smsc",
    "encode_timestamp",
    "encode_validity",
]


class PduError(ProtocolError):
    """The SMS PDU is malformed."""


class Reader:
    """Read octets from a PDU front to back, raising PduError when it runs short."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def octet(self, what: str) -> int:
        """Return the next octet."""
        if self.pos >= len(self.data):
            raise PduError(f"PDU ends before {what}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, count: int, what: str) -> bytes:
        """Return the next ``count`` octets."""
        if self.pos + count > len(self.data):
            raise PduError(f"PDU ends inside {what}")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def rest(self) -> bytes:
        """Return every octet not yet read."""
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk


# --- addresses (§9.1.2.5) -------------------------------------------------------------------

TOA_INTERNATIONAL = 0x91  # TON 1, numbering plan E.164
TOA_UNKNOWN = 0x81  # TON 0, E.164: what most modems use for national numbers and short codes
TOA_ALPHANUMERIC = 0xD0  # TON 5, GSM 7-bit packed

_DIGITS = "0123456789*#abc"
# a, b and c exist as BCD values but nobody dials them; written, they mean a sender name.
_DIGIT_VALUE = {ch: i for i, ch in enumerate(_DIGITS[:12])}


def _semi_octets(digits: str) -> bytes:
    values = [_DIGIT_VALUE[ch] for ch in digits]
    if len(values) % 2:
        values.append(0xF)
    return bytes(values[i] | (values[i + 1] << 4) for i in range(0, len(values), 2))


def _digits(data: bytes, count: int) -> str:
    out: list[str] = []
    for octet in data:
        for nibble in (octet & 0x0F, octet >> 4):
            if len(out) < count and nibble != 0xF:
                out.append(_DIGITS[nibble])
    return "".join(out)


def _digits_of(address: str) -> str | None:
    body = address[1:] if address.startswith("+") else address
    if body and all(ch in _DIGIT_VALUE for ch in body):
        return body
    return None


def encode_address(address: str) -> bytes:
    """Encode an originator or destination address field.

    ``+`` and digits give an international number (TOA 0x91); bare digits keep TON unknown
    (0x81), which networks route as dialled; anything else is an alphanumeric sender (0xD0).
    """
    digits = _digits_of(address)
    if digits is not None:
        toa = TOA_INTERNATIONAL if address.startswith("+") else TOA_UNKNOWN
        return bytes([len(digits), toa]) + _semi_octets(digits)
    try:
        septets = encode_septets(address)
    except ValueError:
        raise PduError(f"address {address!r} cannot be encoded") from None
    if not address or len(septets) > 11:
        raise PduError(f"address {address!r} cannot be encoded")
    packed = pack_septets(septets)
    # The length counts the semi-octets that carry the packed septets.
    return bytes([(len(septets) * 7 + 3) // 4, TOA_ALPHANUMERIC]) + packed


def decode_address(reader: Reader) -> str:
    """Read an address field; international numbers come back with a leading ``+``."""
    length = reader.octet("address length")
    toa = reader.octet("type of address")
    data = reader.take((length + 1) // 2, "address")
    ton = (toa >> 4) & 0x07
    if ton == 5:
        return decode_septets(unpack_septets(data, length * 4 // 7))
    digits = _digits(data, length)
    return "+" + digits if ton == 1 and digits else digits


def encode_smsc(address: str | None) -> bytes:
    """Encode the SMSC prefix; None gives ``00``, telling the modem to use its stored SMSC."""
    if not address:
        return b"\x00"
    digits = _digits_of(address)
    if digits is None:
        raise PduError(f"SMSC address {address!r} is not a number")
    toa = TOA_INTERNATIONAL if address.startswith("+") else TOA_UNKNOWN
    body = bytes([toa]) + _semi_octets(digits)
    return bytes([len(body)]) + body


def decode_smsc(reader: Reader) -> str | None:
    """Read the SMSC prefix that +CMGL, +CMGR and +CMT put before the TPDU."""
    length = reader.octet("SMSC length")
    if length == 0:
        return None
    body = reader.take(length, "SMSC address")
    digits = _digits(body[1:], 2 * (length - 1))
    if not digits:
        return None
    return "+" + digits if (body[0] >> 4) & 0x07 == 1 else digits


# --- time stamps (§9.2.3.11) ----------------------------------------------------------------


def _bcd(value: int) -> int:
    return (value % 10) << 4 | (value // 10)


def _unbcd(octet: int, what: str) -> int:
    low, high = octet & 0x0F, octet >> 4
    if low > 9 or high > 9:
        raise PduError(f"{what} is not decimal")
    return low * 10 + high


def encode_timestamp(moment: datetime) -> bytes:
    """Encode an aware datetime as 7 semi-octet octets, its offset in quarter hours."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("timestamp must be timezone-aware")
    quarters, rest = divmod(int(offset.total_seconds()), 900)
    if rest or not -79 <= quarters <= 79:
        raise ValueError("UTC offset must be a whole number of quarter hours within ±19:45")
    if not 1990 <= moment.year <= 2089:
        raise ValueError("year must be 1990..2089")
    fields = [moment.year % 100, moment.month, moment.day, moment.hour, moment.minute]
    octets = [_bcd(v) for v in [*fields, moment.second]]
    # The sign is bit 3 of the first semi-octet of the zone, i.e. of the tens digit.
    zone = _bcd(abs(quarters)) | (0x08 if quarters < 0 else 0)
    return bytes([*octets, zone])


def decode_timestamp(data: bytes) -> datetime:
    """Decode 7 semi-octet octets into an aware datetime.

    Two-digit years 90..99 are 1990s; the rest are 2000..2089, as Gammu reads them.
    """
    if len(data) != 7:
        raise PduError("time stamp must be 7 octets")
    year, month, day, hour, minute, second = (_unbcd(o, "time stamp") for o in data[:6])
    zone = data[6]
    quarters = _unbcd(zone & 0xF7, "time zone")
    if zone & 0x08:
        quarters = -quarters
    try:
        tz = timezone(timedelta(minutes=15 * quarters))
        return datetime(
            year + (1900 if year >= 90 else 2000), month, day, hour, minute, second, tzinfo=tz
        )
    except ValueError as exc:
        raise PduError(f"time stamp is not a date: {exc}") from None


# --- validity period (§9.2.3.12) -------------------------------------------------------------


def encode_validity(period: timedelta) -> int:
    """Return the relative TP-VP octet for the shortest period not below ``period``."""
    minutes = max(0, -(-int(period.total_seconds()) // 60))
    if minutes <= 144 * 5:
        return max(0, -(-minutes // 5) - 1)
    if minutes <= 24 * 60:
        return 143 + -(-(minutes - 12 * 60) // 30)
    days = -(-minutes // (24 * 60))
    if days <= 30:
        return 166 + days
    return min(255, 192 + -(-days // 7))


def decode_validity(octet: int) -> timedelta:
    """Return the period a relative TP-VP octet stands for."""
    if octet <= 143:
        return timedelta(minutes=5 * (octet + 1))
    if octet <= 167:
        return timedelta(hours=12, minutes=30 * (octet - 143))
    if octet <= 196:
        return timedelta(days=octet - 166)
    return timedelta(weeks=octet - 192)


# --- user data header (§9.2.3.24) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Concat:
    """A concatenation information element: part ``sequence`` of ``total``, 1-based."""

    reference: int
    total: int
    sequence: int
    #: 8 for IEI 0x00, 16 for IEI 0x08.
    reference_bits: Literal[8, 16] = 8


def encode_concat_udh(concat: Concat) -> bytes:
    """Return a whole UDH (with its length octet) holding one concatenation element."""
    if not 1 <= concat.sequence <= concat.total <= 255:
        raise ValueError("concatenation needs 1 <= sequence <= total <= 255")
    if concat.reference_bits == 16:
        ref = (concat.reference & 0xFFFF).to_bytes(2, "big")
        return bytes([6, 0x08, 4, *ref, concat.total, concat.sequence])
    return bytes([5, 0x00, 3, concat.reference & 0xFF, concat.total, concat.sequence])


def decode_udh(udh: bytes) -> tuple[Concat | None, dict[int, bytes]]:
    """Return the concatenation element, if valid, and every element by IEI (without the UDHL).

    TS 23.040 asks a receiver to ignore an element whose values are out of range, so a
    concatenation element with total 0 or sequence outside 1..total yields no Concat.
    """
    elements: dict[int, bytes] = {}
    concat: Concat | None = None
    reader = Reader(udh)
    while reader.pos < len(udh):
        iei = reader.octet("information element identifier")
        size = reader.octet("information element length")
        data = reader.take(size, "information element")
        elements[iei] = data
        if iei == 0x00 and size == 3:
            ref, total, seq = data
            if 1 <= seq <= total:
                concat = Concat(ref, total, seq, 8)
        elif iei == 0x08 and size == 4:
            total, seq = data[2], data[3]
            if 1 <= seq <= total:
                concat = Concat(int.from_bytes(data[:2], "big"), total, seq, 16)
    return concat, elements
