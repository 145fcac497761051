"""Screenshots of every dashboard page for docs/dashboard.md, from a real ``smssync serve``
with a few conversations in it (run by scripts/screenshots). Only the images are written:
the page's text is kept by hand in docs/dashboard.md.

    .venv/bin/python -m tests.e2e.screenshots [DOCS_DIR]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import FilePayload, Page, sync_playwright

from tests.e2e.browser import (
    APP,
    CHROMIUM,
    admin_password,
    first_phone,
    incoming,
    report_delivered,
    sign_in,
    take_tasks,
)
from tests.e2e.serverproc import Server


def _fail(phone: dict[str, Any], wire_id: str, reason: str) -> None:
    httpx.post(
        phone["sync_url"] + "?task=sent",
        content=json.dumps({"queued_messages": [wire_id]}),
        headers={**APP, "content-type": "application/json"},
    )
    result = {
        "uuid": wire_id,
        "sent_result_code": 1,
        "sent_result_message": reason,
        "delivered_result_code": 0,
        "delivered_result_message": "",
    }
    httpx.post(
        phone["sync_url"],
        params={"task": "result", "secret": phone["secret"]},
        content=json.dumps({"message_result": [result]}),
        headers={**APP, "content-type": "application/json"},
    )


def _reply(page: Page, server: Server, number: str, text: str) -> None:
    page.goto(f"{server.base}/dashboard/conversations/{number}")
    page.fill("#text", text)
    page.click("form.reply button")
    page.wait_for_selector(".sms.out")


def _populate(page: Page, server: Server, phone: dict[str, Any]) -> None:
    incoming(phone, "+254711000111", "Hello, is the clinic open on Saturday?")
    _reply(page, server, "+254711000111", "Yes, Saturdays 9:00 to 13:00.")
    [task] = take_tasks(phone)
    report_delivered(phone, task["uuid"])
    incoming(phone, "+254711000111", "Thank you! Can I bring my son too?")
    _reply(page, server, "+254711000111", "Of course — bring his health card. Karibu!")
    incoming(phone, "+254722000222", "STOP")
    incoming(phone, "+254733000333", "My appointment code is 4711, can I move it to Monday?")
    _reply(page, server, "+254733000333", "Moved to Monday 10:30.")
    # The phone takes both waiting replies and fails one; the other stays with it.
    tasks = take_tasks(phone)
    task = next(t for t in tasks if t["to"] == "+254733000333")
    _fail(phone, task["uuid"], "RESULT_ERROR_NO_SERVICE")
    _reply(page, server, "+254744000444", "Reminder: vaccination day is Friday.")
    # The phone's last alert tells its battery (E8).
    httpx.post(
        phone["sync_url"],
        data={"secret": phone["secret"], "Task": "alert", "message": "Battery level is at 23%"},
        headers=APP,
    )


#: A small bulk send for the Compose page: a number unreadable, a row without its name, and
#: the number that sent STOP in _populate (skipped).
PEOPLE = (
    "phone,first\n0711000201,Amina\n0711000202,Baraka\n0711000203,Chebet\n"
    "0711 000 204,Daudi\n0711000205,\nnot a number,Esther\n0722 000222,Faith\n"
)


def _compose(page: Page, server: Server) -> None:
    page.goto(server.base + "/dashboard/compose")
    page.fill("#text", "Dear {first}, vaccination day is Friday from 8:00. Reply STOP to opt out.")
    upload: FilePayload = {"name": "people.csv", "mimeType": "text/csv", "buffer": PEOPLE.encode()}
    page.set_input_files("#csv", files=[upload])
    page.click("details.window summary")
    page.fill("#window_from", "08:00")
    page.fill("#window_to", "20:00")
    page.fill("#name", "Vaccination day")
    page.click("button[value=preview]")
    page.wait_for_selector("#plan")
    time.sleep(0.3)  # the counter's answer


def _manage(server: Server, phone: dict[str, Any]) -> None:
    """Something on each management page and an open alert (a phone's low battery)."""
    httpx.post(
        phone["sync_url"], data={"task": "alert", "message": "Battery level is at 9"}, headers=APP
    )
    server.cli("rule", "add", "--keyword", "hours", "--auto-reply", "Open 8:00 to 17:00 daily")
    server.cli("webhook", "add", "https://example.org/smssync-hook", "--event", "message.received")
    server.cli("apikey", "create", "--name", "reports", "--scope", "read")
    password = "a long password"
    server.cli("user", "add", "amina", "--role", "operator", "--password-stdin", input=password)


def main(docs: Path) -> None:
    """Start a server with some SMS, sign in, and write the screenshots."""
    shots = docs / "dashboard"
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        server.start()
        try:
            phone = first_phone(server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": 1100, "height": 720})
                page.goto(server.base + "/dashboard/signin")
                page.screenshot(path=str(shots / "signin.png"))
                sign_in(page, server, "admin", admin_password(server))
                _populate(page, server, phone)
                page.goto(server.base + "/dashboard/conversations")
                page.screenshot(path=str(shots / "conversations.png"), full_page=True)
                page.goto(server.base + "/dashboard/conversations/+254711000111")
                page.fill("#text", "See you on Saturday")
                time.sleep(0.3)
                page.screenshot(path=str(shots / "thread.png"), full_page=True)
                mobile = browser.new_context(
                    viewport={"width": 390, "height": 780}, device_scale_factor=2
                )
                small = mobile.new_page()
                sign_in(small, server, "admin", admin_password(server))
                small.goto(server.base + "/dashboard/conversations/+254733000333")
                small.screenshot(path=str(shots / "thread-mobile.png"))
                page.goto(server.base + "/dashboard/phones")
                page.screenshot(path=str(shots / "phones.png"), full_page=True)
                page.goto(server.base + "/dashboard/phones/add")
                page.fill("#name", "clinic-2")
                page.click("form[action$='/phones/add'] button")
                page.screenshot(path=str(shots / "phone-add.png"), full_page=True)
                page.goto(server.base + "/dashboard/phones/phone1")
                page.screenshot(path=str(shots / "phone.png"), full_page=True)
                page.goto(server.base + "/dashboard/outbox")
                page.screenshot(path=str(shots / "outbox.png"), full_page=True)
                page.goto(server.base + "/dashboard/activity")
                page.screenshot(path=str(shots / "activity.png"), full_page=True)
                _compose(page, server)
                page.screenshot(path=str(shots / "compose.png"), full_page=True)
                page.click("#send-previewed")
                page.wait_for_selector("#released-bar")
                page.screenshot(path=str(shots / "campaign.png"), full_page=True)
                _manage(server, phone)
                for name in ("alerts", "campaigns", "rules", "webhooks", "keys", "users"):
                    page.goto(server.base + f"/dashboard/{name}")
                    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))
