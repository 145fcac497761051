"""SMS TPDUs for modem PDU mode (3GPP TS 23.040 §9.2.2): SMS-DELIVER, SMS-SUBMIT and
SMS-STATUS-REPORT, their records and their decoding (``encode`` writes them). No I/O.

Hex strings travel as the modem shows them: +CMGL, +CMGR and +CMT put the SMSC address before
the TPDU (``with_smsc=True``); AT+CMGS wants the TPDU length without it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from smssync.gsm.alphabet import decode_septets, unpack_septets
from smssync.gsm.fields import (
    Concat,
    PduError,
    Reader,
    decode_address,
    decode_smsc,
    decode_timestamp,
    decode_udh,
    decode_validity,
)

__all__ = [
    "Coding",
    "Concat",
    "Deliver",
    "PduError",
    "ReportClass",
    "StatusReport",
    "Submit",
    "SubmitPart",
    "classify_status",
    "coding_for_dcs",
    "decode",
    "decode_deliver",
    "decode_status_report",
    "decode_submit",
]

Coding = Literal["gsm7", "8bit", "ucs2"]

MTI_DELIVER, MTI_SUBMIT, MTI_STATUS_REPORT = 0, 1, 2
UDHI = 0x40
SRR = 0x20  # TP-SRR in SUBMIT, TP-SRI in DELIVER: the same bit
DCS = {"gsm7": 0x00, "ucs2": 0x08}


class ReportClass(enum.Enum):
    """What a TP-ST value means for the part it reports on (TS 23.040 §9.2.3.15)."""

    #: 0x00-0x1F: the short message reached the recipient.
    DELIVERED = "delivered"
    #: 0x20-0x3F: a temporary error; the SC is still trying, wait for another report.
    TEMPORARY = "temporary"
    #: 0x40-0x5F: a permanent error; the SC has given up.
    PERMANENT = "permanent"
    #: 0x60-0x7F: a temporary error, but the SC has stopped trying.
    TEMPORARY_FINAL = "temporary_final"


def classify_status(status: int) -> ReportClass:
    """Return the class of a TP-ST value; reserved values (0x80 up) count as permanent."""
    if status < 0x20:
        return ReportClass.DELIVERED
    if status < 0x40:
        return ReportClass.TEMPORARY
    if 0x60 <= status < 0x80:
        return ReportClass.TEMPORARY_FINAL
    return ReportClass.PERMANENT


@dataclass(frozen=True, slots=True)
class Deliver:
    """A received SMS-DELIVER.

    For a part of a concatenated UCS-2 message ``text`` may end or start with half a
    surrogate pair (some senders split pairs); the reassembly buffer joins the halves.
    """

    smsc: str | None
    originator: str
    pid: int
    dcs: int
    coding: Coding
    timestamp: datetime
    text: str
    #: The user data after the header; for 8-bit data ``text`` is its Latin-1 reading.
    data: bytes
    concat: Concat | None
    #: Every information element of the user data header, by IEI.
    elements: dict[int, bytes]
    more_messages: bool
    status_report_indication: bool


@dataclass(frozen=True, slots=True)
class Submit:
    """A decoded SMS-SUBMIT (as stored on a SIM, or as we sent it)."""

    smsc: str | None
    message_reference: int
    destination: str
    pid: int
    dcs: int
    coding: Coding
    #: Relative periods as timedelta, absolute ones as datetime; enhanced format as None.
    validity: timedelta | datetime | None
    status_report_request: bool
    reject_duplicates: bool
    text: str
    data: bytes
    concat: Concat | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A received SMS-STATUS-REPORT for one part we sent."""

    smsc: str | None
    message_reference: int
    recipient: str
    sc_timestamp: datetime
    discharge_time: datetime
    status: int

    @property
    def report_class(self) -> ReportClass:
        """Return what the status means."""
        return classify_status(self.status)

    @property
    def delivered(self) -> bool:
        """Tell whether the part reached the recipient."""
        return self.report_class is ReportClass.DELIVERED

    @property
    def failed(self) -> bool:
        """Tell whether the SC has given up on the part."""
        return self.report_class in (ReportClass.PERMANENT, ReportClass.TEMPORARY_FINAL)


class SubmitPart(NamedTuple):
    """One SMS-SUBMIT ready for AT+CMGS: the hex to write and the TPDU length to announce."""

    pdu: str
    length: int


def coding_for_dcs(dcs: int) -> Coding:
    """Return the alphabet a TP-DCS value selects (TS 23.038 §4); the message class is ignored."""
    group = dcs >> 4
    if group <= 0x07:
        if dcs & 0x20:  # compressed: we cannot read it as text
            return "8bit"
        return ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 0x03]
    if group == 0x0E:
        return "ucs2"
    if group == 0x0F:
        return "8bit" if dcs & 0x04 else "gsm7"
    return "gsm7"


def _clean(text: str) -> str:
    # Replace lone surrogates so a whole message never carries half a character.
    return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")


