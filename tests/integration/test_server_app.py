"""The app on a real uvicorn, configured as ``smssync serve`` configures it: the two error
shapes pinned byte for byte, and what the HTTP layer must do for phones."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from smssync.records import Scope
from smssync.server.apikeys import create_key
from smssync.server.app import create_app, serve_options
from smssync.server.credentials import create_device
from smssync.settings import Settings
from smssync.store import apikeys, inbox
from smssync.store.engine import Database
from tests.integration.store_helpers import FailingStore


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, settings: Settings) -> AsyncIterator[int]:
    """Serve ``app`` on a free port with ``smssync serve``'s uvicorn options."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    options = {**serve_options(settings), "log_level": "warning"}
    del options["host"], options["port"]
    server = uvicorn.Server(uvicorn.Config(app, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return Reply(int(lines[0].split()[1]), headers, body)


async def exchange(port: int, request: bytes) -> Reply:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(read_reply(reader), 10)
    finally:
        writer.close()


def get(path: str, *headers: str) -> bytes:
    extra = "".join(h + "\r\n" for h in headers)
    return f"GET {path} HTTP/1.1\r\nhost: x\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, *headers: str) -> bytes:
    extra = "".join(h + "\r\n" for h in headers)
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def phone_failure(error: str) -> bytes:
    return b'{"payload":{"success":false,"error":"' + error.encode() + b'"}}'


FORM = "content-type: application/x-www-form-urlencoded"


async def test_the_phone_shape_over_real_http(store: Database) -> None:
    _, issued = await create_device(store, "p", datetime.now(UTC), secret="s")
    settings = Settings(max_headers=20)
    url = f"/smssync/d/{issued.token}"
    sms = b"secret=s&from=%2B254700000001&message=hi&message_id=m-1"
    async with serving(
        create_app(settings, FailingStore(store, inbox.record_inbound_many, apikeys.submit.run)),
        settings,
    ) as port:
        cases: list[tuple[bytes, int, bytes, dict[str, str]]] = [
            (get("/smssync?task=nope"), 400, phone_failure("unknown task 'nope'"), {}),
            (get("/smssync?task=send"), 403, phone_failure("unauthorized"), {}),
            (
                get("/smssync?task=send", "authorization: Basic Zm9vOmJhcg=="),
                401,
                phone_failure("unauthorized"),
                {"www-authenticate": 'Basic realm="smssync"'},
            ),
            (
                get("/smssync?task=sent"),
                405,
                phone_failure("method GET not allowed for this task"),
                {"allow": "POST"},
            ),
            (
                f"POST {url} HTTP/1.1\r\nhost: x\r\ncontent-length: 2000000\r\n\r\n".encode(),
                413,
                phone_failure("body too large"),
                {},
            ),
            (get("/elsewhere"), 404, phone_failure("not found"), {}),
            (
                get("/smssync", *(f"x-{i}: 1" for i in range(20))),
                431,
                phone_failure("too many request header fields"),
                {},
            ),
            (
                post(url, sms, FORM),
                503,
                phone_failure("storage unavailable, retry later"),
                {"retry-after": "5"},
            ),
        ]
        for request, status, body, headers in cases:
            reply = await exchange(port, request)
            assert (reply.status, reply.body) == (status, body), request
            assert reply.headers["content-type"] == "application/json; charset=utf-8"
            for name, value in headers.items():
                assert reply.headers[name] == value, (request, name)


def api_failure(status: int, error: str, errors: list[dict[str, Any]] | None = None) -> bytes:
    shape = {"ok": False, "error": error, "errors": errors or [], "status": status}
    return json.dumps(shape, separators=(",", ":")).encode()


async def test_the_api_shape_over_real_http(store: Database) -> None:
    now = datetime.now(UTC)
    _, reader = await create_key(store, "r", [Scope.READ], now)
    _, sender = await create_key(store, "s", [Scope.SEND], now)
    settings = Settings(max_headers=20, api_max_body_bytes=1000, auth_failures_burst=2)
    send = f"authorization: Bearer {sender}"
    json_body = "content-type: application/json"
    message = b'{"to": ["+254700000001"], "body": "hi"}'
    async with serving(
        create_app(settings, FailingStore(store, inbox.record_inbound_many, apikeys.submit.run)),
        settings,
    ) as port:
        cases: list[tuple[bytes, int, bytes, dict[str, str]]] = [
            (
                post("/api/v1/messages", b'{"to": 1}', send, json_body),
                400,
                b"",
                {},
            ),
            (
                get("/api/v1/messages"),
                401,
                api_failure(401, "missing API key: send Authorization: Bearer <key>"),
                {"www-authenticate": 'Bearer realm="smssync"'},
            ),
            (
                post("/api/v1/messages", message, f"authorization: Bearer {reader}", json_body),
                403,
                api_failure(403, "this API key lacks the 'send' scope"),
                {},
            ),
            (
                get("/api/v1/nothing-here", f"authorization: Bearer {reader}"),
                404,
                api_failure(404, "not found"),
                {},
            ),
            (
                f"DELETE /api/v1/messages HTTP/1.1\r\nhost: x\r\n{send}\r\n\r\n".encode(),
                405,
                api_failure(405, "method not allowed"),
                {"allow": "GET, POST"},
            ),
            (
                post("/api/v1/messages", b"x" * 1001, send, json_body),
                413,
                api_failure(413, "body too large"),
                {},
            ),
            (
                get("/api/v1/messages", *(f"x-{i}: 1" for i in range(20))),
                431,
                api_failure(431, "too many request header fields"),
                {},
            ),
            (
                post("/api/v1/messages", message, send, json_body),
                503,
                api_failure(503, "database unavailable; retry"),
                {},
            ),
        ]
        for request, status, body, headers in cases:
            reply = await exchange(port, request)
            assert reply.status == status, (request, reply)
            assert reply.headers["content-type"] == "application/json", request
            shape = json.loads(reply.body)
            assert set(shape) == {"ok", "error", "errors", "status"}
            assert (shape["ok"], shape["status"]) == (False, status)
            if body:
                assert reply.body == body, request
            for name, value in headers.items():
                assert reply.headers[name] == value, (request, name)
        # 429: wrong keys from one address, past the brake's burst of 2. (409 needs a store
        # that answers: test_api_messages.)
        for _ in range(4):
            reply = await exchange(port, get("/api/v1/messages", "authorization: Bearer ssk_x"))
        assert reply.status == 429, reply
        assert reply.body == api_failure(429, "too many failed attempts, retry later")
        assert reply.headers["retry-after"].isdigit()


async def test_pipelined_requests_are_answered_in_order(store: Database) -> None:
    settings = Settings()
    async with serving(create_app(settings, store), settings) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/smssync") + get("/smssync?task=nope"))
        first, second = await read_reply(reader), await read_reply(reader)
        assert (first.status, second.status) == (200, 400)
        writer.close()


async def test_a_client_that_half_closes_after_its_request_gets_the_whole_answer(
    store: Database,
) -> None:
    settings = Settings()
    async with serving(create_app(settings, store), settings) as port:
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(get("/smssync", "connection: close"))
            writer.write_eof()
            everything = await asyncio.wait_for(reader.read(), 10)  # until the server closes
            assert everything.endswith(b"\r\n\r\n" + b'{"payload":{"success":true,"error":null}}')
            writer.close()
