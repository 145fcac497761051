"""A CSV bulk send of 200 numbers through the Compose page in a real browser (Debian's
Chromium) against a real ``smssync serve``: the preview, then the campaign's page, whose
progress and counts fill in without a reload while a phone takes and delivers every SMS."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect, sync_playwright

from tests.e2e.browser import APP, CHROMIUM, admin_password, first_phone, sign_in, take_tasks
from tests.e2e.serverproc import SMSSYNC, Server

#: How long the page may take to show a change (it polls every 2 s).
LIVE_MS = 10_000
PEOPLE = 200


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def report_all_delivered(phone: dict[str, Any], wire_ids: list[str]) -> None:
    """Confirm the hand-over of a batch (E5) and report each sent and delivered (E7), two
    requests a batch as the app makes them (``browser.report_delivered`` does one SMS)."""
    with httpx.Client(headers={**APP, "content-type": "application/json"}, timeout=30) as http:
        sent = http.post(
            phone["sync_url"] + "?task=sent", content=json.dumps({"queued_messages": wire_ids})
        )
        assert sent.json()["message_uuids"] == wire_ids, sent.text
        results = [
            {"uuid": wire_id, "sent_result_code": -1, "sent_result_message": "",
             "delivered_result_code": -1, "delivered_result_message": ""}
            for wire_id in wire_ids
        ]  # fmt: skip
        reported = http.post(
            phone["sync_url"],
            params={"task": "result", "secret": phone["secret"]},
            content=json.dumps({"message_result": results}),
        )
        assert reported.status_code == 200, reported.text


def test_a_csv_bulk_send_of_200_shows_its_progress_and_ends_with_its_counts(
    page: Page, server: Server
) -> None:
    # The phone the first start registered, made fast (its hand-out is paced too). Never
    # polled, it is offline: the campaign starts at one phone's default pace (two minutes
    # at 30 a minute: 60 SMS) and holds the rest until the phone is seen online.
    phone = first_phone(server)
    # The CLI takes seconds to start on a busy machine: it runs while the browser works.
    pace = ("--segments-per-minute", "1000", "--batch-limit", "50")
    fast = subprocess.Popen(
        [*SMSSYNC, "device", "set", "phone1", *pace],
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    people = "phone,first\n" + "".join(f"0711{i:06d},P{i}\n" for i in range(PEOPLE))

    sign_in(page, server, "admin", admin_password(server))
    page.click("nav >> text=Compose")
    page.fill("#text", "Hello {first}, the clinic opens at 9")
    expect(page.locator("#counter")).to_contain_text("GSM-7 · 1 SMS · fills {first}")
    upload: FilePayload = {"name": "people.csv", "mimeType": "text/csv", "buffer": people.encode()}
    page.set_input_files("#csv", files=[upload])
    page.click("button[value=preview]")
    expect(page.locator("#plan-sendable")).to_have_text(f"{PEOPLE} of {PEOPLE} will be sent")
    expect(page.locator(".preview li").first).to_contain_text("+254711000000")
    expect(page.locator(".preview li").first).to_contain_text("Hello P0, the clinic opens at 9")
    page.click("#send-previewed")
    expect(page).to_have_url(re.compile(r"/dashboard/campaigns/\d+$"))

    # Only the first minutes are released: the bar shows the rest still held.
    bar = page.locator("#released-bar")
    released = int(bar.get_attribute("value") or "0")
    assert 0 < released < PEOPLE and bar.get_attribute("max") == str(PEOPLE)
    expect(page.locator("[data-count=held]")).to_have_text(str(PEOPLE - released))
    page.evaluate("window.notReloaded = true")

    _, problem = fast.communicate(timeout=60)
    assert fast.returncode == 0, problem
    delivered = 0
    deadline = time.monotonic() + 60
    while delivered < PEOPLE and time.monotonic() < deadline:
        tasks = take_tasks(phone, timeout_s=2)
        if tasks:
            report_all_delivered(phone, [task["uuid"] for task in tasks])
            delivered += len(tasks)
    assert delivered == PEOPLE

    expect(page.locator("[data-count=delivered]")).to_have_text(str(PEOPLE), timeout=LIVE_MS)
    # Done at the release loop's next round (every 5 s) once nothing is held.
    expect(page.locator("#campaign-status")).to_have_text("done", timeout=LIVE_MS + 5_000)
    expect(page.locator("[data-count=held]")).to_have_text("0")
    expect(page.locator("[data-count=failed]")).to_have_text("0")
    assert page.locator("#released-bar").get_attribute("value") == str(PEOPLE)
    assert page.evaluate("window.notReloaded") is True