def _read_user_data(
    reader: Reader, first: int, coding: Coding
) -> tuple[str, bytes, Concat | None, dict[int, bytes]]:
    udl = reader.octet("TP-UDL")
    payload = reader.rest()
    concat: Concat | None = None
    elements: dict[int, bytes] = {}
    header_octets = 0
    if first & UDHI:
        if not payload:
            raise PduError("TP-UDHI set but the user data is empty")
        header_octets = 1 + payload[0]
        if header_octets > len(payload):
            raise PduError("user data header is longer than the user data")
        concat, elements = decode_udh(payload[1:header_octets])
    if coding == "gsm7":
        header_bits = header_octets * 8
        fill = (7 - header_bits % 7) % 7
        count = udl - (header_bits + fill) // 7
        body = payload[header_octets:]
        text = decode_septets(unpack_septets(body, count, fill))
        return text, body, concat, elements
    body = payload[header_octets : max(udl, header_octets)]
    if coding == "ucs2":
        even = body[: len(body) - len(body) % 2]
        text = even.decode("utf-16-be", "surrogatepass")
        return (text if concat else _clean(text)), body, concat, elements
    return body.decode("latin-1"), body, concat, elements


def _octets(hex_pdu: str) -> bytes:
    try:
        return bytes.fromhex("".join(hex_pdu.split()))
    except ValueError:
        raise PduError("PDU is not hexadecimal") from None


def _start(hex_pdu: str, with_smsc: bool) -> tuple[Reader, str | None, int]:
    reader = Reader(_octets(hex_pdu))
    smsc = decode_smsc(reader) if with_smsc else None
    return reader, smsc, reader.octet("first octet")


def _expect(first: int, mti: int, name: str) -> None:
    if first & 0x03 != mti:
        raise PduError(f"PDU is not an {name} (TP-MTI {first & 0x03})")


def decode_deliver(hex_pdu: str, *, with_smsc: bool = True) -> Deliver:
    """Decode an SMS-DELIVER as the modem lists it."""
    reader, smsc, first = _start(hex_pdu, with_smsc)
    _expect(first, MTI_DELIVER, "SMS-DELIVER")
    originator = decode_address(reader)
    pid = reader.octet("TP-PID")
    dcs = reader.octet("TP-DCS")
    timestamp = decode_timestamp(reader.take(7, "TP-SCTS"))
    coding = coding_for_dcs(dcs)
    text, data, concat, elements = _read_user_data(reader, first, coding)
    return Deliver(
        smsc=smsc,
        originator=originator,
        pid=pid,
        dcs=dcs,
        coding=coding,
        timestamp=timestamp,
        text=text,
        data=data,
        concat=concat,
        elements=elements,
        # TP-MMS is set when *no* more messages are waiting.
        more_messages=not first & 0x04,
        status_report_indication=bool(first & SRR),
    )


def decode_submit(hex_pdu: str, *, with_smsc: bool = True) -> Submit:
    """Decode an SMS-SUBMIT."""
    reader, smsc, first = _start(hex_pdu, with_smsc)
    _expect(first, MTI_SUBMIT, "SMS-SUBMIT")
    reference = reader.octet("TP-MR")
    destination = decode_address(reader)
    pid = reader.octet("TP-PID")
    dcs = reader.octet("TP-DCS")
    vpf = (first >> 3) & 0x03
    validity: timedelta | datetime | None = None
    if vpf == 2:
        validity = decode_validity(reader.octet("TP-VP"))
    elif vpf == 3:
        validity = decode_timestamp(reader.take(7, "TP-VP"))
    elif vpf == 1:
        reader.take(7, "TP-VP")
    coding = coding_for_dcs(dcs)
    text, data, concat, _ = _read_user_data(reader, first, coding)
    return Submit(
        smsc=smsc,
        message_reference=reference,
        destination=destination,
        pid=pid,
        dcs=dcs,
        coding=coding,
        validity=validity,
        status_report_request=bool(first & SRR),
        reject_duplicates=bool(first & 0x04),
        text=text,
        data=data,
        concat=concat,
    )


def decode_status_report(hex_pdu: str, *, with_smsc: bool = True) -> StatusReport:
    """Decode an SMS-STATUS-REPORT; the optional parameters after TP-ST are not read."""
    reader, smsc, first = _start(hex_pdu, with_smsc)
    _expect(first, MTI_STATUS_REPORT, "SMS-STATUS-REPORT")
    reference = reader.octet("TP-MR")
    recipient = decode_address(reader)
    sc_timestamp = decode_timestamp(reader.take(7, "TP-SCTS"))
    discharge_time = decode_timestamp(reader.take(7, "TP-DT"))
    status = reader.octet("TP-ST")
    return StatusReport(smsc, reference, recipient, sc_timestamp, discharge_time, status)


def decode(hex_pdu: str, *, with_smsc: bool = True) -> Deliver | Submit | StatusReport:
    """Decode whatever a modem's storage holds, by its TP-MTI."""
    _, _, first = _start(hex_pdu, with_smsc)
    mti = first & 0x03
    if mti == MTI_DELIVER:
        return decode_deliver(hex_pdu, with_smsc=with_smsc)
    if mti == MTI_SUBMIT:
        return decode_submit(hex_pdu, with_smsc=with_smsc)
    if mti == MTI_STATUS_REPORT:
        return decode_status_report(hex_pdu, with_smsc=with_smsc)
    raise PduError("TP-MTI 3 is reserved")
