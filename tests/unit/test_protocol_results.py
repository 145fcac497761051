"""E7 result reports both ways, §4.1 texts and the S-33 mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smssync.errors import ProtocolError
from smssync.protocol.results import (
    SENT_TEXTS,
    UNKNOWN_SENT_TEXT,
    build_result_request,
    outcome,
    parse_result_request,
    sent_code_from_text,
)
from smssync.protocol.timestamps import format_app_timestamp
from smssync.records import MessageResult, OutboundStatus, SendOutcome

U1 = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
APP_E7 = (
    b'{"message_result":"[{\\"uuid\\":\\"1b4e28ba-2fa1-41d2-883f-0016d3cca427\\",'
    b'\\"sent_result_code\\":0,\\"sent_result_message\\":\\"Failed to send SMS because no pdu '
    b'provided\\",\\"delivered_result_code\\":0,\\"sent_timestamp\\":\\"Feb 21, 2017 3:36:40 PM'
    b'\\"}]"}'
)
APP_RESULT = MessageResult(
    message_id=U1,
    sent_code=0,
    sent_message="Failed to send SMS because no pdu provided",
    delivered_code=0,
    sent_timestamp="Feb 21, 2017 3:36:40 PM",
)
GATEWAY_E7 = (
    b'{"message_result":[{"uuid":"1b4e28ba-2fa1-41d2-883f-0016d3cca427","sent_result_code":-1,'
    b'"sent_result_message":"SMS sent","delivered_result_code":-1,"delivered_result_message":'
    b'"SMS delivered","sent_timestamp":"Feb 21, 2017 3:36:40 PM","delivered_timestamp":'
    b'"Feb 21, 2017 3:36:52 PM"}]}'
)
EAT = timezone(timedelta(hours=3))


def test_example_8_7_app_double_encoded_parse() -> None:
    assert parse_result_request(APP_E7) == [APP_RESULT]


def test_example_8_7_outcome_derives_code_3_and_ignores_delivery() -> None:
    result = outcome(APP_RESULT, EAT)
    assert result == SendOutcome(
        status=OutboundStatus.FAILED,
        reason="3: Failed to send SMS because no pdu provided",
        delivered=None,
        sent_at=datetime(2017, 2, 21, 12, 36, 40, tzinfo=UTC),
        delivered_at=None,
        # Kept as the App wrote it (S-34); the delivery is ignored, so is its time.
        sent_timestamp_raw="Feb 21, 2017 3:36:40 PM",
        delivered_timestamp_raw=None,
    )


def test_example_8_7_app_string_built_byte_for_byte() -> None:
    assert build_result_request([APP_RESULT], app_string=True) == APP_E7


def test_example_8_7_gateway_default_body() -> None:
    sent = datetime(2017, 2, 21, 15, 36, 40, tzinfo=UTC)
    result = MessageResult(
        message_id=U1,
        sent_code=-1,
        sent_message=SENT_TEXTS[-1],
        delivered_code=-1,
        delivered_message="SMS delivered",
        sent_timestamp=format_app_timestamp(sent, UTC),
        delivered_timestamp=format_app_timestamp(sent + timedelta(seconds=12), UTC),
    )
    assert build_result_request([result]) == GATEWAY_E7
    assert parse_result_request(GATEWAY_E7) == [result]
    assert outcome(result, UTC) == SendOutcome(
        OutboundStatus.SENT,
        None,
        OutboundStatus.DELIVERED,
        sent,
        sent + timedelta(seconds=12),
        result.sent_timestamp,
        result.delivered_timestamp,
    )


@pytest.mark.parametrize("raw", [b'{"message_result":"[]"}', b'{"message_result":[]}'])
def test_empty_reports(raw: bytes) -> None:
    assert parse_result_request(raw) == []


def test_entries_lenient_codes_unknown_fields_and_missing_uuid() -> None:
    raw = (
        b'{"message_result":[{"uuid":"a","sent_result_code":"-1","delivered_result_code":" 0 ",'
        b'"extra":{"x":1},"sent_timestamp":1487658999000},{"sent_result_code":1},{"uuid":""},'
        b'"junk",{"uuid":"b","sent_result_code":true,"delivered_result_code":1.5}],"other":1}'
    )
    assert parse_result_request(raw) == [
        MessageResult("a", sent_code=-1, delivered_code=0, sent_timestamp="1487658999000"),
        MessageResult("b"),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{}",
        b'{"message_result":null}',
        b'{"message_result":"not json"}',
        b'{"message_result":"{}"}',
        b'{"message_result":{}}',
        b'[{"uuid":"a"}]',
        b'{"message_result":1}',
    ],
)
def test_bad_reports_are_refused(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_result_request(raw)
    assert len(info.value.message) < 60


@pytest.mark.parametrize(("code", "text"), sorted(SENT_TEXTS.items()))
def test_sent_code_from_every_text(code: int, text: str) -> None:
    assert sent_code_from_text(text) == code
    assert sent_code_from_text("  " + "\n".join(text.upper().split()) + " ") == code


def test_sent_code_from_unknown_texts() -> None:
    assert sent_code_from_text(UNKNOWN_SENT_TEXT) is None
    assert sent_code_from_text("nonsense") is None
    assert sent_code_from_text(None) is None


@pytest.mark.parametrize(
    ("result", "status", "reason", "delivered"),
    [
        (MessageResult("u", -1), OutboundStatus.SENT, None, None),
        (MessageResult("u", -1, delivered_code=0), OutboundStatus.SENT, None, "undelivered"),
        (MessageResult("u", -1, delivered_code=-1), OutboundStatus.SENT, None, "delivered"),
        (MessageResult("u", 0, "sms SENT"), OutboundStatus.SENT, None, None),
        (MessageResult("u", 0, "SMS sent", delivered_code=0), "sent", None, "undelivered"),
        (MessageResult("u", 1), "failed", f"1: {SENT_TEXTS[1]}", None),
        (MessageResult("u", 2, delivered_code=-1), "failed", f"2: {SENT_TEXTS[2]}", None),
        (MessageResult("u", 4, delivered_code=0), "failed", f"4: {SENT_TEXTS[4]}", None),
        (MessageResult("u", 0, UNKNOWN_SENT_TEXT), "failed", "unknown", None),
        (MessageResult("u", 0), "failed", "unknown", None),
        (MessageResult("u", 0, "whatever", delivered_code=0), "failed", "unknown", None),
        (MessageResult("u", 9), "failed", "9: unknown", None),
        (MessageResult("u", None, SENT_TEXTS[3]), "failed", f"3: {SENT_TEXTS[3]}", None),
        (MessageResult("u"), None, None, None),
        (MessageResult("u", delivered_code=-1), None, None, "delivered"),
        (MessageResult("u", delivered_code=0), None, None, "undelivered"),
    ],
)
def test_outcome_table(
    result: MessageResult, status: str | None, reason: str | None, delivered: str | None
) -> None:
    got = outcome(result, UTC)
    assert (got.status, got.reason, got.delivered) == (status, reason, delivered)


@pytest.mark.parametrize("app_string", [False, True])
def test_a_bare_uuid_means_no_news(app_string: bool) -> None:
    # A gateway whose backend cannot know the outcome (Termux by default) sends the uuid
    # alone: no sent code, no text, no delivery fields. That changes nothing (S-33).
    body = build_result_request([MessageResult(U1)], app_string=app_string)
    assert b"sent_result" not in body and b"delivered" not in body
    [entry] = parse_result_request(body)
    assert entry == MessageResult(U1)
    got = outcome(entry, UTC)
    assert (got.status, got.reason, got.delivered, got.sent_at) == (None, None, None, None)


def test_unparseable_timestamps_give_none_not_errors() -> None:
    result = MessageResult("u", -1, delivered_code=-1, sent_timestamp="?", delivered_timestamp="x")
    got = outcome(result, UTC)
    assert got.status is OutboundStatus.SENT
    assert got.sent_at is None and got.delivered_at is None


# NUL is read back as U+FFFD (no SMS has one and PostgreSQL text cannot store it).
texts = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
results = st.builds(
    MessageResult,
    message_id=texts.filter(bool),
    sent_code=st.none() | st.integers(-(10**8), 10**8),
    sent_message=st.none() | texts,
    delivered_code=st.none() | st.integers(-(10**8), 10**8),
    delivered_message=st.none() | texts,
    sent_timestamp=st.none() | texts,
    delivered_timestamp=st.none() | texts,
)


@given(entries=st.lists(results, max_size=4), app_string=st.booleans())
def test_result_request_round_trip(entries: list[MessageResult], app_string: bool) -> None:
    body = build_result_request(entries, app_string=app_string)
    assert not set(body.decode()) & set("<>&='")
    assert parse_result_request(body) == entries


@given(st.binary(max_size=200) | st.binary(max_size=200).map(lambda b: b'{"message_result":' + b))
def test_parse_result_request_only_raises_protocol_error(raw: bytes) -> None:
    try:
        parsed = parse_result_request(raw)
    except ProtocolError:
        return
    for result in parsed:
        outcome(result, UTC)
