"""Encoding SMS TPDUs (3GPP TS 23.040 §9.2.2): SMS-SUBMIT to send through a modem, and
SMS-DELIVER and SMS-STATUS-REPORT as a network gives them (the simulated modem). No I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

from smssync.gsm.alphabet import encode_septets, pack_septets
from smssync.gsm.fields import (
    Concat,
    PduError,
    encode_address,
    encode_concat_udh,
    encode_smsc,
    encode_timestamp,
    encode_validity,
)
from smssync.gsm.pdu import (
    DCS,
    MTI_DELIVER,
    MTI_STATUS_REPORT,
    MTI_SUBMIT,
    SRR,
    UDHI,
    SubmitPart,
)
from smssync.gsm.segments import Encoding, encoding_for, split

__all__ = ["encode_deliver", "encode_status_report", "encode_submit", "encode_submit_parts"]


def _user_data(text: str, coding: Encoding, concat: Concat | None) -> tuple[int, bytes]:
    """Return TP-UDL and TP-UD for text, with a concatenation header when given."""
    udh = encode_concat_udh(concat) if concat else b""
    if coding == "gsm7":
        try:
            septets = encode_septets(text)
        except ValueError as exc:
            raise PduError(str(exc)) from None
        header_bits = len(udh) * 8
        fill = (7 - header_bits % 7) % 7
        udl = (header_bits + fill) // 7 + len(septets)
        if udl > 160:
            raise PduError("text does not fit one SMS")
        return udl, udh + pack_septets(septets, fill)
    body = udh + text.encode("utf-16-be")
    if len(body) > 140:
        raise PduError("text does not fit one SMS")
    return len(body), body


def encode_submit(
    to: str,
    text: str,
    *,
    concat: Concat | None = None,
    coding: Encoding | None = None,
    request_status_report: bool = False,
    message_reference: int = 0,
    validity: timedelta | int | None = None,
    reject_duplicates: bool = False,
    smsc: str | None = None,
    smsc_prefix: bool = True,
) -> SubmitPart:
    """Encode one SMS-SUBMIT for AT+CMGS.

    ``validity`` is a relative period, or a raw TP-VP octet; ``smsc_prefix`` puts the SMSC
    field (``00`` without ``smsc``: the modem's own) before the TPDU. TP-MR 0 lets the modem
    assign the reference it returns in +CMGS.
    """
    first = MTI_SUBMIT
    if reject_duplicates:
        first |= 0x04
    if validity is not None:
        first |= 0x10  # TP-VPF relative
    if request_status_report:
        first |= SRR
    if concat:
        first |= UDHI
    enc = coding or encoding_for(text)
    udl, ud = _user_data(text, enc, concat)
    tpdu = bytearray([first, message_reference & 0xFF])
    tpdu += encode_address(to)
    tpdu += bytes([0x00, DCS[enc]])
    if validity is not None:
        vp = validity if isinstance(validity, int) else encode_validity(validity)
        if not 0 <= vp <= 255:
            raise ValueError("TP-VP must be 0..255")
        tpdu.append(vp)
    tpdu.append(udl)
    tpdu += ud
    prefix = encode_smsc(smsc) if smsc_prefix or smsc else b""
    return SubmitPart((prefix + tpdu).hex().upper(), len(tpdu))


def encode_submit_parts(
    to: str,
    text: str,
    reference: int,
    request_status_report: bool = False,
    *,
    validity: timedelta | int | None = None,
    smsc: str | None = None,
    smsc_prefix: bool = True,
) -> list[SubmitPart]:
    """Encode a text as one SMS-SUBMIT, or several with an 8-bit-reference concatenation UDH.

    ``reference`` (0..255) ties the parts together; a single part carries no header.
    """
    coding = encoding_for(text)
    parts = split(text, coding)
    if len(parts) > 255:
        raise PduError("text needs more than 255 parts")
    return [
        encode_submit(
            to,
            part,
            concat=Concat(reference & 0xFF, len(parts), i) if len(parts) > 1 else None,
            coding=coding,
            request_status_report=request_status_report,
            validity=validity,
            smsc=smsc,
            smsc_prefix=smsc_prefix,
        )
        for i, part in enumerate(parts, start=1)
    ]


def encode_deliver(
    originator: str,
    text: str,
    timestamp: datetime,
    *,
    smsc: str | None = None,
    concat: Concat | None = None,
    coding: Encoding | None = None,
    status_report_indication: bool = False,
) -> str:
    """Encode an SMS-DELIVER with its SMSC prefix, as a modem would list it (for emulators)."""
    first = MTI_DELIVER | 0x04  # TP-MMS: no more messages waiting
    if status_report_indication:
        first |= SRR
    if concat:
        first |= UDHI
    enc = coding or encoding_for(text)
    udl, ud = _user_data(text, enc, concat)
    try:
        scts = encode_timestamp(timestamp)
    except ValueError as exc:
        raise PduError(str(exc)) from None
    tpdu = bytes([first]) + encode_address(originator) + bytes([0x00, DCS[enc]]) + scts
    return (encode_smsc(smsc) + tpdu + bytes([udl]) + ud).hex().upper()


def encode_status_report(
    message_reference: int,
    recipient: str,
    sc_timestamp: datetime,
    discharge_time: datetime,
    status: int,
    *,
    smsc: str | None = None,
) -> str:
    """Encode an SMS-STATUS-REPORT with its SMSC prefix (for emulators and tests)."""
    if not 0 <= status <= 255:
        raise ValueError("TP-ST must be 0..255")
    try:
        times = encode_timestamp(sc_timestamp) + encode_timestamp(discharge_time)
    except ValueError as exc:
        raise PduError(str(exc)) from None
    tpdu = bytes([MTI_STATUS_REPORT | 0x04, message_reference & 0xFF]) + encode_address(recipient)
    return (encode_smsc(smsc) + tpdu + times + bytes([status])).hex().upper()
