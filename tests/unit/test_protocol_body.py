"""Body detection and decoding (S-3, S-4) and the App's encoders (G-1)."""

from __future__ import annotations

import encodings
import encodings.aliases
import json
import pkgutil

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smssync.errors import ProtocolError
from smssync.protocol.body import (
    decode_text,
    detect_format,
    dump_gson,
    form_encode,
    json_encode_app,
    parse_fields,
    xml_encode_app,
)
from smssync.records import BodyFormat

E1_FORM = (
    b"secret=my%20secret&from=%2B254700000001&message=Hello%20world&sent_timestamp=1487658999000"
    b"&sent_to=&message_id=6f9619ff-8b86-4d01-b42d-00cf4fc964ff&device_id=phone1"
)
E1_JSON = (
    b'{"secret":"my secret","from":"+254700000001","message":"see http:\\/\\/x.org",'
    b'"sent_timestamp":"1487658999000","sent_to":"","message_id":"c9bf9e57-1685-4c89-bafb-'
    b'ff5af830be8a","device_id":"phone1"}'
)
E1_XML = (
    b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><payload><secret>my secret</secret>"
    b"<from>+254700000001</from><message>Hi</message><sent_timestamp>1487658999000</sent_timestamp>"
    b"<sent_to></sent_to><message_id>0d3f5a2e-7c41-4e0b-9a57-3b2c1d4e5f60</message_id>"
    b"<device_id>phone1</device_id></payload>"
)

# XML 1.0 cannot carry these characters at all, so round trips only use the others.
no_nul = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
xml_chars = st.characters(exclude_categories=["Cs"]).filter(
    lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")
)
pairs_keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


def unique_pairs(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.tuples(pairs_keys, values), unique_by=lambda p: p[0], max_size=8)


def test_example_8_1_form_fields() -> None:
    assert parse_fields(E1_FORM, "application/x-www-form-urlencoded") == {
        "secret": "my secret",
        "from": "+254700000001",
        "message": "Hello world",
        "sent_timestamp": "1487658999000",
        "sent_to": "",
        "message_id": "6f9619ff-8b86-4d01-b42d-00cf4fc964ff",
        "device_id": "phone1",
    }


def test_example_8_2_json_fields() -> None:
    fields = parse_fields(E1_JSON, "application/json; charset=UTF-8")
    assert fields["message"] == "see http://x.org"
    assert fields["sent_to"] == ""
    assert fields["sent_timestamp"] == "1487658999000"
    assert fields["message_id"] == "c9bf9e57-1685-4c89-bafb-ff5af830be8a"


def test_example_8_2_xml_labelled_as_json() -> None:
    assert parse_fields(E1_XML, "application/json; charset=UTF-8") == {
        "secret": "my secret",
        "from": "+254700000001",
        "message": "Hi",
        "sent_timestamp": "1487658999000",
        "sent_to": "",
        "message_id": "0d3f5a2e-7c41-4e0b-9a57-3b2c1d4e5f60",
        "device_id": "phone1",
    }


@pytest.mark.parametrize(
    ("raw", "fmt"),
    [
        (b'  \r\n{"a":1}', BodyFormat.JSON),
        (b"\xef\xbb\xbf<p/>", BodyFormat.XML),
        (b"\t<p/>", BodyFormat.XML),
        (b"a=1", BodyFormat.FORM),
        (b"", BodyFormat.FORM),
        (b"[1]", BodyFormat.FORM),
    ],
)
def test_detect_format_by_first_non_blank_byte(raw: bytes, fmt: BodyFormat) -> None:
    assert detect_format(raw) is fmt


def test_label_does_not_choose_the_format() -> None:
    assert parse_fields(b"a=1", "application/json") == {"a": "1"}
    assert parse_fields(b'{"a":"1"}', "application/x-www-form-urlencoded") == {"a": "1"}
    assert parse_fields(b"<p><a>1</a></p>", "text/plain") == {"a": "1"}


def test_decode_text_charset_and_replacement() -> None:
    assert decode_text(b"caf\xe9", "text/plain; charset=ISO-8859-1") == "café"
    assert decode_text(b"caf\xe9", None) == "caf\ufffd"
    assert decode_text(b"\xff\xfea\x00", "text/plain; charset=UTF-16") == "a"


