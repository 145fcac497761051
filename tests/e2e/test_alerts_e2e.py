"""Alerts and the operator's commands against a real ``smssync serve``, on both stores: a
phone's battery alert and its failed sends become alerts that ``smssync alerts`` lists, a
signed webhook receiver gets, and the server logs once, without secrets; ``smssync inbox
--follow`` in another process prints each SMS the server stores."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from smssync.webhooks import verify
from tests.e2e.serverproc import SMSSYNC, Server, free_port
from tests.e2e.test_webhooks_delivery import Receiver, receiver, start_server, wait_for

__all__ = ["receiver"]  # a fixture, shared with the webhook tests

SECRET = "battery-test-secret"
NO_SERVICE = "Failed to send SMS because service is currently unavailable"


def lines_of(stream: IO[str]) -> tuple[list[str], threading.Thread]:
    """Collect a child's stdout lines in a thread, so that a test can wait on them."""
    lines: list[str] = []

    def read() -> None:
        for line in stream:
            lines.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return lines, thread


@pytest.fixture
def database() -> None:
    """SQLite only: these runs are about the CLI, the webhook and the log end to end, and
    take a minute each; the alerts themselves are tested on both stores in
    tests/integration/test_alerts.py and test_stuck_alerts.py (the suite's time is bounded)."""
    return None


