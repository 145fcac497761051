"""Stopping ``smssync serve`` while phones are half-way through their requests."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.e2e.serverproc import Server

#: Phones caught mid-request by the stop.
IN_FLIGHT = 12


def test_a_stop_with_requests_in_flight_logs_one_line_and_answers_503(tmp_path: Path) -> None:
    server = Server(tmp_path)
    phone = server.add_device("p", "--secret", "s")
    path = urlsplit(phone["sync_url"]).path
    key = server.cli("apikey", "create", "--scope", "send").stdout.strip().splitlines()[0]
    server.start()
    stalled: list[socket.socket] = []
    try:
        # Each sends its headers and part of its body, then waits: the server holds a
        # request in flight for each until uvicorn's graceful shutdown gives up on them.
        head = (
            f"POST {path} HTTP/1.1\r\nhost: phone\r\n"
            "content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\n"
            "secret=s&from="
        ).encode()
        api = (
            f"POST /api/v1/messages HTTP/1.1\r\nhost: app\r\nauthorization: Bearer {key}\r\n"
            'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"to": '
        ).encode()
        for request in [head] * (IN_FLIGHT - 1) + [api]:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(request)
            stalled.append(sock)
        # A whole request answered after them: the server has read every stalled one.
        assert httpx.get(server.base + "/smssync", timeout=10).status_code == 200
        assert server.proc is not None
        server.proc.terminate()
        server.proc.wait(30)
        replies = [_read_all(sock) for sock in stalled]
    finally:
        for sock in stalled:
            sock.close()
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)
    log = server.log.read_text()
    assert "Traceback" not in log, log
    assert "Exception in ASGI application" not in log, log
    # uvicorn's own line, once: "Cancel 12 running task(s), timeout graceful shutdown ..."
    assert len(re.findall(r"Cancel \d+ running task", log)) == 1, log
    for reply in replies:
        # Told to retry: nothing was stored, and the App (or the application) sends it again.
        assert reply.startswith(b"HTTP/1.1 503 "), reply
        assert b"retry-after: 5" in reply.lower(), reply
    for reply in replies[:-1]:
        assert b'"success":false' in reply.replace(b" ", b""), reply
    assert b'"ok":false' in replies[-1].replace(b" ", b""), replies[-1]


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