@pytest.mark.parametrize(
    "charset", ["rot13", "base64", "no-such", "utf-7", "UTF7", "unicode_escape", "idna", "punycode"]
)
def test_charsets_that_are_no_text_encoding_are_refused(charset: str) -> None:
    # utf-7 and unicode_escape decode "+2AA-" and "\\ud800" to lone surrogates, which no
    # database can store; the others are byte transforms or not codecs at all.
    with pytest.raises(ProtocolError, match="unsupported charset"):
        parse_fields(b"from=a&message=+2AA-", f"text/plain; charset={charset}")


def test_invalid_utf8_becomes_replacement_in_every_format() -> None:
    assert parse_fields(b"message=a\xffb", None) == {"message": "a\ufffdb"}
    assert parse_fields(b'{"message":"a\xffb"}', None) == {"message": "a\ufffdb"}
    assert parse_fields(b"<p><message>a\xffb</message></p>", None) == {"message": "a\ufffdb"}


def test_byte_order_mark_is_ignored_in_every_format() -> None:
    for raw in (b"a=1", b'{"a":"1"}', b"<p><a>1</a></p>"):
        assert parse_fields(b"\xef\xbb\xbf" + raw, None) == {"a": "1"}


def test_empty_body_is_no_fields() -> None:
    assert parse_fields(b"", None) == {}
    assert parse_fields(b" \r\n", None) == {}


def test_form_plus_and_percent20_are_spaces_and_first_key_wins() -> None:
    assert parse_fields(b"m=a+b%20c%2Bd&m=second&e=", None) == {"m": "a b c+d", "e": ""}


def test_form_trailing_newline_is_not_part_of_value() -> None:
    assert parse_fields(b"from=x&message=hi\r\n", None) == {"from": "x", "message": "hi"}


def test_json_values_numbers_booleans_null_and_escapes() -> None:
    raw = b'{"a":12.50,"b":-1,"c":true,"d":false,"e":null,"f":"\\u00e9\\/","a":"dup"}'
    assert parse_fields(raw, None) == {
        "a": "12.50",
        "b": "-1",
        "c": "true",
        "d": "false",
        "f": "é/",
    }


def test_json_big_number_keeps_text() -> None:
    digits = "9" * 5000
    assert parse_fields(f'{{"n":{digits}}}'.encode(), None) == {"n": digits}


def test_json_nested_values_keep_their_json_text() -> None:
    fields = parse_fields(b'{"a":[1],"b":{"c":"d"},"e":"f"}', None)
    # Numbers inside are read as their JSON text, so they come back quoted.
    assert fields == {"a": '["1"]', "b": '{"c":"d"}', "e": "f"}


def test_nul_becomes_replacement_character() -> None:
    # PostgreSQL text cannot hold NUL; no SMS carries one.
    assert parse_fields(b"a=x%00y", None) == {"a": "x\ufffdy"}
    assert parse_fields(b'{"a":"x\\u0000y"}', None) == {"a": "x\ufffdy"}


@pytest.mark.parametrize(
    "raw", [b"{", b'{"a":"b"} x', b'{"a":NaN}', b"{" * 100_000, b'{"a":"b"}{"c":"d"}']
)
def test_bad_json_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_fields(raw, None)


def test_json_lone_surrogate_escape_becomes_replacement() -> None:
    assert parse_fields(b'{"a":"x\\ud800y"}', None) == {"a": "x\ufffdy"}


def test_xml_empty_elements_first_wins_and_nested_text() -> None:
    raw = b"<p><a/><b>1</b><b>2</b><c>x<i>y</i>z</c><d><![CDATA[<&>]]></d></p>"
    assert parse_fields(raw, None) == {"a": "", "b": "1", "c": "xyz", "d": "<&>"}


def test_xml_declared_encoding_does_not_override_decoding() -> None:
    raw = "<?xml version='1.0' encoding='ISO-8859-1'?><p><m>é</m></p>".encode()
    assert parse_fields(raw, None) == {"m": "é"}


