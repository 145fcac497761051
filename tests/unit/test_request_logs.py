"""Request ids, endpoint kinds and the two log formats, as pure functions."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from smssync.server.dispatcher import shown_url
from smssync.server.logs import REQUEST_ID, TEXT_FORMAT, JsonFormatter, RequestIdFilter
from smssync.server.observe import Observe, request_id, sync_kind
from smssync.settings import Settings


def scope_with(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"headers": [(b"host", b"sms"), *headers]}


@pytest.mark.parametrize(
    "given",
    [b"abc-123", b"5f0c3a2e-9d1b-4c7e-8f00-1234567890ab", b"Root=1-67891233-abcdef/x:y.z_+@", b"a"],
)
def test_a_sane_request_id_is_kept(given: bytes) -> None:
    assert request_id(scope_with((b"x-request-id", given))) == given.decode()


@pytest.mark.parametrize(
    "given", [b"", b"a" * 129, b"has space", b"new\nline", b'quote"', b"caf\xc3\xa9", b"<script>"]
)
def test_an_insane_request_id_is_replaced(given: bytes) -> None:
    made = request_id(scope_with((b"x-request-id", given)))
    assert made != given.decode("latin-1")
    assert made.split("-")[0] == request_id(scope_with()).split("-")[0]  # one of ours


def test_made_ids_are_unique_and_safe() -> None:
    made = {request_id(scope_with()) for _ in range(1000)}
    assert len(made) == 1000
    assert all(request_id(scope_with((b"x-request-id", m.encode()))) == m for m in made)


@pytest.mark.parametrize(
    ("method", "query", "kind"),
    [
        ("POST", b"", "sync_upload"),
        ("PUT", b"", "sync_upload"),
        ("GET", b"", "sync_probe"),
        ("GET", b"task=send&secret=s", "sync_send"),
        ("GET", b"secret=s&task=result", "sync_result"),
        ("POST", b"task=sent", "sync_sent"),
        ("POST", b"task=result", "sync_result"),
        ("GET", b"a=1?task=send", "sync_send"),  # the App's second "?" (S-2)
        ("GET", b"task=nonsense", "sync_other"),
        ("POST", b"secret=s", "sync_upload"),
    ],
)
def test_sync_kinds_follow_the_task(method: str, query: bytes, kind: str) -> None:
    assert sync_kind(method, query) == kind


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/smssync", "sync_probe"),
        ("/smssync/d/token", "sync_probe"),
        ("/smssyncx", "other"),
        ("/api/v1/messages", "api"),
        ("/api/v1", "api"),
        ("/healthz", "health"),
        ("/readyz", "health"),
        ("/metrics", "metrics"),
        ("/dashboard", "dashboard"),
        ("/dashboard/devices", "dashboard"),
        ("/favicon.ico", "other"),
    ],
)
def test_endpoint_kinds_have_bounded_values(path: str, kind: str) -> None:
    observe = Observe(lambda *a: None, Settings())  # type: ignore[arg-type]
    assert observe.kind({"path": path, "method": "GET", "query_string": b""}) == kind


def record(message: str, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    made = logging.LogRecord("smssync.server", logging.WARNING, __file__, 1, message, (), info)
    RequestIdFilter().filter(made)
    return made


def test_text_lines_name_the_request_only_inside_one() -> None:
    formatter = logging.Formatter(TEXT_FORMAT)
    outside = formatter.format(record("quiet"))
    assert outside.endswith(" WARNING smssync.server: quiet")
    token = REQUEST_ID.set("req-7")
    try:
        inside = formatter.format(record("busy"))
    finally:
        REQUEST_ID.reset(token)
    assert inside.endswith(" WARNING smssync.server [req-7]: busy")


def test_json_lines_are_one_object_each_with_the_exception() -> None:
    token = REQUEST_ID.set("req-8")
    try:
        line = JsonFormatter().format(record("two\nlines", exc=True))
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "smssync.server"
    assert entry["message"] == "two\nlines" and entry["request_id"] == "req-8"
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert "ValueError: boom" in entry["exception"]
    assert json.loads(JsonFormatter().format(record("x")))["request_id"] is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.org/in", "https://hooks.example.org/in"),
        ("https://hooks.example.org/in?token=s3cr3t", "https://hooks.example.org/in?***"),
        ("https://user:s3cr3t@hooks.example.org:8443/in#x", "https://hooks.example.org:8443/in"),
        ("http://[::1]:9000/p?k=s3cr3t", "http://[::1]:9000/p?***"),
    ],
)
def test_a_webhook_url_is_logged_without_its_credentials(url: str, shown: str) -> None:
    assert shown_url(url) == shown
