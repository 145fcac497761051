"""``smssync serve`` as a person first meets it, and ``serve --get``."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx

from tests.e2e.serverproc import Server


def test_first_start_creates_a_device_and_prints_how_to_set_up_the_phone(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.start()
    try:
        log = server.log.read_text()
        url = re.search(r"Sync URL: (\S+)", log)
        secret = re.search(r"Secret:\s+(\S+)", log)
        assert url and secret, log
        assert "\u2580" in log or "\u2584" in log or "\u2588" in log  # the QR code's blocks
        # Beside it, where the dashboard is and its first user's one-time password.
        assert f"Dashboard: {server.base}/dashboard" in log
        assert re.search(r"one was created: admin, password \S{12,}", log), log
        body = (
            f"secret={secret[1]}&from=%2B254700000001&message=first&message_id={uuid.uuid4()}"
        ).encode()
        reply = httpx.post(
            url[1], content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert reply.json() == {"payload": {"success": True, "error": None}}
        devices = server.cli_json("device", "list")
        assert [d["name"] for d in devices] == ["phone1"]
        assert devices[0]["health"] == "online"
        # The probes over real HTTP, no credentials: alive, and ready on a migrated store.
        assert httpx.get(server.base + "/healthz").json() == {"ok": True}
        ready = httpx.get(server.base + "/readyz")
        assert ready.status_code == 200 and ready.json()["ok"] is True
        # Every log line says when, how bad and who; smssync's own INFO is shown.
        stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
        assert re.search(stamp + r"INFO smssync\.server: store open: sqlite", log, re.M), log
        assert re.search(stamp + r"INFO uvicorn\.error: Application startup complete", log, re.M)
    finally:
        server.stop()
    # A second start finds the device and the user and creates nothing.
    server.start()
    server.stop()
    assert len(server.cli_json("device", "list")) == 1
    assert [u["name"] for u in server.cli_json("user", "list")] == ["admin"]
    assert server.log.read_text().count("admin, password") == 1


def test_serve_get_answers_in_process(tmp_path: Path) -> None:
    server = Server(tmp_path)
    result = server.cli("serve", "--get", "/smssync")
    assert json.loads(result.stdout) == {"payload": {"success": True, "error": None}}
    missing = server.cli("serve", "--get", "/smssync?task=send", check=False)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["payload"]["error"] == "unauthorized"