@pytest.mark.parametrize(
    "raw",
    [
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
        b"<p><m>&b;</m></p>",
        b'<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><p><m>&x;</m></p>',
        b'<!DOCTYPE p SYSTEM "http://evil.example/x.dtd"><p><m>1</m></p>',
        b"<p><m>&undefined;</m></p>",
        b"<p><m>1</m>",
        b"<p/><q/>",
        b"<p><m>\x01</m></p>",
    ],
)
def test_bad_or_dangerous_xml_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_fields(raw, None)


def test_form_encode_okhttp_byte_set() -> None:
    body = form_encode([("message", "a b+c~*-._/é"), ("sent_to", "")])
    assert body == b"message=a%20b%2Bc%7E*-._%2F%C3%A9&sent_to="


def test_json_encode_app_escapes_every_slash() -> None:
    body = json_encode_app([("message", 'see http://x.org "q" \\ \n\x01')])
    assert body == b'{"message":"see http:\\/\\/x.org \\"q\\" \\\\ \\n\\u0001"}'


def test_xml_encode_app_matches_the_app() -> None:
    assert xml_encode_app([("message", "a<b&c>\r"), ("sent_to", "")]) == (
        b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><payload>"
        b"<message>a&lt;b&amp;c&gt;&#13;</message><sent_to></sent_to></payload>"
    )


def test_dump_gson_escapes_html_characters() -> None:
    body = dump_gson({"queued_messages": ["<a href='x'>&=", "\u2028"]})
    assert body == (
        b'{"queued_messages":["\\u003ca href\\u003d\\u0027x\\u0027\\u003e\\u0026\\u003d",'
        b'"\\u2028"]}'
    )
    assert json.loads(body) == {"queued_messages": ["<a href='x'>&=", "\u2028"]}


@given(unique_pairs(st.text(alphabet=no_nul)))
def test_form_round_trip(pairs: list[tuple[str, str]]) -> None:
    body = form_encode(pairs)
    assert b" " not in body and b"+" not in body and b"~" not in body
    assert parse_fields(body, "application/x-www-form-urlencoded") == dict(pairs)


@given(unique_pairs(st.text(alphabet=no_nul)))
def test_json_round_trip(pairs: list[tuple[str, str]]) -> None:
    assert parse_fields(json_encode_app(pairs), None) == dict(pairs)


@given(unique_pairs(st.text(alphabet=xml_chars)))
def test_xml_round_trip(pairs: list[tuple[str, str]]) -> None:
    assert parse_fields(xml_encode_app(pairs), None) == dict(pairs)


def test_xml_encoder_replaces_characters_xml_cannot_carry() -> None:
    assert parse_fields(xml_encode_app([("m", "a\x00b\ufffe")]), None) == {"m": "a\ufffdb\ufffd"}


bodies = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"{" + b),
    st.binary(max_size=300).map(lambda b: b"<" + b),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(), st.text() | st.integers() | st.none()).map(
        lambda d: json.dumps(d).encode()
    ),
    st.dictionaries(pairs_keys, st.text()).map(lambda d: xml_encode_app(list(d.items()))),
)


#: Every codec name and alias Python knows, and made-up labels.
CHARSETS = sorted(
    set(encodings.aliases.aliases)
    | set(encodings.aliases.aliases.values())
    | {m.name for m in pkgutil.iter_modules(encodings.__path__)}
)
CONTENT_TYPES = (
    st.none()
    | st.just("application/json")
    | (st.sampled_from(CHARSETS) | st.text(alphabet=st.characters(codec="ascii"), max_size=12)).map(
        lambda label: f"x; charset={label}"
    )
)


@given(raw=bodies | st.binary(max_size=200), content_type=CONTENT_TYPES)
@example(raw=b"message=+2AA-", content_type="x; charset=utf-7")
@example(raw=b'{"message":"a"}', content_type="x; charset=raw_unicode_escape")
@example(raw=b"message=a", content_type="x; charset=a\x00")
def test_parse_fields_returns_string_fields_or_protocol_error(
    raw: bytes, content_type: str | None
) -> None:
    try:
        fields = parse_fields(raw, content_type)
    except ProtocolError as exc:
        assert exc.message and len(exc.message) < 80
        return
    assert isinstance(fields, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    # Every value must be storable as UTF-8 (no lone surrogates) and in PostgreSQL (no NUL).
    for key, value in fields.items():
        (key + value).encode("utf-8")
        assert "\x00" not in key + value
