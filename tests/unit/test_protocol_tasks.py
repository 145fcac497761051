"""E2/E4 replies, the E5 handshake and E6 uuid lists, as server and gateway see them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smssync.errors import ProtocolError
from smssync.protocol.tasks import (
    build_inbound_reply,
    build_send_reply,
    build_sent_request,
    build_uuids_reply,
    parse_piggyback,
    parse_send_reply,
    parse_sent_request,
    parse_uuids_reply,
)
from smssync.records import TaskMessage

U1 = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
U2 = "c2d6a4b0-9e1f-4f5a-8d3c-7b6e5a4f3e2d"
E4_REPLY = (
    b'{"payload":{"success":true,"error":null,"task":"send","secret":"my secret","messages":'
    b'[{"to":"+254700000002","message":"Your code is 4711","uuid":"1b4e28ba-2fa1-41d2-883f-'
    b'0016d3cca427"},{"to":"+254700000003","message":"Reminder","uuid":"c2d6a4b0-9e1f-4f5a-8d3c-'
    b'7b6e5a4f3e2d"}]}}'
)
E4_MESSAGES = [
    TaskMessage("+254700000002", "Your code is 4711", U1),
    TaskMessage("+254700000003", "Reminder", U2),
]

# NUL is read back as U+FFFD (no SMS has one and PostgreSQL text cannot store it).
texts = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
task_messages = st.lists(st.builds(TaskMessage, texts, texts, st.none() | texts), max_size=5)


def test_example_8_3_piggyback_reply_bytes() -> None:
    reply = build_inbound_reply([TaskMessage("+254700000001", "Thanks, received", U1)])
    assert reply == (
        b'{"payload":{"success":true,"error":null,"task":"send","messages":[{"to":"+254700000001",'
        b'"message":"Thanks, received","uuid":"1b4e28ba-2fa1-41d2-883f-0016d3cca427"}]}}'
    )


def test_inbound_reply_without_messages_is_plain_success() -> None:
    assert build_inbound_reply([]) == b'{"payload":{"success":true,"error":null}}'


def test_example_8_5_send_reply_bytes_and_parse() -> None:
    assert build_send_reply(E4_MESSAGES, "my secret") == E4_REPLY
    assert parse_send_reply(E4_REPLY, "my secret") == E4_MESSAGES


def test_send_reply_without_secret_echo_has_no_secret_but_has_messages() -> None:
    reply = json.loads(build_send_reply([], None))
    assert reply == {"payload": {"success": True, "error": None, "task": "send", "messages": []}}


def test_send_reply_never_carries_timestamps_and_omits_missing_uuid() -> None:
    reply = json.loads(build_send_reply([TaskMessage("+1", "x", None)], None))
    assert reply["payload"]["messages"] == [{"to": "+1", "message": "x"}]


def test_example_8_5_sent_request_and_reply() -> None:
    request = build_sent_request([U1, U2])
    assert request == f'{{"queued_messages":["{U1}","{U2}"]}}'.encode()
    assert parse_sent_request(request) == [U1, U2]
    reply = build_uuids_reply([U1])
    assert reply == b'{"message_uuids":["1b4e28ba-2fa1-41d2-883f-0016d3cca427"]}'
    assert parse_uuids_reply(reply) == [U1]


def test_parse_send_reply_checks_secret_exactly() -> None:
    with pytest.raises(ProtocolError):
        parse_send_reply(E4_REPLY, "My secret")
    with pytest.raises(ProtocolError):
        parse_send_reply(E4_REPLY.replace(b'"secret":"my secret",', b""), "my secret")
    # Without a configured secret the echo is not checked (ushahidi/SMSSync#498).
    assert parse_send_reply(E4_REPLY, None) == E4_MESSAGES
    assert parse_send_reply(E4_REPLY, "") == E4_MESSAGES


@pytest.mark.parametrize(
    "raw",
    [
        b'{"payload":{"success":true,"task":"SEND","messages":[]}}',
        b'{"payload":{"success":true,"messages":[]}}',
        b'{"success":true,"task":"send","messages":[]}',
        b"[]",
        b"",
        b"<html>",
    ],
)
def test_parse_send_reply_refuses_non_task_replies(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_send_reply(raw, None)


def test_parse_send_reply_is_lenient_about_entries() -> None:
    raw = (
        b'{"payload":{"task":"send","messages":[{"to":254700000002,"message":"a","uuid":7,'
        b'"timestamp":1487659000,"extra":[1]},{"to":"+1"},{"message":"b"},"junk",'
        b'{"to":"+2","message":"c"}]}}'
    )
    assert parse_send_reply(raw, None) == [
        TaskMessage("254700000002", "a", "7"),
        TaskMessage("+2", "c", None),
    ]
    assert parse_send_reply(b'{"payload":{"task":"send"}}', None) == []


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (b'{"payload":{"success":true,"error":null}}', True),
        (b'{"payload":{"success":"TRUE"}}', True),
        (b'{"payload":{"success":"true"}}', True),
        (b'{"payload":{"success":false}}', False),
        (b'{"payload":{"success":"1"}}', False),
        (b'{"payload":{"success":1}}', False),
        (b'{"payload":{"success":null}}', False),
        (b'{"payload":{}}', False),
        (b'{"success":true}', False),
    ],
)
def test_parse_piggyback_success_rules(raw: bytes, ok: bool) -> None:
    assert parse_piggyback(raw) == (ok, [])


@pytest.mark.parametrize("raw", [b"", b"ok", b"[true]", b'{"payload":{"success":true}} x'])
def test_parse_piggyback_unparseable(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_piggyback(raw)


def test_parse_piggyback_ignores_timestamp_trap_and_failed_replies() -> None:
    raw = (
        b'{"payload":{"success":true,"task":"send","messages":[{"to":"+1","message":"hi",'
        b'"uuid":"u","timestamp":1487659000}]}}'
    )
    assert parse_piggyback(raw) == (True, [TaskMessage("+1", "hi", "u")])
    failed = raw.replace(b'"success":true', b'"success":false')
    assert parse_piggyback(failed) == (False, [])


def test_sent_request_gson_escaping_and_nulls() -> None:
    assert build_sent_request(["a=b", "<'&>"]) == (
        b'{"queued_messages":["a\\u003db","\\u003c\\u0027\\u0026\\u003e"]}'
    )
    assert parse_sent_request(b'{"queued_messages":["a",null,"b"]}') == ["a", None, "b"]
    # A lone surrogate escape cannot be stored as UTF-8; it becomes U+FFFD like bad bytes (S-3).
    assert parse_sent_request(b'{"queued_messages":["x\\ud800",7]}') == ["x\ufffd", "7"]


@pytest.mark.parametrize(
    "raw", [b"", b'{"queued_messages":"a"}', b"{}", b'["a"]', b'{"payload":{"queued_messages":[]}}']
)
def test_parse_sent_request_refuses(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_sent_request(raw)


def test_parse_uuids_reply_nested_list_counts_as_empty() -> None:
    assert parse_uuids_reply(b'{"payload":{"message_uuids":["a"]}}') == []
    assert parse_uuids_reply(b'{"message_uuids":null}') == []
    assert parse_uuids_reply(b'{"message_uuids":["a",null,"b"],"success":false}') == ["a", "b"]
    with pytest.raises(ProtocolError):
        parse_uuids_reply(b"not json")


@given(messages=task_messages, secret=st.none() | texts)
def test_send_reply_round_trip(messages: list[TaskMessage], secret: str | None) -> None:
    assert parse_send_reply(build_send_reply(messages, secret), secret) == messages


@given(messages=task_messages.filter(bool))
def test_inbound_reply_round_trip(messages: list[TaskMessage]) -> None:
    assert parse_piggyback(build_inbound_reply(messages)) == (True, messages)


@given(st.lists(texts))
def test_sent_request_round_trip(ids: list[str]) -> None:
    body = build_sent_request(ids)
    assert not set(body.decode()) & set("<>&='")
    assert parse_sent_request(body) == ids


@given(st.lists(texts))
def test_uuids_reply_round_trip(ids: list[str]) -> None:
    assert parse_uuids_reply(build_uuids_reply(ids)) == ids


@given(st.binary(max_size=200) | st.binary(max_size=200).map(lambda b: b'{"payload":' + b))
def test_reply_parsers_only_raise_protocol_error(raw: bytes) -> None:
    for parse in (parse_piggyback, parse_uuids_reply, parse_sent_request):
        try:
            parse(raw)
        except ProtocolError:
            pass
    try:
        parse_send_reply(raw, "s")
    except ProtocolError:
        pass
