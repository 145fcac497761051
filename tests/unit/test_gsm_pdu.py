"""The SMS PDU codec against published vectors (TS 23.040).

Sources of the vectors:
- [DF] Lars Pettersson, "SMS and the PDU format", dreamfabric.com/sms (mirrored on many sites,
  e.g. subnets.ru/saved/sms_pdu_format.html): the "How are you?" DELIVER, the "hellohello"
  DELIVER and SUBMIT.
- [GM] faucamp/python-gsmmodem ``test/test_pdu.py``: more DELIVERs and SUBMITs, a concatenated
  SUBMIT, a STATUS-REPORT, address, time stamp, validity and UDH vectors.
- [PM] python-messaging ``messaging/test/test_sms.py``: a UCS-2 DELIVER.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from smssync.errors import ProtocolError
from smssync.gsm.encode import encode_deliver, encode_status_report, encode_submit
from smssync.gsm.fields import (
    Concat,
    Reader,
    decode_address,
    decode_smsc,
    decode_timestamp,
    decode_udh,
    decode_validity,
    encode_address,
    encode_concat_udh,
    encode_smsc,
    encode_timestamp,
    encode_validity,
)
from smssync.gsm.pdu import (
    Deliver,
    PduError,
    ReportClass,
    StatusReport,
    Submit,
    classify_status,
    coding_for_dcs,
    decode,
    decode_deliver,
    decode_status_report,
    decode_submit,
)
from smssync.gsm.segments import split


def tz(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


# --- SMS-DELIVER ----------------------------------------------------------------------------

HOW_ARE_YOU = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"


def test_deliver_how_are_you() -> None:
    # [DF]. Its TP-SCTS zone octet is 0x08. TS 23.040 §9.2.3.11 reads the zone as two swapped
    # semi-octets whose first (the low nibble, the tens digit) carries the sign in bit 3:
    # 0x08 is sign "-", tens 0, units 0, i.e. an offset of zero. The "+02:00" often quoted
    # reads the octet unswapped; Android (gsmBcdByteToInt) and python-gsmmodem read it as
    # we do. The [DF] "hellohello" DELIVER below carries a real +02:00 (0x80).
    sms = decode_deliver(HOW_ARE_YOU)
    assert sms.smsc == "+31624000000"
    assert sms.originator == "+31641600986"
    assert (sms.pid, sms.dcs, sms.coding) == (0, 0, "gsm7")
    assert sms.timestamp == datetime(2002, 8, 26, 19, 37, 41, tzinfo=UTC)
    assert sms.text == "How are you?"
    assert sms.concat is None
    assert not sms.more_messages
    assert not sms.status_report_indication
    again = encode_deliver(sms.originator, sms.text, sms.timestamp, smsc=sms.smsc)
    # Identical but for the zone octet, which we write as the canonical +0 (0x00).
    assert again == HOW_ARE_YOU.replace("7314080C", "7314000C")


def test_deliver_hellohello_with_plus_two_hours() -> None:
    # [DF]: sender TOA 0xC8 (TON 4 "subscriber", national plan): digits without "+".
    sms = decode_deliver("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
    assert sms.smsc == "+27381000015"
    assert sms.originator == "27838890001"
    assert sms.timestamp == datetime(1999, 3, 29, 15, 16, 59, tzinfo=tz(2))
    assert sms.text == "hellohello"


@pytest.mark.parametrize(
    ("pdu", "smsc", "originator", "when", "text"),
    [
        (  # [GM]
            "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
            "+2782913593",
            "+27821234567",
            datetime(2013, 3, 8, 15, 2, 16, tzinfo=tz(2)),
            "Test2",
        ),
        (  # [GM]
            "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06"
            "C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
            "+85290000000",
            "+85291234567",
            datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(8)),
            "It is easy to read text messages via AT commands.",
        ),
        (  # [GM]: an extension pair ({ and }) inside the text
            "06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910",
            "+2782913593",
            "+27821234567",
            datetime(2013, 3, 26, 13, 35, 25, tzinfo=tz(2)),
            "@{tést}!",
        ),
        (  # [PM]: UCS-2
            "07914306073011F0040B914316709807F2000880604290224080084E2D5174901A8BAF",
            "+34607003110",
            "+34610789702",
            datetime(2008, 6, 24, 9, 22, 4, tzinfo=tz(2)),
            "中兴通讯",
        ),
    ],
)
def test_deliver_vectors_decode_and_re_encode(
    pdu: str, smsc: str, originator: str, when: datetime, text: str
) -> None:
    sms = decode_deliver(pdu)
    assert (sms.smsc, sms.originator, sms.timestamp, sms.text) == (smsc, originator, when, text)
    assert encode_deliver(originator, text, when, smsc=smsc) == pdu


def test_deliver_with_concatenation_header_and_fill_bits() -> None:
    # [GM]: UDHI set, UDH 05 00 03 C3 01 01, one fill bit before the text; sender TOA 0x81.
    pdu = (
        "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E"
        "064941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C"
        "87A7E565D0DB0D82C55EB0DB4B068BCD5C20"
    )
    sms = decode_deliver(pdu)
    assert sms.smsc == "+2781191"
    assert sms.originator == "2781188"
    assert sms.concat == Concat(reference=0xC3, total=1, sequence=1)
    assert sms.elements == {0x00: bytes([0xC3, 1, 1])}
    assert sms.text == (
        "Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. "
    )


def test_deliver_without_smsc_prefix() -> None:
    sms = decode_deliver(HOW_ARE_YOU[16:], with_smsc=False)
    assert sms.smsc is None
    assert sms.text == "How are you?"


def test_deliver_parts_round_trip_with_16_bit_reference() -> None:
    when = datetime(2024, 2, 29, 23, 59, 59, tzinfo=tz(-3.75))
    concat = Concat(reference=0xBEEF, total=3, sequence=2, reference_bits=16)
    pdu = encode_deliver("M-PESA", "part two", when, concat=concat, smsc="+254722000000")
    sms = decode_deliver(pdu)
    assert sms.originator == "M-PESA"
    assert sms.concat == concat
    assert sms.text == "part two"
    assert sms.timestamp == when


def test_alphanumeric_sender_in_a_deliver() -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    sms = decode_deliver(encode_deliver("Vodafone", "Hi €", when))
    assert (sms.originator, sms.text) == ("Vodafone", "Hi €")


# --- SMS-SUBMIT -----------------------------------------------------------------------------


def test_submit_hellohello() -> None:
    # [DF]: SMSC prefix 00, first octet 0x11 (SUBMIT, relative VP), TP-MR 0, VP 0xAA = 4 days.
    pdu = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    sub = decode_submit(pdu)
    assert sub.smsc is None
    assert sub.destination == "+46708251358"
    assert sub.validity == timedelta(days=4)
    assert sub.text == "hellohello"
    assert not sub.status_report_request
    part = encode_submit("+46708251358", "hellohello", validity=timedelta(days=4))
    assert part == (pdu, 23)
    assert part.length == len(bytes.fromhex(pdu)) - 1
    assert encode_submit("+46708251358", "hellohello", validity=0xAA).pdu == pdu


def test_submit_without_smsc_prefix_and_with_status_report() -> None:
    part = encode_submit(
        "+46708251358", "hellohello", smsc_prefix=False, request_status_report=True
    )
    assert part.pdu == "21000B916407281553F800000AE8329BFD4697D9EC37"
    assert part.length == len(part.pdu) // 2
    sub = decode_submit(part.pdu, with_smsc=False)
    assert sub.status_report_request and sub.validity is None


@pytest.mark.parametrize(
    ("pdu", "to", "text", "validity", "smsc"),
    [
        (
            "0001000B917228001011F100000CC8329BFD065DDF72363904",  # [GM]
            "+27820001111",
            "Hello World!",
            None,
            None,
        ),
        (
            "07914400000000F01100099121436587F90008F40A4E16754C60A8597DFF01",  # [GM] UCS-2
            "+123456789",
            "世界您好！",
            timedelta(weeks=52),
            "+44000000000",
        ),
    ],
)
def test_submit_vectors(
    pdu: str, to: str, text: str, validity: timedelta | None, smsc: str | None
) -> None:
    part = encode_submit(to, text, validity=validity, smsc=smsc)
    assert part.pdu == pdu
    smsc_octets = 1 + bytes.fromhex(pdu)[0]
    assert part.length == len(bytes.fromhex(pdu)) - smsc_octets
    sub = decode_submit(pdu)
    assert (sub.destination, sub.text, sub.validity, sub.smsc) == (to, text, validity, smsc)


LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua.Ut enim ad minim veniam, quinostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat.Duis aute irure dolor in reprehenderit in "
    "voluptate velit esse cillum doloe eu fugiat nulla pariatur.Excepteur sint occaecat "
    "cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum"
)
LOREM_PDUS = [  # [GM]: reference 0, reject-duplicates set (first octet 0x45), no VP
    "0045000B915121551532F40000A0050003000301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB7416"
    "68FC76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747DDE7E9341F4721BFE"
    "9683D2EE719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C36777181466A7E3F5B0AB4A0795"
    "DDE936284C06B5D3EE741B642FBBD3E1360B14AFA7DD",
    "0045000B915121551532F40000A0050003000302DE73BABC4E0695F165F9384D0FD3D36F37A8CE6687DBE337"
    "881D16BFE5E939C89D9EA741753A28CC4EC7EB6938A88C0795C3A0F1BBDD7E93DFA0F1DB3D2FC7EB61BA8B58"
    "4FCF41E13ABD0C4ACBEBF23288FC66BFE5A0B41B242FC3E56574D94D2ECBD37450DA0DB2BFD975383D4C2F83"
    "EC65769A0E2ACFE765D038CD66D7DB20F29BFD2E83CA",
    "0045000B915121551532F400008C050003000303EA2073FD9C0ED341EE3A9B1D06C1C3F274985E97BB8AF871"
    "194E2FD7E5A079DA4D07BDC7E370791CA683C675789A1CA687E920F7DB0D82CBDF6972D94D6781E675371D94"
    "7683C675363C0C8AD7D3A0B7D99C1EA7C32072795E96D7DD7450FBCD66A7E9A0B03BDD06A5C9A0F29C0E6287"
    "C56F79BD0D",
]


def test_concatenated_submit_vector() -> None:
    parts = split(LOREM)
    assert [len(p) for p in parts] == [153, 153, 133]
    for i, (text, pdu) in enumerate(zip(parts, LOREM_PDUS, strict=True), start=1):
        encoded = encode_submit(
            "+15125551234", text, concat=Concat(0, 3, i), reject_duplicates=True
        )
        assert encoded.pdu == pdu
        sub = decode_submit(pdu)
        assert sub.concat == Concat(0, 3, i)
        assert sub.reject_duplicates
        assert sub.text == text


def test_submit_refuses_what_does_not_fit() -> None:
    with pytest.raises(PduError):
        encode_submit("+1", "x" * 161)
    with pytest.raises(PduError):
        encode_submit("+1", "ж" * 71)
    with pytest.raises(PduError):
        encode_submit("+1", "ж", coding="gsm7")
    with pytest.raises(PduError):
        encode_submit("this sender name is too long", "x")


# --- SMS-STATUS-REPORT ----------------------------------------------------------------------

STATUS_REPORT = "0006D60B911326880736F4111011719551401110117195714000"  # [GM]


def test_status_report_vector() -> None:
    rep = decode_status_report(STATUS_REPORT)
    assert rep == StatusReport(
        smsc=None,
        message_reference=214,
        recipient="+31628870634",
        sc_timestamp=datetime(2011, 1, 11, 17, 59, 15, tzinfo=tz(1)),
        discharge_time=datetime(2011, 1, 11, 17, 59, 17, tzinfo=tz(1)),
        status=0,
    )
    assert rep.report_class is ReportClass.DELIVERED
    assert rep.delivered and not rep.failed
    assert (
        encode_status_report(214, "+31628870634", rep.sc_timestamp, rep.discharge_time, 0)
        == STATUS_REPORT
    )


@pytest.mark.parametrize(
    ("status", "cls", "delivered", "failed"),
    [
        (0x00, ReportClass.DELIVERED, True, False),  # received by the SME
        (0x01, ReportClass.DELIVERED, True, False),  # forwarded, unconfirmed
        (0x02, ReportClass.DELIVERED, True, False),  # replaced by the SC
        (0x20, ReportClass.TEMPORARY, False, False),  # congestion, SC still trying
        (0x25, ReportClass.TEMPORARY, False, False),
        (0x41, ReportClass.PERMANENT, False, True),  # incompatible destination
        (0x46, ReportClass.PERMANENT, False, True),  # validity period expired
        (0x60, ReportClass.TEMPORARY_FINAL, False, True),  # congestion, SC stopped
        (0x65, ReportClass.TEMPORARY_FINAL, False, True),
        (0x80, ReportClass.PERMANENT, False, True),  # reserved
    ],
)
def test_status_classes(status: int, cls: ReportClass, delivered: bool, failed: bool) -> None:
    assert classify_status(status) is cls
    when = datetime(2020, 5, 6, 7, 8, 9, tzinfo=tz(-5))
    rep = decode_status_report(encode_status_report(7, "12345", when, when, status, smsc="+1"))
    assert (rep.status, rep.recipient, rep.smsc) == (status, "12345", "+1")
    assert (rep.delivered, rep.failed) == (delivered, failed)


# --- decode() dispatch and errors ----------------------------------------------------------


def test_decode_dispatches_on_mti() -> None:
    assert isinstance(decode(HOW_ARE_YOU), Deliver)
    assert isinstance(decode("0011000B916407281553F80000AA0AE8329BFD4697D9EC37"), Submit)
    assert isinstance(decode(STATUS_REPORT), StatusReport)
    with pytest.raises(PduError):
        decode("0003")


@pytest.mark.parametrize(
    "bad",
    ["", "zz", "0", "07911326040000F0", HOW_ARE_YOU[:40], "0004", "000400", "00040B91"],
)
def test_malformed_pdus_raise_pdu_error(bad: str) -> None:
    with pytest.raises(PduError) as info:
        decode(bad)
    assert isinstance(info.value, ProtocolError)


def test_wrong_type_is_refused() -> None:
    with pytest.raises(PduError):
        decode_status_report(HOW_ARE_YOU)
    with pytest.raises(PduError):
        decode_deliver(STATUS_REPORT)


def test_bad_udh_is_refused() -> None:
    # UDHI set but the header length overruns the user data.
    with pytest.raises(PduError):
        decode_submit("0041000B916407281553F800000A20E8")


def test_whitespace_in_hex_is_tolerated() -> None:
    assert decode_deliver(" ".join(HOW_ARE_YOU[i : i + 8] for i in range(0, 76, 8))).text == (
        "How are you?"
    )


# --- field vectors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "hex_field"),
    [
        ("+27829135934", "0B917228195339F4"),
        ("FRANCOIS", "0ED04669D0397C26A7"),  # [GM] alphanumeric
        ("a[]{}€", "14D0E10D6FE3DBA036A94D19"),  # [GM] alphanumeric with escapes
        ("12345", "05812143F5"),
    ],
)
def test_address_vectors(address: str, hex_field: str) -> None:
    assert encode_address(address).hex().upper() == hex_field
    assert decode_address(Reader(bytes.fromhex(hex_field))) == address


def test_national_address_decodes_as_digits() -> None:
    # [GM]: TOA 0xA1 (TON national).
    assert decode_address(Reader(bytes.fromhex("0AA11092997856"))) == "0129998765"


def test_smsc_vectors() -> None:
    # [GM]: the SMSC length counts octets, TOA included.
    assert encode_smsc("+2782913593").hex().upper() == "06917228195339"
    assert decode_smsc(Reader(bytes.fromhex("069189674523F1"))) == "+987654321"
    assert encode_smsc(None) == b"\x00"
    assert decode_smsc(Reader(b"\x00")) is None


@pytest.mark.parametrize(
    ("moment", "hex_field"),
    [  # [GM]
        (datetime(2015, 11, 27, tzinfo=tz(0)), "51117200000000"),
        (datetime(2015, 11, 27, tzinfo=tz(2)), "51117200000080"),
        (datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(8)), "70402132522423"),
        (datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(-8)), "7040213252242B"),
    ],
)
def test_timestamp_vectors(moment: datetime, hex_field: str) -> None:
    assert encode_timestamp(moment).hex().upper() == hex_field
    assert decode_timestamp(bytes.fromhex(hex_field)) == moment
    assert decode_timestamp(bytes.fromhex(hex_field)).utcoffset() == moment.utcoffset()


def test_timestamp_refusals() -> None:
    with pytest.raises(ValueError):
        encode_timestamp(datetime(2020, 1, 1))
    with pytest.raises(ValueError):
        encode_timestamp(datetime(2020, 1, 1, tzinfo=timezone(timedelta(minutes=10))))
    with pytest.raises(PduError):
        decode_timestamp(bytes.fromhex("51317200000000"))  # month 13
    with pytest.raises(PduError):
        decode_timestamp(bytes.fromhex("5A117200000000"))  # not decimal


@pytest.mark.parametrize(
    ("period", "octet"),
    [
        (timedelta(minutes=30), 5),
        (timedelta(hours=16), 151),
        (timedelta(days=3), 169),
        (timedelta(weeks=5), 197),
        (timedelta(days=4), 0xAA),
    ],  # [GM], [DF]
)
def test_validity_vectors(period: timedelta, octet: int) -> None:
    assert encode_validity(period) == octet
    assert decode_validity(octet) == period


def test_every_validity_octet_round_trips() -> None:
    for octet in range(256):
        assert encode_validity(decode_validity(octet)) == octet


@pytest.mark.parametrize(
    ("concat", "hex_ie"),
    [(Concat(23, 3, 1), "0003170301"), (Concat(384, 4, 2, 16), "080401800402")],  # [GM]
)
def test_concatenation_element_vectors(concat: Concat, hex_ie: str) -> None:
    udh = encode_concat_udh(concat)
    assert udh[1:].hex().upper() == hex_ie
    assert udh[0] == len(udh) - 1
    assert decode_udh(udh[1:])[0] == concat


def test_invalid_concatenation_element_is_ignored() -> None:
    assert decode_udh(bytes.fromhex("0003170300"))[0] is None  # sequence 0
    assert decode_udh(bytes.fromhex("0003170004"))[0] is None  # total 0
    with pytest.raises(PduError):
        decode_udh(bytes.fromhex("000317"))


@pytest.mark.parametrize(
    ("dcs", "coding"),
    [
        (0x00, "gsm7"),
        (0x04, "8bit"),
        (0x08, "ucs2"),
        (0x10, "gsm7"),
        (0x18, "ucs2"),
        (0x14, "8bit"),
        (0x24, "8bit"),
        (0xC0, "gsm7"),
        (0xD0, "gsm7"),
        (0xE0, "ucs2"),
        (0xF0, "gsm7"),
        (0xF4, "8bit"),
        (0x48, "ucs2"),
        (0x0C, "gsm7"),
    ],
)
def test_dcs(dcs: int, coding: str) -> None:
    assert coding_for_dcs(dcs) == coding


def test_eight_bit_deliver() -> None:
    # Built by hand from §9.2.2.1: DCS 0x04, UDL counts octets.
    scts = encode_timestamp(datetime(2021, 6, 1, 12, 0, tzinfo=UTC)).hex()
    pdu = "00" + "04" + "0B916407281553F8" + "0004" + scts + "03" + "01FF7F"
    sms = decode_deliver(pdu)
    assert sms.coding == "8bit"
    assert sms.data == bytes([1, 0xFF, 0x7F])
