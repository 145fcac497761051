"""Property tests for the PDU codec: round trips, and no stray exceptions on junk."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from smssync.gsm.alphabet import BASIC, EXTENSION
from smssync.gsm.encode import encode_deliver, encode_status_report, encode_submit_parts
from smssync.gsm.fields import (
    Concat,
    Reader,
    decode_address,
    decode_timestamp,
    decode_validity,
    encode_address,
    encode_timestamp,
    encode_validity,
)
from smssync.gsm.pdu import PduError, decode, decode_deliver, decode_status_report, decode_submit
from smssync.gsm.segments import count_segments, encoding_for, split

GSM_CHARS = sorted(BASIC) + sorted(EXTENSION)
gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700)
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=400)
numbers = st.builds(
    lambda plus, digits: ("+" if plus else "") + digits,
    st.booleans(),
    st.text(alphabet="0123456789", min_size=1, max_size=20),
)
alphanumeric = st.text(alphabet=st.sampled_from(sorted(BASIC)), min_size=1, max_size=11)
quarters = st.integers(-48, 56)
moments = st.builds(
    lambda naive, q: naive.replace(tzinfo=timezone(timedelta(minutes=15 * q))),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2089, 12, 31, 23, 59, 59)),
    quarters,
).map(lambda d: d.replace(microsecond=0))


def _check_parts(to: str, text: str, reference: int, srr: bool) -> None:
    parts = encode_submit_parts(to, text, reference, srr)
    assert len(parts) == count_segments(text) == len(split(text))
    decoded = [decode_submit(p.pdu) for p in parts]
    assert "".join(d.text for d in decoded) == text
    for i, (part, sub) in enumerate(zip(parts, decoded, strict=True), start=1):
        raw = bytes.fromhex(part.pdu)
        assert raw[0] == 0  # the modem's own SMSC
        assert part.length == len(raw) - 1
        assert sub.destination == to
        assert sub.status_report_request == srr
        assert sub.message_reference == 0
        assert sub.coding == encoding_for(text)
        if len(parts) == 1:
            assert sub.concat is None
        else:
            assert sub.concat == Concat(reference, len(parts), i)
            # 200 GSM-7 characters give first octet 0x61 with SRR (spec §2.5).
            assert raw[1] == (0x61 if srr else 0x41)


@settings(max_examples=200)
@given(gsm_text, numbers, st.integers(0, 255), st.booleans())
def test_gsm7_text_survives_submit_parts(text: str, to: str, ref: int, srr: bool) -> None:
    _check_parts(to, text, ref, srr)


@settings(max_examples=200)
@given(any_text, numbers, st.integers(0, 255), st.booleans())
def test_any_text_survives_submit_parts(text: str, to: str, ref: int, srr: bool) -> None:
    _check_parts(to, text, ref, srr)


@given(st.text(alphabet=st.sampled_from(["😀", "ж", "a"]), min_size=60, max_size=300))
def test_surrogate_pairs_stay_whole(text: str) -> None:
    for part in encode_submit_parts("+1", text, 9):
        sub = decode_submit(part.pdu)
        assert all(not 0xD800 <= ord(c) <= 0xDFFF for c in sub.text)


@given(st.one_of(numbers, alphanumeric))
def test_address_round_trip(address: str) -> None:
    reader = Reader(encode_address(address) + b"\x99")
    assert decode_address(reader) == address
    assert reader.rest() == b"\x99"


@given(moments)
def test_timestamp_round_trip(moment: datetime) -> None:
    decoded = decode_timestamp(encode_timestamp(moment))
    assert decoded == moment
    assert decoded.utcoffset() == moment.utcoffset()


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(weeks=63)))
def test_validity_rounds_up(period: timedelta) -> None:
    octet = encode_validity(period)
    assert decode_validity(octet) >= period
    if octet > 0:
        assert decode_validity(octet - 1) < period


@given(
    st.one_of(numbers, alphanumeric),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
    moments,
    st.one_of(
        st.none(),
        st.builds(Concat, st.integers(0, 255), st.just(4), st.integers(1, 4)),
        st.builds(lambda r: Concat(r, 2, 1, 16), st.integers(0, 65535)),
    ),
)
def test_deliver_round_trip(
    originator: str, text: str, when: datetime, concat: Concat | None
) -> None:
    sms = decode_deliver(encode_deliver(originator, text, when, concat=concat, smsc="+4479"))
    assert (sms.originator, sms.text, sms.timestamp, sms.concat) == (originator, text, when, concat)
    assert sms.smsc == "+4479"


@given(st.integers(0, 255), numbers, moments, moments, st.integers(0, 255))
def test_status_report_round_trip(
    mr: int, recipient: str, scts: datetime, dt: datetime, status: int
) -> None:
    rep = decode_status_report(encode_status_report(mr, recipient, scts, dt, status))
    assert (
        rep.message_reference,
        rep.recipient,
        rep.sc_timestamp,
        rep.discharge_time,
        rep.status,
    ) == (mr, recipient, scts, dt, status)


@settings(max_examples=500)
@given(st.binary(max_size=200), st.booleans())
def test_junk_decodes_or_raises_pdu_error(data: bytes, with_smsc: bool) -> None:
    for decoder in (decode, decode_deliver, decode_submit, decode_status_report):
        try:
            decoder(data.hex(), with_smsc=with_smsc)
        except PduError:
            pass


@settings(max_examples=300)
@given(st.integers(0, 2), st.binary(min_size=10, max_size=180))
def test_plausible_junk_decodes_or_raises_pdu_error(mti: int, body: bytes) -> None:
    # A valid-looking head makes the decoder reach deeper fields than random bytes do.
    head = bytes([0x00, mti | (body[0] & 0x7C), 0x0B, 0x91]) + bytes(6)
    try:
        decode((head + body[1:]).hex())
    except PduError:
        pass


def test_non_hex_text_raises_pdu_error() -> None:
    for junk in ("xyz", "0G", "\u0661\u0662", "00 1"):
        try:
            decode(junk)
        except PduError:
            continue
        raise AssertionError(junk)
