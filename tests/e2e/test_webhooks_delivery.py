"""Webhooks from a real ``smssync serve`` to a real local receiver, with failures injected:
down, 500, slow. Every event arrives (at least once, deduplicated by event id), signed exactly
as documented, in order per message; nothing is lost or dead-lettered."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from smssync.webhooks import verify
from tests.e2e.serverproc import Server, create_pg_database, drop_pg_database, free_port, pg_url

FAST_RETRIES = {
    "SMSSYNC_WEBHOOK_RETRY_MS": "200",
    "SMSSYNC_WEBHOOK_TIMEOUT_S": "1",
    "SMSSYNC_LIVENESS_CHECK_S": "1",
}


class Receiver:
    """A local HTTP receiver that records requests and fails on command."""

    def __init__(self, port: int, bind: str = "127.0.0.1", address: str = "127.0.0.1") -> None:
        self.port, self.bind = port, bind
        self.url = f"http://{address}:{port}"
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        #: Behaviour of the next requests, consumed in order; then "ok".
        self.script: list[str] = []
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        """Listen (again) on the same port."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    mode = receiver.script.pop(0) if receiver.script else "ok"
                    receiver.received.append((self.path, dict(self.headers), body))
                if mode == "slow":
                    time.sleep(2.5)  # past the server's 1 s timeout: a failure to retry
                status = 500 if mode == "500" else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((self.bind, self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: the receiver is down."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def events(self, path: str) -> dict[str, dict[str, Any]]:
        """Return the distinct events received on a path, by event id, first copy."""
        found: dict[str, dict[str, Any]] = {}
        with self.lock:
            for got_path, _, body in self.received:
                if got_path == path:
                    event = json.loads(body)
                    found.setdefault(event["id"], event)
        return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port())
    try:
        yield made
    finally:
        made.stop()


def start_server(tmp: Path, database: str | None, **env: str) -> Server:
    proc = Server(tmp, pg_url(database) if database else "")
    # The receivers listen on loopback, which webhooks may reach only when allowed.
    proc.env.update(FAST_RETRIES, SMSSYNC_WEBHOOK_ALLOW="127.0.0.1", **env)
    proc.start()
    return proc


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    name = create_pg_database() if request.param == "postgres" else None
    try:
        yield name
    finally:
        if name:
            drop_pg_database(name)


def phone_round(http: httpx.Client, sync_url: str, count: int) -> list[str]:
    """Poll, acknowledge and report every message sent and delivered, like the App."""
    tasks = http.get(sync_url, params={"task": "send"}).json()["payload"]["messages"]
    uuids = [t["uuid"] for t in tasks]
    assert len(uuids) == count
    http.post(sync_url, params={"task": "sent"}, json={"queued_messages": uuids})
    results = [{"uuid": u, "sent_result_code": -1, "delivered_result_code": -1} for u in uuids]
    reply = http.post(sync_url, params={"task": "result"}, json={"message_result": results})
    assert reply.status_code == 200
    return uuids


def wait_for(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_every_event_arrives_signed_through_failures(
    tmp_path: Path, database: str | None, receiver: Receiver
) -> None:
    server = start_server(tmp_path, database)
    try:
        key = server.cli_json("apikey", "create", "--scope", "admin")
        hook = server.cli_json("webhook", "add", receiver.url + "/hook")
        device = server.add_device("p", "--no-secret")
        with httpx.Client(timeout=30) as http:
            reply = http.post(
                server.base + "/api/v1/messages",
                json={
                    "to": [f"+25470000{i:04d}" for i in range(5)],
                    "body": "hello",
                    "status_callback": receiver.url + "/cb",
                },
                headers={"authorization": f"Bearer {key['key']}"},
            )
            assert reply.status_code == 201, reply.text
            # Webhooks name the public uuids; the phone only ever saw wire ids (S-29).
            uuids = [m["uuid"] for m in reply.json()["messages"]]
            assert not set(phone_round(http, device["sync_url"], 5)) & set(uuids)
            form = {"from": "+254700000099", "message": "hi", "message_id": "in-1"}
            assert http.post(device["sync_url"], data=form).status_code == 200
        time.sleep(1.5)  # the receiver is down: attempts fail and back off
        receiver.script = ["500"] * 3 + ["slow"] * 2
        receiver.start()

        def complete() -> bool:
            hooked = {(e["type"], e["data"].get("uuid")) for e in receiver.events("/hook").values()}
            called = {(e["type"], e["data"].get("uuid")) for e in receiver.events("/cb").values()}
            wanted = {(t, u) for u in uuids for t in ("message.sent", "message.delivered")}
            return (
                wanted <= hooked
                and wanted <= called
                and ("message.received", None) in hooked
                and ("device.online", None) in hooked
            )

        try:
            wait_for(complete)
        except AssertionError:
            got = [(p, json.loads(b)["type"]) for p, _, b in receiver.received]
            raise AssertionError(f"received {got}\n{server.log.read_text()[-3000:]}") from None
        for path, headers, body in receiver.received:
            secret = hook["secret"] if path == "/hook" else key["signing_secret"]
            assert verify(secret, headers, body), (path, headers)
            assert not verify("wrong", headers, body)
            assert headers["X-Smssync-Event-Id"] == json.loads(body)["id"]
        for path in ("/hook", "/cb"):
            order = [
                (e["data"]["uuid"], e["type"])
                for e in receiver.events(path).values()
                if e["type"].startswith("message.") and e["type"] != "message.received"
            ]
            for uuid in uuids:
                assert [t for u, t in order if u == uuid] == ["message.sent", "message.delivered"]
        assert server.cli_json("webhook", "dead-letters") == []
    finally:
        server.stop()


def test_dead_letters_can_be_listed_and_redriven(tmp_path: Path, receiver: Receiver) -> None:
    server = start_server(tmp_path, None, SMSSYNC_WEBHOOK_MAX_AGE_S="1")
    try:
        server.cli_json("webhook", "add", receiver.url + "/hook", "--event", "message.received")
        device = server.add_device("p", "--no-secret")
        with httpx.Client(timeout=30) as http:
            form = {"from": "+254700000099", "message": "hi", "message_id": "in-1"}
            assert http.post(device["sync_url"], data=form).status_code == 200
        wait_for(lambda: len(server.cli_json("webhook", "dead-letters")) == 1)
        [dead] = server.cli_json("webhook", "dead-letters")
        assert dead["event"] == "message.received" and dead["attempts"] >= 1
        receiver.start()
        assert "redriven: 1" in server.cli("webhook", "redrive", "--all").stdout
        wait_for(lambda: len(receiver.events("/hook")) == 1)
        assert list(receiver.events("/hook")) == [dead["event_id"]]
    finally:
        server.stop()
