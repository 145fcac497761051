"""Limits of a real ``smssync serve`` against clients without credentials (issue 14: 1, 7).

Raw sockets, because the point is what a client that does not follow HTTP's courtesies can
make the server hold: huge headers, many headers, half a request. uvicorn's h11 parser wants
HTTP/1.1's ``Host`` header (real clients send it); requests here that should reach the
application carry one.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.e2e.serverproc import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose requests must arrive whole within one second."""
    proc = Server(tmp_path_factory.mktemp("limits"))
    proc.env["SMSSYNC_REQUEST_TIMEOUT_S"] = "1"
    # Off, so that every wrong credential here reaches the hashing it measures instead of
    # the brake's 429 (tested in its own module).
    proc.env["SMSSYNC_AUTH_FAILURES_BURST"] = "0"
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def exchange(server: Server, request: bytes) -> bytes:
    """Send raw bytes and return everything the server sends until it closes.

    The socket's own timeout (far above the server's deadline) turns a server that never
    closes into a failure rather than a hang.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass  # refused and closed while still sending: the answer may still be readable
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass  # closed with the client's bytes unread: the answer may be lost
        return received


def rss_kib(server: Server) -> int:
    """The server process's resident memory."""
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def still_answers(server: Server) -> None:
    reply = httpx.get(server.base + "/smssync", timeout=5)
    assert reply.json() == {"payload": {"success": True, "error": None}}


def test_a_10_mb_header_is_refused_and_leaves_no_memory_behind(server: Server) -> None:
    before = rss_kib(server)
    for i in range(5):
        token = f"{i:04d}".encode() + b"a" * 10_000_000
        answer = exchange(
            server,
            b"GET /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + token
            + b"\r\n\r\n",
        )
        # Cut off by uvicorn's parser once twice the limit is buffered: its plain 400, or a
        # reset when the client is still sending.
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert rss_kib(server) - before < 16 * 1024
    still_answers(server)


def test_a_header_over_the_limit_is_refused_with_431_in_the_endpoint_shape(
    server: Server,
) -> None:
    big = b"a" * 40_000  # over the 32 KiB limit, under twice it: the application refuses it
    answer = exchange(
        server,
        b"GET /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + big + b"\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    # In the shape of the endpoint the request line named: the API's here.
    error = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert error == {
        "ok": False,
        "error": "request header fields too large",
        "errors": [],
        "status": 431,
    }
    answer = exchange(server, b"POST /smssync HTTP/1.1\r\nHost: x\r\nX: " + big + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
        "payload": {"success": False, "error": "request header fields too large"}
    }
    still_answers(server)


def test_too_many_headers_are_refused_with_431(server: Server) -> None:
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(100))  # and Host: 101
    answer = exchange(server, b"GET /smssync HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"too many request header fields" in answer
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(98))  # and Host, Connection: 100
    request = b"GET /smssync HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n"
    assert exchange(server, request)[:15] == b"HTTP/1.1 200 OK"


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    # uvicorn's timeout_keep_alive (5 s).
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(b"GET /smssync HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):  # the answer, then the server's close
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK")
    still_answers(server)


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /smssync HTTP/1.1\r\nHost: x\r\n", b"GET /smss"],
    ids=["nothing", "a head without its end", "half a request line"],
)
def test_a_head_that_never_completes_gets_408_at_the_deadline(server: Server, sent: bytes) -> None:
    # Held open, such connections would exhaust the server's file descriptors (finding 7).
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(sent)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert 0.9 < time.monotonic() - started < 10
    still_answers(server)


def test_a_head_sent_a_byte_at_a_time_is_cut_at_the_deadline(server: Server) -> None:
    request = b"GET /smssync HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        with contextlib.suppress(OSError):  # closed by the server while still sending
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    # 10 s of bytes, cut after 1 s: the deadline counts from the head's first byte.
    assert time.monotonic() - started < 5
    assert not received.startswith(b"HTTP/1.1 200")
    still_answers(server)


