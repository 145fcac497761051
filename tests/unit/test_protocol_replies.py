"""The reply envelope (S-16, S-20)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from smssync.protocol import replies


def test_success_exact_bytes() -> None:
    assert replies.success() == b'{"payload":{"success":true,"error":null}}'


def test_failure_exact_bytes() -> None:
    assert replies.failure("unauthorized") == (
        b'{"payload":{"success":false,"error":"unauthorized"}}'
    )


def test_content_type() -> None:
    assert replies.CONTENT_TYPE == "application/json; charset=utf-8"


@given(st.text())
def test_failure_is_one_utf8_object_without_bom(error: str) -> None:
    body = replies.failure(error)
    assert not body.startswith(b"\xef\xbb\xbf")
    assert body.endswith(b"}}")
    decoded = json.loads(body.decode("utf-8"))
    assert decoded == {"payload": {"success": False, "error": error}}
    assert decoded["payload"]["success"] is False


def test_failure_with_lone_surrogate_stays_valid_utf8() -> None:
    body = replies.failure("bad \ud800")
    assert json.loads(body.decode("utf-8"))["payload"]["error"] == "bad \ud800"
