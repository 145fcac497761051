"""Screenshots of every dashboard page for docs/dashboard.md, from a real ``smssync serve``
with a few conversations in it (run by scripts/screenshots; the page is rewritten whole).

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

PAGE = """# The dashboard

`smssync serve` serves the dashboard itself at **`/dashboard`** (`/` leads there): the
conversations, a reply box, and which phone is alive, for the people who run the phones.
Every asset comes from smssync (no CDN, no build step), so it works on a LAN with no
internet. These screenshots are made by `scripts/screenshots` from a real server.

## Signing in

The first start of `serve` on a new data directory creates the user `admin` and prints its
one-time password beside the phone's Sync URL. More people, with a role each:

```sh
smssync user add amina --role operator      # prompts for the password twice
echo "$PASSWORD" | smssync user add joe --role viewer --password-stdin
smssync user list
smssync user set-password admin             # signs every browser of admin out
smssync user remove joe                     # joe's sessions end with the next click
```

| role | may |
|---|---|
| viewer | read conversations and phones |
| operator | also reply and start conversations |
| admin | also add phones |

Passwords are stored as argon2id hashes. A session is a signed cookie (`HttpOnly`,
`SameSite=Lax`, `Secure` when the page comes over HTTPS or the public URL is `https://`),
valid for 12 hours, void once its user is removed or changes password. Sign-in attempts
are limited per address and per account (`SMSSYNC_AUTH_FAILURES_BURST` failures, refilled
at `SMSSYNC_AUTH_FAILURES_PER_MIN`): an account out of tries refuses even the right
password until it refills, so guessing from many addresses gains nothing. Every form that
changes something carries a CSRF token bound to the session; a form without it, or a
viewer's POST, is refused with 403. A page without a session leads to the sign-in form.

![Sign in](dashboard/signin.png)

## Conversations

Every incoming and outgoing SMS, threaded by the other party's number, the most recently
active first, paged by keyset (`Older conversations`), searchable by text or number. A
conversation with new activity moves to the top without a reload. An operator opens a new
conversation by typing a number (normalised in the default region).

![Conversations](dashboard/conversations.png)

A conversation shows both directions interleaved, each outgoing SMS with its status
(`queued → dispatched → accepted → sent → delivered`, or `failed` with the phone's reason)
and its history. The reply goes out through the usual routing: to the phone that last
talked to this number while it is healthy, else to whichever phone polls first. The page
asks the store every 2 seconds for what changed since its cursors (new incoming SMS, an
outgoing SMS queued or changing status), so it stays current with `serve --workers N` and
with several servers on one PostgreSQL. The counter under the reply box shows characters,
encoding (GSM-7 or UCS-2) and SMS parts.

![A conversation](dashboard/thread.png)

On a phone's screen:

![A conversation on a phone](dashboard/thread-mobile.png)

## Phones

Online or offline (polled within its liveness window), when each phone was last seen, its
battery as its last alert told it, how many SMS wait for it, and its app (User-Agent). The
table refreshes from the store every 3 seconds: a phone going online or offline shows
without a reload.

![Phones](dashboard/phones.png)

*Add a phone* (admins) registers one and shows, once, its Sync URL, its secret and a QR
code of the app's import payload to scan in *Settings → Sync URL*. When the URL phones are
given is this machine's loopback address, the page says so: start `serve` with
`--public-url` set to an address the phones reach.

![Add a phone](dashboard/phone-add.png)

## Compose and campaigns

*Compose* (operators and admins) sends one text to:

- **one number**: one SMS, through the usual routing, exactly like a reply (the opt-out
  list, which is for bulk sends, does not stop it); the page opens its conversation;
- **a pasted list** (one number per line, or separated by commas or semicolons), or
- **a CSV file** with a header line: the number in a column named `to`, `number`, `phone`,
  `mobile`, `msisdn` or `phone_number`; every other column fills a `{placeholder}` of the
  text (`Dear {first}, …`). An upload is at most **2 MB and 10,000 rows**: a larger one is
  refused with 413 (the size) or 400 (the rows), saying so; bigger lists go through the API
  or `smssync campaign create` ([campaigns](campaigns.md)).

Under the text a counter shows its characters, encoding (GSM-7 or UCS-2) and SMS parts as
`smssync.gsm` counts them (the page asks the server, `POST /dashboard/compose/count`, as
you type), and which `{placeholders}` it fills. *Preview* shows, before anything is
stored: how many recipients will be sent, the first five SMS as rendered, the SMS parts in
all, every number that will **not** be sent and why (not a phone number, a row missing
its placeholder's value, on the opt-out list), listed by CSV line, never dropped
silently, and an estimate of how long the online phones need at their pacing (30 SMS a
minute each by default; one phone when none is online). The uploaded CSV travels back
with the preview, so *Send* needs no second upload.

National numbers are read in the **default region**, shown under the field and
changeable for this send only. Numbers on the **opt-out list** (a `STOP` from them) are
skipped and counted. An optional **daily send window** (from, to, and a time zone, or
each recipient's own zone from their number) keeps the phones from sending at night.

A list or a CSV (and one number with a window) becomes one **campaign**: the page goes to
the campaign's page. *Campaigns* lists them newest first, 50 to a page (keyset on the id),
with their status and delivered and failed counts. A campaign's page shows its text,
window and region; a bar of the recipients **released** to the phones' queue (a campaign
is released a few minutes of sending at a time, see [campaigns](campaigns.md)) and one of
those delivered or failed; and the counts of held, queued, sent, delivered, failed,
cancelled, skipped (opted out) and invalid recipients. They fill in without a reload (the
page asks the store every 2 seconds, so every worker and server agrees). Operators
**pause** (what is queued and not yet taken by a phone comes back), **resume** and
**cancel** it; a button pressed after another person changed the campaign says it is no
longer possible. *Download the results (CSV)* streams one row per recipient in the input's
order (`to_raw, to, state, error, uuid, status, device, reason, sent_at, delivered_at`, the
API's export). The first 100 recipients not sent are listed on the page; the export has
every one.

![Compose](dashboard/compose.png)

![A campaign](dashboard/campaign.png)

## Scale

The list of conversations reads the `threads` table (one row per number, kept by the verbs
that store SMS, in the same transaction), a thread reads the `(from_addr, id)` and
`(to_addr, id)` indexes, and the live feed reads from its cursors: each is a keyset page
over an index, as fast with 1,000,000 SMS as with 1,000. `bench/dashboard_pages.py` measures
it on both stores (see bench/README.md). A search by text is a substring match, which no
index serves: it scans the SMS, and takes seconds at a million.

## Not here yet

Bulk send (campaigns), the outbox, alerts, rules, webhooks, API keys and users as pages,
activity charts, unread counts, filters by phone and date, an indexed text search, and
rotating, disabling or removing a phone from its page are the rest of issue 18.
"""


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


#: A small bulk send for the Compose page: one number unreadable, one row without its name.
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


def main(docs: Path) -> None:
    """Start a server with some SMS, sign in, and write the screenshots and the page."""
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
                _compose(page, server)
                page.screenshot(path=str(shots / "compose.png"), full_page=True)
                page.click("#send-previewed")
                page.wait_for_selector("#released-bar")
                page.screenshot(path=str(shots / "campaign.png"), full_page=True)
                browser.close()
        finally:
            server.stop()
    (docs / "dashboard.md").write_text(PAGE)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))