@pytest.fixture
def follower(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Processes of ``smssync inbox --follow`` started by a test, stopped after it."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def alerts_of(server: Server, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = server.cli_json("alerts", *args)
    return rows


def test_a_battery_alert_and_failing_sends_reach_cli_webhook_and_log(
    tmp_path: Path,
    database: str | None,
    receiver: Receiver,
    follower: list[subprocess.Popen[str]],
) -> None:
    server = start_server(tmp_path, database)
    try:
        receiver.start()
        hook = server.cli_json("webhook", "add", receiver.url + "/hook", "--event", "device.alert")
        phone = server.add_device("clinic", "--secret", SECRET)
        proc = subprocess.Popen(
            [*SMSSYNC, "inbox", "--follow", "--json", "--interval", "0.2"],
            env=server.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        follower.append(proc)
        assert proc.stdout is not None
        followed, _ = lines_of(proc.stdout)
        with httpx.Client(timeout=30) as http:
            # E8 as the gateway and v2.x send it: a form, the secret in the body (S-36).
            form = {"Task": "alert", "message": "Battery level is at 14", "secret": SECRET}
            reply = http.post(phone["sync_url"], data=form)
            assert reply.json() == {"payload": {"success": True, "error": None}}
            wait_for(lambda: len(alerts_of(server)) == 1, 30)
            [alert] = alerts_of(server)
            assert (alert["kind"], alert["device"], alert["state"]) == (
                "device.battery_low",
                "clinic",
                "open",
            )
            assert alert["details"]["battery_percent"] == 14
            # Sent again: the same condition, no second alert.
            http.post(phone["sync_url"], data=form)

            # An incoming SMS: printed by the follower, another process on the same store.
            sms = {"from": "+254700000001", "message": "hello", "message_id": "m1"}
            assert http.post(phone["sync_url"], data={**sms, "secret": SECRET}).status_code == 200
            wait_for(lambda: len(followed) == 1, 30)
            assert json.loads(followed[0])["body"] == "hello"

            # Three sends in a row fail with no service.
            for i in range(3):
                server.cli("send", "--to", f"+25470000000{i}", f"task {i}")
            tasks = http.get(phone["sync_url"], params={"task": "send", "secret": SECRET})
            wire = [t["uuid"] for t in tasks.json()["payload"]["messages"]]
            assert len(wire) == 3
            results = [
                {"uuid": u, "sent_result_code": 4, "sent_result_message": NO_SERVICE} for u in wire
            ]
            reply = http.post(
                phone["sync_url"],
                params={"task": "result", "secret": SECRET},
                json={"message_result": results},
            )
            assert reply.status_code == 200, reply.text

        wait_for(lambda: len(alerts_of(server)) == 2, 30)
        failing = next(a for a in alerts_of(server) if a["kind"] == "device.send_failing")
        assert failing["details"]["reasons"] == {"no_service": 3}

        def hooked() -> list[dict[str, Any]]:
            return list(receiver.events("/hook").values())

        wait_for(lambda: len(hooked()) == 2, 30)
        assert sorted(e["data"]["kind"] for e in hooked()) == [
            "device.battery_low",
            "device.send_failing",
        ]
        assert {e["type"] for e in hooked()} == {"device.alert"}
        for _, headers, body in receiver.received:
            assert verify(hook["secret"], headers, body)

        # Acknowledged from the CLI: still open, now acknowledged.
        acked = server.cli_json("alerts", "ack", str(alert["id"]))
        assert acked["state"] == "acknowledged"
        status = server.cli_json("status")
        assert status["open_alerts"] == 2 and status["last_in"]["body"] == "hello"

        # One WARNING line per alert, each naming its kind; no secret anywhere.
        wait_for(lambda: server.log.read_text().count("WARNING") >= 2, 30)
        log = server.log.read_text()
        assert log.count("alert ") >= 2
        assert sum("device.battery_low" in line for line in log.splitlines()) == 1
        assert sum("device.send_failing" in line for line in log.splitlines()) == 1
        for secret in (SECRET, hook["secret"], phone["sync_url"].rsplit("/", 1)[1]):
            assert secret not in log
    finally:
        server.stop()


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    made = Receiver(free_port())
    try:
        yield made
    finally:
        made.stop()


def test_a_silent_phone_and_a_failing_receiver_are_alerted_and_resolved(
    tmp_path: Path, database: str | None, receiver: Receiver, second_receiver: Receiver
) -> None:
    good, bad = receiver, second_receiver
    server = start_server(tmp_path, database)
    try:
        good.start()
        bad.start()
        bad.script = ["500"] * 10_000
        events = ("--event", "device.alert", "--event", "webhook.failing")
        server.cli_json("webhook", "add", good.url + "/good", *events)
        failing = server.cli_json("webhook", "add", bad.url + "/bad", "--event", "device.online")
        phone = server.add_device("p", "--no-secret")
        server.cli("device", "set", "p", "--liveness-s", "10")
        with httpx.Client(timeout=30) as http:
            assert http.get(phone["sync_url"], params={"task": "send"}).status_code == 200

            # device.online goes to the bad receiver, which fails it 3 times in a row.
            def kinds(state: str = "") -> set[str]:
                return {a["kind"] for a in alerts_of(server, "--all") if state in a["state"]}

            wait_for(lambda: "webhook.failing" in kinds(), 30)
            [alert] = [a for a in alerts_of(server) if a["kind"] == "webhook.failing"]
            assert alert["details"]["webhook_id"] == failing["id"]
            assert alert["details"]["host"] == "127.0.0.1"
            # Silent past its 10 s window: an alert, once.
            wait_for(lambda: "device.silent" in kinds(), 40)
            # Heard again: resolved.
            assert http.get(phone["sync_url"], params={"task": "send"}).status_code == 200
            wait_for(lambda: "device.silent" in kinds("resolved"), 30)
        # The receiver comes back: the next attempt delivers, and the alert resolves.
        bad.script = []
        wait_for(lambda: "webhook.failing" in kinds("resolved"), 60)
        assert "webhook.failing" not in {a["kind"] for a in alerts_of(server)}
        # (The phone, silent again meanwhile, may have a second device.silent.)
        raised = alerts_of(server, "--all")

        wait_for(lambda: len(good.events("/good")) >= len(raised), 30)
        good_events = list(good.events("/good").values())
        assert sorted(e["data"]["id"] for e in good_events) == sorted(a["id"] for a in raised)
        assert {(e["type"], e["data"]["kind"]) for e in good_events} == {
            ("device.alert", "device.silent"),
            ("webhook.failing", "webhook.failing"),
        }
        # The failing receiver is not sent its own alert.
        assert {json.loads(b)["type"] for _, _, b in bad.received} == {"device.online"}
        # One WARNING line per alert.
        wait_for(lambda: all(f"alert {a['id']} " in server.log.read_text() for a in raised), 30)
        lines = server.log.read_text().splitlines()
        for a in raised:
            assert sum(f"alert {a['id']} {a['kind']}" in line for line in lines) == 1
    finally:
        server.stop()