def test_a_busy_keep_alive_connection_outlives_the_head_deadline(server: Server) -> None:
    # Requests one after another on one connection for 3 s (the deadline is 1 s): each head
    # arrives in time, so none is cut.
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        started, answers = time.monotonic(), 0
        while time.monotonic() - started < 3:
            sock.sendall(b"GET /smssync HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while not received.endswith(b"}}"):
                chunk = sock.recv(65536)
                assert chunk, "closed by the server"
                received += chunk
            assert received.startswith(b"HTTP/1.1 200 OK")
            answers += 1
            time.sleep(0.4)
    assert answers >= 3  # kept open across three deadlines


def test_half_a_body_is_closed_at_the_deadline_and_nothing_is_stored(server: Server) -> None:
    device = server.add_device("half", "--no-secret")
    path = device["sync_url"].removeprefix(server.base).encode()
    body = b"from=%2B254700000001&message=half&message_id=half-1"
    head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
    head += b"Content-Type: application/x-www-form-urlencoded\r\n"
    answer = exchange(server, head + b"Content-Length: %d\r\n\r\n" % (len(body) + 10) + body)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b'{"payload":{"success":false,"error":"request timeout"}}')
    assert server.cli_json("messages", "--device", "half") == []
    # The API's, in its shape.
    key = server.cli("apikey", "create", "--scope", "send").stdout.strip().splitlines()[0]
    body = b'{"to": ["+254700000001"], "body": "half"}'
    head = b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Authorization: Bearer " + key.encode() + b"\r\n"
    answer = exchange(server, head + b"Content-Length: %d\r\n\r\n" % (len(body) + 10) + body)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
        "ok": False,
        "error": "request timeout",
        "errors": [],
        "status": 408,
    }
    assert server.cli_json("messages", "--direction", "out") == []
    still_answers(server)


def test_distinct_big_secrets_leave_no_memory_behind(server: Server) -> None:
    def post(i: int) -> None:
        body = f"from=%2B254700000001&message=hi&secret={i:08d}{'s' * 1_000_000}"
        reply = httpx.post(
            server.base + "/smssync",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
            timeout=30,
        )
        assert reply.status_code == 403

    for i in range(5):  # the first requests size the allocator's arenas
        post(i)
    before = rss_kib(server)
    for i in range(5, 45):
        post(i)
    # A cache of their hashes kept every secret: 40 MiB more. Freed, they leave a few pages.
    assert rss_kib(server) - before < 16 * 1024


REQUEST_LINES = st.sampled_from(
    [
        b"POST /smssync HTTP/1.1",
        b"POST /smssync?task=sent HTTP/1.1",
        b"GET /smssync?task=send&secret=%ff HTTP/1.1",
        b"POST /api/v1/messages HTTP/1.1",
        b"GET /api/v1/messages?until=0.5 HTTP/1.1",
        b"PUT /smssync/d/x HTTP/1.0",
    ]
)
HEADERS = st.lists(
    st.sampled_from(
        [
            b"Content-Type: application/x-www-form-urlencoded; charset=utf-7",
            b"Content-Type: application/json; charset=unicode_escape",
            b"Content-Type: text/plain; charset=\xff",
            b"Content-Length: 5",
            b"Transfer-Encoding: chunked",
            b"Authorization: Basic %%%",
            b"Authorization: Bearer ssk_x",
            b"User-Agent: \xc3\x28",
        ]
    ),
    max_size=4,
)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    line=REQUEST_LINES,
    headers=HEADERS,
    body=st.binary(max_size=64) | st.sampled_from([b"from=a&message=+2AA-", b"0\r\n\r\n"]),
    junk=st.binary(max_size=3),
)
def test_a_real_server_survives_mutated_requests(
    server: Server, line: bytes, headers: list[bytes], body: bytes, junk: bytes
) -> None:
    request = line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + junk + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # no more: a short body ends here, not at the deadline
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    if received:  # a client gone mid-request may get no answer at all
        status = int(received.split(b" ", 2)[1])
        assert status < 500, received[:300]
    still_answers(server)


def test_a_body_in_the_same_chunk_as_its_head_is_not_counted_as_head(server: Server) -> None:
    # One write: the server reads head and body (and the message's end) in one chunk.
    device = server.add_device("bulk", "--no-secret")
    path = device["sync_url"].removeprefix(server.base).encode()
    body = b"from=%2B254700000001&message=" + b"x" * 100_000 + b"&message_id=big-1"
    head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
    head += b"Content-Type: application/x-www-form-urlencoded\r\n"
    answer = exchange(
        server, head + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:300]
