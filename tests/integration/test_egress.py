"""Webhooks and status callbacks reach no private address (issue 14, finding 4: SSRF)."""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smssync.egress import Egress, GuardedTransport
from smssync.records import Delivery
from smssync.server.dispatcher import attempt, delivery_client
from smssync.settings import Settings
from tests.integration.api_helpers import bearer

FORBIDDEN = [
    "http://127.0.0.1:5432/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://10.0.0.1/hook",
    "http://192.168.1.10/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://0x7f.1/hook",
    "http://017700000001/hook",  # octal
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://100.64.0.1/hook",
    "http://localhost:8080/hook",
    "http://api.localhost/hook",
]


@pytest.mark.parametrize("url", FORBIDDEN)
def test_a_forbidden_literal_host_is_refused_when_registered(url: str) -> None:
    reason = Egress().check_url(url)
    assert reason is not None and "SMSSYNC_WEBHOOK_ALLOW" in reason


def test_public_hosts_and_the_allow_list_pass() -> None:
    assert Egress().check_url("https://hooks.example.org/in") is None  # names: at delivery
    assert Egress().check_url("http://93.184.216.34/in") is None
    allow = Egress.parse("127.0.0.0/8, 10.1.0.0/16, hooks.internal")
    assert allow.check_url("http://2130706433/x") is None
    assert allow.check_url("http://10.1.2.3/x") is None
    assert allow.check_url("http://10.2.0.1/x") is not None
    assert allow.check_url("http://HOOKS.internal./x") is None
    with pytest.raises(ValueError, match="not a CIDR or host name"):
        Egress.parse("10.0.0.0/99")


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_address_in_any_form_is_judged_as_itself(number: int) -> None:
    address = ipaddress.IPv4Address(number)
    public = address.is_global and not address.is_multicast
    for host in (str(number), str(address), f"[::ffff:{address}]", hex(number)):
        assert (Egress().check_url(f"http://{host}/x") is None) == public, host


@contextlib.contextmanager
def listener() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP receiver on 127.0.0.1 that records each request's path."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.append(self.path)
            code = 302 if self.path == "/redirect" else 200
            self.send_response(code)
            self.send_header("location", "http://10.0.0.1/inside")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def delivery(url: str) -> Delivery:
    return Delivery(1, url, "s", "evt_1", "message.sent", "{}", 0, datetime.now(UTC))


async def test_delivery_to_loopback_fails_with_a_reason_unless_allowed() -> None:
    with listener() as (where, seen):
        for url in (f"http://{where}/a", f"http://localhost:{where.split(':')[1]}/b"):
            async with delivery_client(Settings()) as client:
                error = await attempt(client, delivery(url))
            assert error is not None and "loopback" in error, error
        assert seen == []  # nothing reached the listener
        allowed = Settings(webhook_allow="127.0.0.1")
        async with delivery_client(allowed) as client:
            assert await attempt(client, delivery(f"http://{where}/c")) is None
            # A redirect is not followed, so it cannot lead inside.
            assert await attempt(client, delivery(f"http://{where}/redirect")) == "HTTP 302"
        assert seen == ["/c", "/redirect"]


async def test_each_attempt_resolves_again_and_connects_to_the_address_checked() -> None:
    """DNS rebinding: a name that was public and now points inside is refused."""
    answers = [["93.184.216.34"], ["127.0.0.1"], ["10.0.0.1", "93.184.216.35"]]
    sent: list[tuple[str, str]] = []

    async def lookup(host: str, port: int) -> list[str]:
        return answers.pop(0)

    def receiver(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.host, request.headers["host"]))
        return httpx.Response(204)

    transport = GuardedTransport(Egress(), httpx.MockTransport(receiver), lookup)
    async with httpx.AsyncClient(transport=transport) as client:
        assert await attempt(client, delivery("http://hooks.example.org/in")) is None
        error = await attempt(client, delivery("http://hooks.example.org/in"))
        assert error is not None and "loopback" in error
        assert await attempt(client, delivery("http://hooks.example.org/in")) is None
    assert sent == [
        ("93.184.216.34", "hooks.example.org"),
        ("93.184.216.35", "hooks.example.org"),  # the allowed one of two
    ]


async def test_the_api_refuses_private_webhook_and_callback_urls(
    api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    hook = await api_client.post(
        "/api/v1/webhooks", json={"url": "http://169.254.169.254/"}, headers=bearer(keys["admin"])
    )
    assert hook.status_code == 400, hook.text
    assert hook.json()["errors"][0]["field"] == "url"
    assert "link-local" in hook.json()["error"]
    send = await api_client.post(
        "/api/v1/messages",
        json={"to": "+254700000001", "body": "x", "status_callback": "http://[::1]:5432/"},
        headers=bearer(keys["send"]),
    )
    assert send.status_code == 400, send.text
    assert send.json()["errors"][0]["field"] == "status_callback"
