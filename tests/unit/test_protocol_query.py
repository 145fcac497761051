"""Query parsing (S-2), task URLs (G-4, §8.6) and Basic auth from userinfo (§8.9)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smssync.errors import ProtocolError
from smssync.protocol.query import (
    URLENCODER_SAFE,
    parse_basic_auth,
    parse_query,
    percent_encode,
    split_userinfo,
    task_url,
)


def after_first_question_mark(url: str) -> str:
    return url.partition("?")[2]


def test_s2_example_extra_question_mark_and_plus() -> None:
    assert parse_query("key=1?task=send&secret=a+b") == {
        "key": "1",
        "task": "send",
        "secret": "a b",
    }


def test_example_8_6_app_double_question_mark() -> None:
    query = parse_query("key=1?task=send&secret=my+secret")
    assert query == {"key": "1", "task": "send", "secret": "my secret"}


def test_example_8_6_gateway_task_url() -> None:
    url = task_url("https://sms.example.org/hook?key=1", "send", "my secret")
    assert url == "https://sms.example.org/hook?key=1&task=send&secret=my+secret"
    assert task_url("https://h/hook?key=1", "send", "my secret") == (
        "https://h/hook?key=1&task=send&secret=my+secret"
    )


def test_stale_parameters_lose_to_the_first_occurrence() -> None:
    raw = (
        "task=result&secret=s?secret=other&from=%2B000000000000"
        "&message=Test+Message+From+SMSSync+Integration"
    )
    query = parse_query(raw)
    assert query["task"] == "result"
    assert query["secret"] == "s"
    assert query["from"] == "+000000000000"
    assert query["message"] == "Test Message From SMSSync Integration"


def test_blank_values_are_kept_and_percent20_is_space() -> None:
    assert parse_query("secret=&a&b=x%20y&&c=%2B") == {"secret": "", "a": "", "b": "x y", "c": "+"}


def test_invalid_percent_utf8_becomes_replacement_character() -> None:
    assert parse_query("secret=%FFa") == {"secret": "\ufffda"}


def test_task_url_without_query_uses_question_mark() -> None:
    assert task_url("https://h/sms", "result", "s") == "https://h/sms?task=result&secret=s"


def test_task_url_omits_empty_or_missing_secret() -> None:
    assert task_url("https://h/sms", "send", "") == "https://h/sms?task=send"
    assert task_url("https://h/sms", "send", None) == "https://h/sms?task=send"


def test_task_url_urlencoder_style() -> None:
    url = task_url("http://h/", "sent", "a+b ~*-._/é")
    assert url == "http://h/?task=sent&secret=a%2Bb+%7E*-._%2F%C3%A9"


def test_task_url_removes_userinfo_and_none_task_adds_nothing() -> None:
    assert task_url("https://u:p@h:8443/sms?k=1", None, "secret") == "https://h:8443/sms?k=1"
    assert task_url("https://u:p@h/sms", "send", "s") == "https://h/sms?task=send&secret=s"


def test_task_url_after_trailing_question_mark() -> None:
    assert task_url("https://h/sms?", "send", None) == "https://h/sms?task=send"


def test_example_8_9_split_userinfo() -> None:
    url, header = split_userinfo("https://phone7:pa%3Ass@sms.example.org/smssync")
    assert url == "https://sms.example.org/smssync"
    assert header == "Basic cGhvbmU3OnBhOnNz"
    assert parse_basic_auth(header) == ("phone7", "pa:ss")


def test_split_userinfo_without_userinfo() -> None:
    assert split_userinfo("https://h/x?y=1") == ("https://h/x?y=1", None)


def test_userinfo_plus_is_literal() -> None:
    _, header = split_userinfo("https://a+b:c%20d@h/")
    assert header is not None
    assert parse_basic_auth(header) == ("a+b", "c d")


def test_parse_basic_auth_cases() -> None:
    assert parse_basic_auth(None) is None
    assert parse_basic_auth("Bearer abc") is None
    assert parse_basic_auth("basic cGhvbmU3OnBhOnNz") == ("phone7", "pa:ss")
    assert parse_basic_auth("Basic " + base64.b64encode(b"u:").decode()) == ("u", "")
    with pytest.raises(ProtocolError):
        parse_basic_auth("Basic !!!notbase64")
    with pytest.raises(ProtocolError):
        parse_basic_auth("Basic " + base64.b64encode(b"nocolon").decode())


@given(
    base=st.sampled_from(["https://h.example/sms", "https://h.example/hook?key=1", "http://h/"]),
    task=st.sampled_from(["send", "sent", "result"]),
    secret=st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
)
def test_task_url_round_trips_through_parse_query(base: str, task: str, secret: str) -> None:
    query = parse_query(after_first_question_mark(task_url(base, task, secret)))
    assert query["task"] == task
    if secret:
        assert query["secret"] == secret
    else:
        assert "secret" not in query
    if "key=1" in base:
        assert query["key"] == "1"


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")))
def test_urlencoder_output_is_ascii_and_decodes(text: str) -> None:
    encoded = percent_encode(text, URLENCODER_SAFE, space_as_plus=True)
    assert encoded.isascii()
    assert " " not in encoded and "~" not in encoded and "?" not in encoded
    assert parse_query("x=" + encoded) == {"x": text}


# A colon cannot be part of a Basic user-id (RFC 7617): the server splits at the first one.
@given(
    user=st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=":\x00")),
    password=st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
)
def test_userinfo_round_trips_to_basic_header(user: str, password: str) -> None:
    userinfo = (
        f"{percent_encode(user, URLENCODER_SAFE)}:{percent_encode(password, URLENCODER_SAFE)}"
    )
    _, header = split_userinfo(f"https://{userinfo}@h/x")
    assert header is not None
    assert parse_basic_auth(header) == (user, password)


# Text built from what form bodies hold: plain characters, escapes (valid, broken, any case),
# plus signs and backslashes, which the fast decoder must treat as urllib does. A raw "&"
# separates fields, so one value never holds it.
_FORM_PIECES = st.one_of(
    st.text(st.characters(blacklist_characters="&"), max_size=4),
    st.sampled_from(["%", "+", "\\", "\\x", "%2", "%zz", "%5C", "%25", "%2B", "%u0041"]),
    st.integers(0, 255).map(lambda b: f"%{b:02X}"),
    st.integers(0, 255).map(lambda b: f"%{b:02x}"),
)


@given(st.lists(_FORM_PIECES, max_size=12).map("".join), st.sampled_from(["utf-8", "latin-1"]))
def test_form_decoding_matches_urllib(text: str, encoding: str) -> None:
    from urllib.parse import unquote_plus

    from smssync.protocol.query import form_decode

    assert form_decode(f"k={text}", encoding)["k"] == unquote_plus(text, encoding, "replace")


def _form_decode_by_piece(text: str, encoding: str) -> dict[str, str]:
    """The plain reading of S-2: split on "&", then "=", then decode each piece."""
    from urllib.parse import unquote_plus

    fields: dict[str, str] = {}
    for part in text.split("&"):
        if part:
            key, _, value = part.partition("=")
            fields.setdefault(
                unquote_plus(key, encoding, "replace"), unquote_plus(value, encoding, "replace")
            )
    return fields


# Whole bodies: pieces as above, raw and escaped separators, and broken UTF-8 next to them.
_BODY_PIECES = st.one_of(
    _FORM_PIECES,
    st.sampled_from(["&", "=", "%26", "%3D", "%3d", "%E2", "%E2%82", "%F0%9F", "k", "key="]),
)


@given(st.lists(_BODY_PIECES, max_size=20).map("".join), st.sampled_from(["utf-8", "latin-1"]))
def test_form_bodies_decode_as_piece_by_piece(text: str, encoding: str) -> None:
    from smssync.protocol.query import form_decode

    assert form_decode(text, encoding) == _form_decode_by_piece(text, encoding)
