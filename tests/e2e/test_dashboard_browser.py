"""The dashboard in a real browser (Debian's Chromium) against a real ``smssync serve``:
sign-in and out, live conversations, replies reaching the phone, CSRF, roles, the QR code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.browser import (
    CHROMIUM,
    add_user,
    admin_password,
    decode_qr,
    first_phone,
    incoming,
    report_delivered,
    sign_in,
    take_tasks,
)
from tests.e2e.serverproc import Server

#: How long the page may take to show a change (it polls every 2 s).
LIVE_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and its page."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def handset(server: Server) -> dict[str, Any]:
    """The phone the first start registered, set up from what it printed."""
    return first_phone(server)


def test_sign_in_and_out_and_no_page_without_a_session(page: Page, server: Server) -> None:
    page.goto(server.base + "/dashboard/phones")
    expect(page).to_have_url(re.compile(r"/dashboard/signin\?next=%2Fdashboard%2Fphones$"))
    page.fill("#name", "admin")
    page.fill("#password", "not the password")
    page.click("form[action$='/signin'] button")
    expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    page.fill("#name", "admin")
    page.fill("#password", admin_password(server))
    page.click("form[action$='/signin'] button")
    expect(page).to_have_url(re.compile(r"/dashboard/phones$"))
    expect(page.get_by_role("heading", name="Phones")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "smssync_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("text=Sign out")
    expect(page).to_have_url(re.compile(r"/dashboard/signin$"))
    page.goto(server.base + "/dashboard/conversations")
    expect(page).to_have_url(re.compile(r"/dashboard/signin\?next="))


def test_an_incoming_sms_appears_and_a_reply_reaches_the_phone_then_turns_delivered(
    page: Page, server: Server, handset: dict[str, Any]
) -> None:
    number = "+254700000101"
    incoming(handset, number, "Is the clinic open today?")
    sign_in(page, server, "admin", admin_password(server))
    page.click(f"text={number}")
    expect(page.locator(".sms.in .text")).to_have_text(["Is the clinic open today?"])
    page.evaluate("window.notReloaded = true")

    incoming(handset, number, "And tomorrow?")
    expect(page.locator(".sms.in .text").last).to_have_text("And tomorrow?", timeout=LIVE_MS)

    page.fill("#text", "Yes, 8:00 to 17:00 both days")
    expect(page.locator("#counter")).to_contain_text("GSM-7 · 1 SMS")
    page.click("form.reply button")
    outgoing = page.locator(".sms.out").last
    expect(outgoing.locator(".text")).to_have_text("Yes, 8:00 to 17:00 both days")
    expect(outgoing.locator(".status")).to_have_text("queued")
    page.evaluate("window.notReloaded = true")

    [task] = take_tasks(handset)
    assert task["message"] == "Yes, 8:00 to 17:00 both days" and task["to"] == number
    report_delivered(handset, task["uuid"])
    expect(outgoing.locator(".status")).to_have_text("delivered", timeout=LIVE_MS)
    assert page.evaluate("window.notReloaded") is True


def test_a_form_without_its_csrf_token_is_refused(page: Page, server: Server) -> None:
    number = "+254700000102"
    sign_in(page, server, "admin", admin_password(server))
    page.goto(f"{server.base}/dashboard/conversations/{number}")
    page.evaluate("document.querySelector('form.reply input[name=csrf]').remove()")
    page.fill("#text", "forged")
    with page.expect_response(re.compile(r"/reply$")) as posted:
        page.click("form.reply button")
    assert posted.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("form has expired")
    page.goto(f"{server.base}/dashboard/conversations/{number}")
    expect(page.locator(".sms.out")).to_have_count(0)


def test_a_viewer_reads_but_cannot_send(page: Page, server: Server) -> None:
    number = "+254700000103"
    add_user(server, "vera", "viewer", "viewer password")
    sign_in(page, server, "vera", "viewer password")
    page.goto(f"{server.base}/dashboard/conversations/{number}")
    expect(page.locator("#text")).to_have_count(0)
    expect(page.locator(".hint")).to_contain_text("an operator or admin can reply")
    # A POST made by hand, with the viewer's own valid token, is refused all the same.
    token = page.locator("form.signout input[name=csrf]").get_attribute("value")
    answer = page.request.post(
        f"{server.base}/dashboard/conversations/{number}/reply",
        form={"csrf": token or "", "text": "sneaky"},
    )
    assert answer.status == 403
    page.reload()
    expect(page.locator(".sms.out")).to_have_count(0)


def test_add_a_phone_shows_a_qr_code_that_decodes_to_the_import_payload(
    page: Page, server: Server, tmp_path: Path
) -> None:
    sign_in(page, server, "admin", admin_password(server))
    page.goto(server.base + "/dashboard/phones")
    page.click("text=Add a phone")
    expect(page.locator(".warning")).to_contain_text("this machine itself")  # 127.0.0.1
    page.fill("#name", "clinic-2")
    page.click("form[action$='/phones/add'] button")
    image = tmp_path / "qr.png"
    page.locator("img.qr").screenshot(path=str(image))
    payload = json.loads(decode_qr(image))
    url = page.locator("#sync-url").inner_text()
    assert payload == {
        "title": "clinic-2",
        "url": url,
        "secret": page.locator("#secret").inner_text(),
    }
    assert url.startswith(server.base + "/smssync/d/")
    page.goto(server.base + "/dashboard/phones")
    expect(page.get_by_role("rowheader", name="clinic-2")).to_be_visible()


def test_a_new_conversation_appears_on_top_of_the_list_without_a_reload(
    page: Page, server: Server, handset: dict[str, Any]
) -> None:
    incoming(handset, "+254700000104", "an older conversation")
    sign_in(page, server, "admin", admin_password(server))
    page.evaluate("window.notReloaded = true")
    total = page.locator("#unread-total")
    before = int(total.inner_text()) if total.count() else 0
    incoming(handset, "+254700000105", "a brand new conversation")
    first = page.locator("#threads li").first
    expect(first.locator(".number")).to_have_text("+254700000105", timeout=LIVE_MS)
    expect(first.locator(".preview")).to_have_text("a brand new conversation")
    # The row's unread badge and the header's total follow the feed.
    expect(first.locator(".unread-count")).to_have_text("1")
    expect(total).to_have_text(str(before + 1))
    incoming(handset, "+254700000104", "and the older one again")
    expect(first.locator(".number")).to_have_text("+254700000104", timeout=LIVE_MS)
    expect(first.locator(".unread-count")).to_have_text("2")
    expect(page.locator("#threads li[data-number='+254700000104']")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True


def test_a_phone_coming_online_shows_on_the_phones_page_without_a_reload(
    page: Page, server: Server
) -> None:
    sign_in(page, server, "admin", admin_password(server))
    page.goto(server.base + "/dashboard/phones/add")
    page.fill("#name", "clinic-live")
    page.click("form[action$='/phones/add'] button")
    phone = {
        "sync_url": page.locator("#sync-url").inner_text(),
        "secret": page.locator("#secret").inner_text(),
    }
    page.goto(server.base + "/dashboard/phones")
    row = page.locator("tr[data-phone='clinic-live']")
    expect(row.locator(".state")).to_have_text("offline")
    page.evaluate("window.notReloaded = true")
    take_tasks(phone, timeout_s=0)  # the app's task check: the phone is seen
    expect(row.locator(".state")).to_have_text("online", timeout=LIVE_MS)
    expect(row).to_contain_text("SMSSync-Android/v3.1.1")
    assert page.evaluate("window.notReloaded") is True
