"""The dashboard's Compose and Campaign pages in-process over both stores: one SMS, a list
with an unreadable and an opted-out number, a CSV with placeholders and its preview, the
live counter, roles and CSRF, pause/resume/cancel, the results export, upload limits."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from smssync.dashboard.compose import MAX_ROWS, MAX_UPLOAD_BYTES
from smssync.dashboard.passwords import hash_password
from smssync.records import OutboundStatus, Role
from smssync.serialize import RESULT_COLUMNS
from smssync.server.app import create_app
from smssync.settings import Settings
from smssync.store import campaigns, messages, optouts, users
from smssync.store.engine import Database

PASSWORD = "correct horse"
#: An argon2 hash costs ~50 ms: made once for every user of this module.
HASH = hash_password(PASSWORD)
Client = Callable[[Role], Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
async def app(store: Database) -> AsyncIterator[Starlette]:
    made = create_app(Settings(default_region="KE"), store)
    async with made.router.lifespan_context(made):
        yield made


@pytest.fixture
async def client(app: Starlette, store: Database) -> AsyncIterator[Client]:
    """Make a client signed in as a new user of the given role."""
    opened: list[httpx.AsyncClient] = []

    async def make(role: Role) -> httpx.AsyncClient:
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms")
        opened.append(made)
        if await users.user_by_name(store, role.value) is None:
            await users.add_user(store, role.value, role, HASH, datetime.now(UTC))
        form = await made.get("/dashboard/signin")
        reply = await made.post(
            "/dashboard/signin",
            data={"csrf": csrf_of(form.text), "name": role.value, "password": PASSWORD},
        )
        assert reply.status_code == 303, reply.text
        return made

    yield make
    for made in opened:
        await made.aclose()


async def token(c: httpx.AsyncClient) -> str:
    return csrf_of((await c.get("/dashboard/campaigns")).text)


def campaign_id(reply: httpx.Response) -> int:
    assert reply.status_code == 303, reply.text
    found = re.fullmatch(r"/dashboard/campaigns/(\d+)", reply.headers["location"])
    assert found, reply.headers["location"]
    return int(found.group(1))


async def test_one_number_is_one_sms_in_its_conversation(client: Client, store: Database) -> None:
    c = await client(Role.OPERATOR)
    page = await c.get("/dashboard/compose")
    assert page.status_code == 200
    assert 'name="region" value="KE"' in page.text and "The server's default is KE" in page.text
    sent = await c.post(
        "/dashboard/compose",
        data={
            "csrf": csrf_of(page.text),
            "text": "Your results are ready",
            "to": "0700 000001",
            "do": "send",
        },
        files={"csv": ("", b"", "application/octet-stream")},  # a browser's empty file field
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/dashboard/conversations/+254700000001"
    [queued] = await messages.list_outbound(store)
    assert queued.to_addr == "+254700000001" and queued.content == "Your results are ready"
    assert await campaigns.list_campaigns(store) == []
    # With a send window, one number is a campaign: the window is kept.
    windowed = await c.post(
        "/dashboard/compose",
        data={
            "csrf": csrf_of(page.text),
            "text": "Tomorrow at 9",
            "to": "0700000001",
            "window_from": "08:00",
            "window_to": "20:00",
            "do": "send",
        },
    )
    made = await campaigns.campaign(store, campaign_id(windowed))
    assert made.total == 1 and made.window is not None and made.window.tz is None


async def test_a_list_lists_the_unreadable_number_skips_the_opted_out_and_makes_a_campaign(
    client: Client, store: Database
) -> None:
    await optouts.add_opt_out(store, "+254700000002", "stop", datetime.now(UTC))
    c = await client(Role.OPERATOR)
    form = {
        "csrf": await token(c),
        "text": "Clinic closed on Friday",
        "to": "0700000001\n0700000002, not-a-number\n+254700000003",
        "do": "preview",
    }
    preview = await c.post("/dashboard/compose", data=form)
    assert preview.status_code == 200
    html = preview.text
    assert "2 of 4 will be sent" in html
    assert re.search(r'id="plan-opted-out">1<', html) and re.search(r'id="plan-invalid">1<', html)
    assert "not-a-number" in html and "is not a phone number" in html
    assert "on the opt-out list" in html and "+254700000003" in html
    assert "about 1 minute at 30 SMS a minute" in html  # no phone online: one at 30
    assert 'value="0700000001\n0700000002, not-a-number\n+254700000003"' not in html  # a textarea
    assert await messages.list_outbound(store) == []  # a preview stores nothing

    made = campaign_id(await c.post("/dashboard/compose", data=form | {"do": "send"}))
    campaign = await campaigns.campaign(store, made)
    assert campaign.total == 4
    assert campaign.recipients["invalid"] == 1 and campaign.recipients["opted_out"] == 1
    queued = await messages.list_outbound(store)
    assert sorted(m.to_addr for m in queued) == ["+254700000001", "+254700000003"]
    page = await c.get(f"/dashboard/campaigns/{made}")
    assert page.status_code == 200 and "Clinic closed on Friday" in page.text
    assert re.search(r'data-count="skipped">1<', page.text)
    assert re.search(r'data-count="invalid">1<', page.text)
    assert re.search(r'data-count="queued">2<', page.text)
    assert "Not sent (2)" in page.text and "not-a-number" in page.text
    listing = await c.get("/dashboard/campaigns")
    assert f'href="/dashboard/campaigns/{made}"' in listing.text

    # The results: every recipient in the input's order, streamed, for a viewer too.
    viewer = await client(Role.VIEWER)
    export = await viewer.get(f"/dashboard/campaigns/{made}/results.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert f'filename="campaign-{made}.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert list(rows[0].keys()) == list(RESULT_COLUMNS)
    assert [(r["to_raw"], r["to"], r["state"], r["status"]) for r in rows] == [
        ("0700000001", "+254700000001", "released", OutboundStatus.QUEUED.value),
        ("0700000002", "+254700000002", "opted_out", ""),
        ("not-a-number", "", "invalid", ""),
        ("+254700000003", "+254700000003", "released", OutboundStatus.QUEUED.value),
    ]
    assert "not a phone number" in rows[2]["error"]
    assert (await viewer.get("/dashboard/campaigns/999999/results.csv")).status_code == 404


async def test_a_csv_fills_placeholders_in_a_preview_then_sends_without_a_second_upload(
    client: Client, store: Database
) -> None:
    c = await client(Role.OPERATOR)
    people = b"Phone,first\n07700 900123,Amina\n07700 900124,\n07700 900125,<b>Joe</b>\n"
    form = {
        "csrf": await token(c),
        "text": "Dear {first}, your appointment is at 9",
        "region": "gb",
        "window_from": "08:00",
        "window_to": "20:00",
        "window_tz": "Europe/London",
        "name": "Reminders",
        "do": "preview",
    }
    upload = {"csv": ("people.csv", people, "text/csv")}
    preview = await c.post("/dashboard/compose", data=form, files=upload)
    assert preview.status_code == 200, preview.text
    assert (
        "+447700900123" in preview.text and "Dear Amina, your appointment is at 9" in preview.text
    )
    assert "&lt;b&gt;Joe&lt;/b&gt;" in preview.text and "<b>Joe" not in preview.text
    # The second row lacks its {first}: listed by its CSV line, never dropped.
    assert re.search(r"<td>3</td><td>07700 900124</td><td>no value for \{first\}", preview.text)
    assert "Using <strong>people.csv</strong>" in preview.text
    carried = re.search(r'name="csv_text" value="([^"]*)"', preview.text)
    assert carried and "Amina" in carried.group(1)

    both = await c.post("/dashboard/compose", data=form | {"to": "0700000001"}, files=upload)
    assert both.status_code == 400 and "not both" in both.text

    # Sending posts the carried CSV back (the browser's hidden field), no file chosen.
    sent = await c.post(
        "/dashboard/compose",
        data=form | {"do": "send", "csv_text": people.decode(), "csv_name": "people.csv"},
        files={"csv": ("", b"", "application/octet-stream")},
    )
    campaign = await campaigns.campaign(store, campaign_id(sent))
    assert campaign.name == "Reminders" and campaign.region == "GB"
    assert campaign.window is not None and campaign.window.tz == "Europe/London"
    assert campaign.recipients["invalid"] == 1 and campaign.total == 3
    page = await c.get(f"/dashboard/campaigns/{campaign.id}")
    assert "08:00–20:00 Europe/London" in page.text


async def test_the_counter_feed_counts_with_smssync_gsm(client: Client, app: Starlette) -> None:
    c = await client(Role.OPERATOR)
    csrf = await token(c)

    async def count(text: str) -> dict[str, object]:
        reply = await c.post("/dashboard/compose/count", data={"csrf": csrf, "text": text})
        assert reply.status_code == 200
        body: dict[str, object] = reply.json()
        return body

    plain = await count("Dear {first}, 10 € off")
    assert plain["encoding"] == "gsm7" and plain["segments"] == 1
    assert plain["characters"] == 22 and plain["placeholders"] == ["first"]
    assert plain["label"] == "22 characters · GSM-7 · 1 SMS"
    assert (await count("x" * 161))["segments"] == 2
    emoji = await count("Habari 😀")
    assert emoji["encoding"] == "ucs2" and emoji["label"] == "8 characters · UCS-2 · 1 SMS"
    assert (await count(""))["segments"] == 0
    assert "not a plain {column} placeholder" in str((await count("{a.b}"))["problem"])
    forged = await c.post("/dashboard/compose/count", data={"text": "x"})
    assert forged.status_code == 403
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sms") as anonymous:
        reply = await anonymous.post("/dashboard/compose/count", data={"text": "x"})
        assert reply.status_code == 401


async def test_viewers_read_campaigns_and_forms_need_their_token(
    client: Client, store: Database
) -> None:
    operator = await client(Role.OPERATOR)
    form = {"text": "Hello", "to": "0700000001,0700000002", "do": "send"}
    forged = await operator.post("/dashboard/compose", data=form)
    assert forged.status_code == 403 and "form has expired" in forged.text
    made = campaign_id(
        await operator.post("/dashboard/compose", data=form | {"csrf": await token(operator)})
    )
    assert (await operator.post(f"/dashboard/campaigns/{made}/pause", data={})).status_code == 403

    viewer = await client(Role.VIEWER)
    assert (await viewer.get("/dashboard/compose")).status_code == 403
    listing = await viewer.get("/dashboard/campaigns")
    assert listing.status_code == 200 and ">Compose<" not in listing.text
    page = await viewer.get(f"/dashboard/campaigns/{made}")
    assert page.status_code == 200 and "Pause" not in page.text
    csrf = csrf_of(page.text)
    for path in ("/dashboard/compose", f"/dashboard/campaigns/{made}/pause"):
        refused = await viewer.post(path, data=form | {"csrf": csrf})
        assert refused.status_code == 403 and "operator role" in refused.text
    assert (await campaigns.campaign(store, made)).status.value == "running"
    assert len(await messages.list_outbound(store)) == 2


async def test_pause_resume_cancel_and_the_live_counts(client: Client, store: Database) -> None:
    c = await client(Role.OPERATOR)
    csrf = await token(c)
    to = "\n".join(f"07000000{i:02d}" for i in range(3))
    made = campaign_id(
        await c.post(
            "/dashboard/compose", data={"csrf": csrf, "text": "Hi", "to": to, "do": "send"}
        )
    )
    url = f"/dashboard/campaigns/{made}"
    assert ">Pause<" in (await c.get(url)).text
    paused = await c.post(f"{url}/pause", data={"csrf": csrf})
    assert paused.status_code == 303 and paused.headers["location"] == url
    assert (await campaigns.campaign(store, made)).status.value == "paused"
    assert await messages.list_outbound(store) == []  # taken back from the queue
    page = await c.get(url)
    assert ">Resume<" in page.text and ">Pause<" not in page.text
    again = await c.post(f"{url}/pause", data={"csrf": csrf})
    assert again.headers["location"] == f"{url}?error=state"
    assert "paused now: that is no longer possible" in (await c.get(again.headers["location"])).text
    assert (await c.post(f"{url}/resume", data={"csrf": csrf})).status_code == 303
    assert (await campaigns.campaign(store, made)).status.value == "running"

    live = await c.get(f"{url}/counts")
    assert live.json()["status"] == "running" and 'data-count="held">3<' in live.json()["html"]
    assert (await c.post(f"{url}/cancel", data={"csrf": csrf})).status_code == 303
    live = await c.get(f"{url}/counts")
    body = live.json()
    assert body["status"] == "cancelled" and body["final"] is True
    assert 'data-count="cancelled">3<' in body["html"] and "Cancel the campaign" not in body["html"]
    assert (await c.get("/dashboard/campaigns/999999/counts")).status_code == 404
    assert (
        await c.post("/dashboard/campaigns/999999/pause", data={"csrf": csrf})
    ).status_code == 404
    assert (await c.get("/dashboard/campaigns/abc")).status_code == 404
    assert (await c.get("/dashboard/campaigns?before=x")).status_code == 400


async def test_uploads_over_the_limits_are_refused_clearly(client: Client, store: Database) -> None:
    c = await client(Role.OPERATOR)
    csrf = await token(c)
    form = {"csrf": csrf, "text": "Hi", "do": "preview"}
    big = b"to\n" + b"0700000001\n" * (MAX_UPLOAD_BYTES // 11 + 1)
    refused = await c.post(
        "/dashboard/compose", data=form, files={"csv": ("a.csv", big, "text/csv")}
    )
    assert refused.status_code == 413 and "larger than 2 MB" in refused.text

    # A chunked body declares no length: it is counted as it arrives.
    boundary = "b0undary"

    async def chunks() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csv"; filename="c.csv"\r\n'
            "Content-Type: text/csv\r\n\r\nto\n"
        ).encode()
        for _ in range(3):
            yield b"0700000001\n" * (MAX_UPLOAD_BYTES // 22)

    chunked = await c.post(
        "/dashboard/compose",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert chunked.status_code == 413

    many = b"to\n" + b"0700000001\n" * (MAX_ROWS + 1)
    rows = await c.post("/dashboard/compose", data=form, files={"csv": ("m.csv", many, "text/csv")})
    assert rows.status_code == 400 and "At most 10,000 recipients" in rows.text
    two = await c.post(
        "/dashboard/compose",
        data=form,
        files=[
            ("csv", ("a.csv", b"to\n1\n", "text/csv")),
            ("csv", ("b.csv", b"to\n2\n", "text/csv")),
        ],
    )
    assert two.status_code == 400
    latin = await c.post(
        "/dashboard/compose", data=form, files={"csv": ("l.csv", "to,n\n1,é\n".encode("latin-1"))}
    )
    assert latin.status_code == 400 and "not UTF-8" in latin.text
    empty = await c.post("/dashboard/compose", data=form | {"text": " "})
    assert empty.status_code == 400 and "Type the text" in empty.text
    window = await c.post("/dashboard/compose", data=form | {"to": "1", "window_from": "25:00"})
    assert window.status_code == 400 and "Send window" in window.text
    region = await c.post("/dashboard/compose", data=form | {"to": "1", "region": "ZZ"})
    assert region.status_code == 400 and "not a country code" in region.text
    assert await messages.list_outbound(store) == []
