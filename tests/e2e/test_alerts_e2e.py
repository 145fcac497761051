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
from tests.e2e.serverproc import SMSSYNC, Server
from tests.e2e.test_webhooks_delivery import Receiver, database, receiver, start_server, wait_for

__all__ = ["database", "receiver"]  # fixtures, shared with the webhook tests

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
