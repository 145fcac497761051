"""Behind a reverse proxy: X-Forwarded-For is believed from the configured proxies only.

What the server does with the client's address that a test can see from outside is the
brake on failed authentications (throttle.py): with a burst of one, a second wrong API key
from the same address is answered 429, from another address 401.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.serverproc import Server

_keys = itertools.count()


def wrong_key_from(server: Server, forwarded_for: str) -> int:
    """Present a made-up API key (another target each time) as if sent for a client."""
    # Each key differs in the characters listings show, so that only the address's bucket
    # is shared between requests, never a target's.
    key = f"{next(_keys):012d}-not-a-key"
    reply = httpx.get(
        server.base + "/api/v1/messages",
        headers={"authorization": f"Bearer {key}", "x-forwarded-for": forwarded_for},
    )
    return reply.status_code


def braked(tmp: Path, allow: str | None) -> Iterator[Server]:
    server = Server(tmp)
    server.env.update(SMSSYNC_AUTH_FAILURES_BURST="1", SMSSYNC_AUTH_FAILURES_PER_MIN="0")
    if allow is not None:
        server.env["SMSSYNC_FORWARDED_ALLOW_IPS"] = allow
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def direct(tmp_path: Path) -> Iterator[Server]:
    """A server with the default: no proxy trusted."""
    yield from braked(tmp_path, None)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Server]:
    """A server behind a proxy on this host (the test's own connections come from it)."""
    yield from braked(tmp_path, "10.0.0.0/8, 127.0.0.1")


def test_forwarded_for_from_an_untrusted_address_is_not_believed(direct: Server) -> None:
    assert wrong_key_from(direct, "203.0.113.1") == 401
    # Another claimed client, the same real one: its bucket is already empty.
    assert wrong_key_from(direct, "203.0.113.2") == 429


def test_forwarded_for_from_a_trusted_proxy_is_the_client(proxied: Server) -> None:
    assert wrong_key_from(proxied, "203.0.113.1") == 401
    assert wrong_key_from(proxied, "203.0.113.2") == 401  # another client, its own bucket
    assert wrong_key_from(proxied, "203.0.113.1") == 429
    # The client is the last address no trusted proxy added: a forged first entry from the
    # client itself does not move it to a fresh bucket.
    assert wrong_key_from(proxied, "198.51.100.7, 203.0.113.2") == 429


def test_a_malformed_proxy_address_is_refused(tmp_path: Path) -> None:
    server = Server(tmp_path)
    result = server.cli("serve", "--forwarded-allow-ips", "127.0.0.1,proxy.lan", check=False)
    assert result.returncode == 2
    assert "forwarded_allow_ips" in result.stderr and "'proxy.lan'" in result.stderr
