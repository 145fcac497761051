"""E1, E3 and E8 bodies: classification on the server, building on the gateway."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smssync.errors import ProtocolError
from smssync.protocol.body import parse_fields
from smssync.protocol.inbound import (
    TEST_FROM,
    TEST_MESSAGE,
    Alert,
    InboundPost,
    classify_post,
    content_type_for,
    encode_alert,
    encode_incoming,
    encode_test,
    secret_of,
)

# Aliased: pytest would try to collect a class named Test*.
from smssync.protocol.inbound import TestIntegration as E3Test
from smssync.records import BodyFormat, InboundMessage, KeyMap

xml_chars = st.characters(exclude_categories=["Cs"]).filter(
    lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")
)
FORMATS = list(BodyFormat)


def texts(fmt: BodyFormat) -> st.SearchStrategy[str]:
    no_nul = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    base = st.text(alphabet=xml_chars if fmt is BodyFormat.XML else no_nul)
    # Must include the characters every encoding treats specially.
    specials = st.text(alphabet="/+~ %&=<>?#\"'\\é😀", max_size=12)
    return st.one_of(base, specials, st.just(""))


@st.composite
def inbound(draw: st.DrawFn, fmt: BodyFormat) -> tuple[InboundMessage, str]:
    text = texts(fmt)
    sms = InboundMessage(
        from_addr=draw(text),
        content=draw(text),
        sent_timestamp=draw(text),
        sent_to=draw(text),
        message_id=draw(text),
        device_id=draw(text),
    )
    return sms, draw(text)


key_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
custom_keys = st.lists(key_names, min_size=7, max_size=7, unique=True).map(lambda k: KeyMap(*k))


def is_test_shape(sms: InboundMessage) -> bool:
    return sms.from_addr == TEST_FROM and sms.content == TEST_MESSAGE and not sms.message_id


def expected(sms: InboundMessage, secret: str) -> InboundPost:
    return InboundPost(
        secret=secret,
        from_addr=sms.from_addr,
        content=sms.content,
        sent_timestamp=sms.sent_timestamp,
        sent_to=sms.sent_to,
        message_id=sms.message_id,
        device_id=sms.device_id,
    )


def test_example_8_1_form_is_an_sms_with_empty_sent_to() -> None:
    raw = (
        b"secret=my%20secret&from=%2B254700000001&message=Hello%20world&sent_timestamp="
        b"1487658999000&sent_to=&message_id=6f9619ff-8b86-4d01-b42d-00cf4fc964ff&device_id=phone1"
    )
    assert classify_post(parse_fields(raw, None)) == InboundPost(
        secret="my secret",
        from_addr="+254700000001",
        content="Hello world",
        sent_timestamp="1487658999000",
        sent_to="",
        message_id="6f9619ff-8b86-4d01-b42d-00cf4fc964ff",
        device_id="phone1",
    )


def test_example_8_1_gateway_builds_the_same_bytes() -> None:
    sms = InboundMessage(
        "+254700000001",
        "Hello world",
        "1487658999000",
        "",
        "6f9619ff-8b86-4d01-b42d-00cf4fc964ff",
        "phone1",
    )
    assert encode_incoming(sms, "my secret") == (
        b"secret=my%20secret&from=%2B254700000001&message=Hello%20world&sent_timestamp="
        b"1487658999000&sent_to=&message_id=6f9619ff-8b86-4d01-b42d-00cf4fc964ff&device_id=phone1"
    )


def test_example_8_2_json_body_built_like_the_app() -> None:
    sms = InboundMessage(
        "+254700000001",
        "see http://x.org",
        "1487658999000",
        "",
        "c9bf9e57-1685-4c89-bafb-ff5af830be8a",
        "phone1",
    )
    assert encode_incoming(sms, "my secret", BodyFormat.JSON) == (
        b'{"secret":"my secret","from":"+254700000001","message":"see http:\\/\\/x.org",'
        b'"sent_timestamp":"1487658999000","sent_to":"","message_id":'
        b'"c9bf9e57-1685-4c89-bafb-ff5af830be8a","device_id":"phone1"}'
    )


def test_example_8_2_xml_body_built_like_the_app() -> None:
    sms = InboundMessage(
        "+254700000001", "Hi", "1487658999000", "", "0d3f5a2e-7c41-4e0b-9a57-3b2c1d4e5f60", "phone1"
    )
    assert encode_incoming(sms, "my secret", BodyFormat.XML) == (
        b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><payload><secret>my secret"
        b"</secret><from>+254700000001</from><message>Hi</message><sent_timestamp>1487658999000"
        b"</sent_timestamp><sent_to></sent_to><message_id>0d3f5a2e-7c41-4e0b-9a57-3b2c1d4e5f60"
        b"</message_id><device_id>phone1</device_id></payload>"
    )


def test_example_8_4_test_integration() -> None:
    raw = (
        b"secret=my%20secret&from=%2B000000000000"
        b"&message=Test%20Message%20From%20SMSSync%20Integration"
    )
    assert classify_post(parse_fields(raw, None)) == E3Test(secret="my secret")
    assert encode_test("my secret") == raw


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_test_classifies_as_test_with_custom_keys(fmt: BodyFormat) -> None:
    keys = KeyMap(secret="key", from_addr="sender", content="text")
    fields = parse_fields(encode_test("s", fmt, keys), content_type_for(fmt))
    assert classify_post(fields, keys) == E3Test(secret="s")
    assert secret_of(fields, keys) == "s"


def test_test_text_with_a_message_id_is_an_sms() -> None:
    fields = {"from": TEST_FROM, "message": TEST_MESSAGE, "message_id": "m1"}
    assert isinstance(classify_post(fields), InboundPost)


def test_example_8_8_alert() -> None:
    raw = b"Task=alert&message=Battery%20level%20is%20at%2014"
    assert encode_alert("Battery level is at 14", None) == raw
    assert classify_post(parse_fields(raw, None)) == Alert(
        secret=None, message="Battery level is at 14", error_code=None, battery_percent=14
    )


def test_v2_alert_with_plus_error_code_and_secret() -> None:
    raw = b"Task=ALERT&message=Battery+level+is+at+15&errorCode=3&secret=s"
    assert classify_post(parse_fields(raw, None)) == Alert(
        secret="s", message="Battery level is at 15", error_code="3", battery_percent=15
    )
    assert encode_alert("x", "s", "3") == b"Task=alert&message=x&errorCode=3&secret=s"
    assert encode_alert("x", "") == b"Task=alert&message=x"


def test_alert_without_battery_text_and_json_alert() -> None:
    alert = classify_post(parse_fields(b'{"Task":"alert","message":"SMS failed"}', None))
    assert alert == Alert(secret=None, message="SMS failed", error_code=None, battery_percent=None)


def test_lowercase_task_body_field_is_not_an_alert() -> None:
    with pytest.raises(ProtocolError):
        classify_post({"task": "alert"})


@pytest.mark.parametrize(
    "raw", [b"", b'{"message_result":"[]"}', b"secret=s&sent_to=x", b"<payload/>"]
)
def test_neither_sms_nor_test_nor_alert_is_refused(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        classify_post(parse_fields(raw, None))
    assert info.value.fields == ["from", "message"]
    assert len(info.value.message) < 60


def test_sms_with_only_an_empty_message_is_accepted() -> None:
    assert classify_post({"message": ""}) == InboundPost(None, None, "", None, None, None, None)
    assert classify_post({"from": "M-PESA"}).from_addr == "M-PESA"  # type: ignore[union-attr]


def test_content_types() -> None:
    assert content_type_for(BodyFormat.FORM) == "application/x-www-form-urlencoded"
    assert content_type_for(BodyFormat.JSON) == "application/json; charset=UTF-8"
    assert content_type_for(BodyFormat.XML) == "application/xml; charset=UTF-8"
    assert content_type_for(BodyFormat.XML, app_xml_label=True) == "application/json; charset=UTF-8"


@pytest.mark.parametrize("fmt", FORMATS)
@given(data=st.data())
def test_encode_then_classify_round_trips(fmt: BodyFormat, data: st.DataObject) -> None:
    sms, secret = data.draw(inbound(fmt))
    fields = parse_fields(encode_incoming(sms, secret, fmt), content_type_for(fmt))
    result = classify_post(fields)
    if is_test_shape(sms):
        assert result == E3Test(secret=secret)
    else:
        assert result == expected(sms, secret)


@pytest.mark.parametrize("fmt", FORMATS)
@given(data=st.data())
def test_encode_then_classify_round_trips_with_custom_keys(
    fmt: BodyFormat, data: st.DataObject
) -> None:
    sms, secret = data.draw(inbound(fmt))
    keys = data.draw(custom_keys)
    fields = parse_fields(encode_incoming(sms, secret, fmt, keys), content_type_for(fmt))
    assert list(fields) == list(keys.wire_keys())
    assert secret_of(fields, keys) == secret
    if not is_test_shape(sms):
        assert classify_post(fields, keys) == expected(sms, secret)
