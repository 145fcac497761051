"""Debian's Chromium driven by Playwright, and what the dashboard's browser tests share.

Never ``playwright install``: the browser is the system's (``apt-get install chromium``,
done by scripts/bootstrap's tests set-up), launched by path.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

from tests.e2e.serverproc import SMSSYNC, Server

CHROMIUM = "/usr/bin/chromium"
#: What the phone's requests say they are, as the app's do.
APP = {"user-agent": "SMSSync-Android/v3.1.1"}


def admin_password(server: Server) -> str:
    """Return the password ``serve`` printed for the first admin."""
    found = re.search(r"admin, password (\S+)", server.log.read_text())
    assert found, server.log.read_text()
    return found.group(1)


def first_phone(server: Server) -> dict[str, Any]:
    """Return the Sync URL and secret of the phone ``serve`` registered on its first start."""
    log = server.log.read_text()
    url, secret = re.search(r"Sync URL: (\S+)", log), re.search(r"Secret:\s+(\S+)", log)
    assert url and secret, log
    return {"sync_url": url.group(1), "secret": secret.group(1)}


def add_user(server: Server, name: str, role: str, password: str) -> None:
    """Add a dashboard user with the CLI, the password on stdin."""
    subprocess.run(
        [*SMSSYNC, "user", "add", name, "--role", role, "--password-stdin"],
        input=password + "\n",
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def sign_in(page: Page, server: Server, name: str, password: str) -> None:
    """Sign in through the form, as a person would."""
    page.goto(server.base + "/dashboard/signin")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("form[action$='/signin'] button")
    page.wait_for_url(re.compile(r".*/dashboard/conversations$"))


def incoming(phone: dict[str, Any], sender: str, text: str) -> None:
    """Post an incoming SMS as the SMSsync app does (E1)."""
    reply = httpx.post(
        phone["sync_url"],
        data={
            "secret": phone["secret"],
            "from": sender,
            "message": text,
            "message_id": str(uuid.uuid4()),
            "sent_timestamp": str(int(time.time() * 1000)),
        },
        headers=APP,
    )
    assert reply.json()["payload"]["success"] is True, reply.text


def take_tasks(phone: dict[str, Any], timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Poll for outgoing SMS (E4) until some come, as the app's task check does."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = httpx.get(
            phone["sync_url"], params={"task": "send", "secret": phone["secret"]}, headers=APP
        )
        found: list[dict[str, Any]] = reply.json()["payload"].get("messages") or []
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def report_delivered(phone: dict[str, Any], wire_id: str) -> None:
    """Confirm the hand-over (E5), then report the SMS sent and delivered (E7)."""
    sent = httpx.post(
        phone["sync_url"] + "?task=sent",
        content=json.dumps({"queued_messages": [wire_id]}),
        headers={**APP, "content-type": "application/json"},
    )
    assert wire_id in sent.json()["message_uuids"], sent.text
    result = {
        "uuid": wire_id,
        "sent_result_code": -1,
        "sent_result_message": "",
        "delivered_result_code": -1,
        "delivered_result_message": "",
    }
    reported = httpx.post(
        phone["sync_url"],
        params={"task": "result", "secret": phone["secret"]},
        content=json.dumps({"message_result": [result]}),
        headers={**APP, "content-type": "application/json"},
    )
    assert reported.status_code == 200, reported.text


def decode_qr(image: Path) -> str:
    """Return the text of the QR code in an image (zbar's zbarimg)."""
    done = subprocess.run(
        ["zbarimg", "--raw", "-q", str(image)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
