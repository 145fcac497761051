"""The dashboard in-process over both stores: sessions, roles, CSRF, the sign-in brake,
conversations with their reply box and live feed, and adding a phone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from smssync.dashboard.passwords import hash_password
from smssync.records import Role
from smssync.server.app import create_app
from smssync.settings import Settings
from smssync.store import alerts, devices, messages, users
from smssync.store.engine import Database
from tests.integration.api_helpers import incoming, phone
from tests.integration.store_helpers import queue_some

A = "+254700000001"
PASSWORD = "correct horse"
#: An argon2 hash costs ~50 ms: made once for every user of this module.
HASH = hash_password(PASSWORD)

Client = Callable[..., Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
async def app(store: Database, request: pytest.FixtureRequest) -> AsyncIterator[Starlette]:
    settings = getattr(request, "param", None) or Settings(
        auth_failures_burst=3, default_region="KE"
    )
    made = create_app(settings, store)
    async with made.router.lifespan_context(made):
        yield made


@pytest.fixture
async def client(app: Starlette, store: Database) -> AsyncIterator[Client]:
    """Make a client, signed in as a new user of the given role (or not signed in)."""
    opened: list[httpx.AsyncClient] = []

    async def make(
        role: Role | None = None, base: str = "http://sms", address: str = "127.0.0.1"
    ) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        made = httpx.AsyncClient(transport=transport, base_url=base)
        opened.append(made)
        if role is not None:
            if await users.user_by_name(store, role.value) is None:
                await users.add_user(store, role.value, role, HASH, datetime.now(UTC))
            reply = await sign_in(made, role.value, PASSWORD)
            assert reply.status_code == 303, reply.text
        return made

    yield make
    for made in opened:
        await made.aclose()


async def sign_in(c: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    form = await c.get("/dashboard/signin")
    token = csrf_of(form.text)
    return await c.post(
        "/dashboard/signin",
        data={"csrf": token, "name": name, "password": password, "next": "/dashboard/phones"},
    )


async def test_without_a_session_every_page_sends_to_sign_in(client: Client) -> None:
    c = await client()
    for path in ("/", "/dashboard"):
        reply = await c.get(path)
        assert reply.status_code == 303
        assert reply.headers["location"] == "/dashboard/conversations"
    for path in ("/dashboard/conversations", f"/dashboard/conversations/{A}", "/dashboard/phones"):
        reply = await c.get(path)
        assert reply.status_code == 303
        assert reply.headers["location"].startswith("/dashboard/signin?next=%2Fdashboard%2F")
    feed = await c.get(f"/dashboard/conversations/{A}/changes?after_in=0&after_hist=0")
    assert feed.status_code == 401 and feed.json()["ok"] is False
    post = await c.post(f"/dashboard/conversations/{A}/reply", data={"text": "hi"})
    assert post.status_code == 403


async def test_sign_in_sets_a_signed_httponly_lax_cookie_and_sign_out_ends_it(
    client: Client, store: Database
) -> None:
    c = await client()
    await users.add_user(store, "amy", Role.VIEWER, HASH, datetime.now(UTC))
    wrong = await sign_in(c, "amy", "wrong password")
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    right = await sign_in(c, "amy", PASSWORD)
    assert right.status_code == 303 and right.headers["location"] == "/dashboard/phones"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    page = await c.get("/dashboard/phones")
    assert page.status_code == 200 and "amy" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]

    # A cookie altered by the browser's owner is no session.
    forged = await client()
    value = c.cookies["smssync_session"]
    forged.cookies.set("smssync_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert (await forged.get("/dashboard/phones")).status_code == 303

    out = await c.post("/dashboard/signout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/signin"
    assert (await c.get("/dashboard/phones")).status_code == 303


@pytest.mark.parametrize("app", [Settings(public_url="https://sms.example.org")], indirect=True)
async def test_the_cookie_is_secure_behind_https(client: Client, store: Database) -> None:
    c = await client(base="https://sms")
    await users.add_user(store, "amy", Role.VIEWER, HASH, datetime.now(UTC))
    reply = await sign_in(c, "amy", PASSWORD)
    assert reply.status_code == 303 and "Secure" in reply.headers["set-cookie"]


async def test_a_new_password_or_removal_signs_the_user_out(
    client: Client, store: Database
) -> None:
    c = await client(Role.OPERATOR)
    assert (await c.get("/dashboard/phones")).status_code == 200
    await users.set_password(store, "operator", HASH, datetime.now(UTC))
    assert (await c.get("/dashboard/phones")).status_code == 303
    d = await client(Role.VIEWER)
    await users.remove_user(store, "viewer")
    assert (await d.get("/dashboard/phones")).status_code == 303


async def test_sign_in_is_braked_per_account_even_with_the_right_password(
    client: Client, store: Database
) -> None:
    await users.add_user(store, "amy", Role.VIEWER, HASH, datetime.now(UTC))
    c = await client()
    codes = [(await sign_in(c, "amy", f"guess {n}")).status_code for n in range(4)]
    assert codes == [401, 401, 401, 429]  # a burst of 3 (the fixture's settings)
    # The account is out of tries: the right password from another address waits as well,
    # while another account from that address still signs in.
    other = await client(address="10.0.0.7")
    blocked = await sign_in(other, "amy", PASSWORD)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    await users.add_user(store, "bob", Role.VIEWER, HASH, datetime.now(UTC))
    assert (await sign_in(other, "bob", PASSWORD)).status_code == 303
    # And the guessing address is out of tries for every account.
    assert (await sign_in(c, "bob", PASSWORD)).status_code == 429


async def test_a_form_without_its_token_is_refused(client: Client, store: Database) -> None:
    c = await client(Role.OPERATOR)
    for data in ({"text": "hi"}, {"text": "hi", "csrf": "not-the-token"}):
        reply = await c.post(f"/dashboard/conversations/{A}/reply", data=data)
        assert reply.status_code == 403 and "form has expired" in reply.text
    # Nor does the sign-in form go without its token.
    bare = await client()
    reply = await bare.post("/dashboard/signin", data={"name": "operator", "password": PASSWORD})
    assert reply.status_code == 403
    assert await messages.list_outbound(store) == []


async def test_a_viewer_reads_but_cannot_send(client: Client, store: Database) -> None:
    c = await client(Role.VIEWER)
    page = await c.get(f"/dashboard/conversations/{A}")
    assert page.status_code == 200 and 'name="text"' not in page.text
    reply = await c.post(
        f"/dashboard/conversations/{A}/reply", data={"text": "hi", "csrf": csrf_of(page.text)}
    )
    assert reply.status_code == 403 and "operator role" in reply.text
    assert await messages.list_outbound(store) == []
    assert (await c.get("/dashboard/phones/add")).status_code == 403


async def test_an_operator_replies_and_the_feed_shows_what_changed(
    client: Client, store: Database, api_client: httpx.AsyncClient
) -> None:
    url = await phone(store)
    await incoming(api_client, url, A, "Is the clinic open <today>?", "m1")
    c = await client(Role.OPERATOR)
    listing = await c.get("/dashboard/conversations")
    assert A in listing.text and "&lt;today&gt;" in listing.text
    page = await c.get(f"/dashboard/conversations/{A}")
    cursors = dict(re.findall(r'data-after-(in|hist)="(\d+)"', page.text))
    reply = await c.post(
        f"/dashboard/conversations/{A}/reply",
        data={"text": "Yes, until 17:00", "csrf": csrf_of(page.text)},
    )
    assert reply.status_code == 303 and reply.headers["location"] == f"/dashboard/conversations/{A}"
    [queued] = await messages.list_outbound(store)
    assert queued.to_addr == A and queued.content == "Yes, until 17:00"
    await incoming(api_client, url, A, "Thanks", "m2")
    feed = await c.get(
        f"/dashboard/conversations/{A}/changes",
        params={"after_in": cursors["in"], "after_hist": cursors["hist"]},
    )
    body = feed.json()
    keys = [item["key"] for item in body["items"]]
    assert keys[0] == f"out-{queued.message_id}" and keys[1].startswith("in-")
    assert "Thanks" in body["items"][1]["html"] and "queued" in body["items"][0]["html"]
    listing = await c.get("/dashboard/conversations")
    after = dict(re.findall(r'data-after-(at|number)="([^"]*)"', listing.text))
    assert after["number"] == A
    await incoming(api_client, url, "+254700000002", "a new one", "m3")
    moved = await c.get(
        "/dashboard/conversations/changes",
        params={"after_at": after["at"], "after_number": after["number"]},
    )
    assert [i["key"] for i in moved.json()["items"]] == ["+254700000002"]
    assert "a new one" in moved.json()["items"][0]["html"]
    later = await c.get(
        f"/dashboard/conversations/{A}/changes",
        params={"after_in": body["after_in"], "after_hist": body["after_hist"]},
    )
    assert later.json()["items"] == []


async def test_bad_input_is_a_clear_refusal_never_a_crash(client: Client, store: Database) -> None:
    c = await client(Role.OPERATOR)
    assert (await c.get("/dashboard/conversations?before_at=abc")).status_code == 400
    assert (await c.get(f"/dashboard/conversations/{A}?before_in=-1")).status_code == 400
    feed = await c.get(f"/dashboard/conversations/{A}/changes?after_in=x")
    assert feed.status_code == 400
    page = await c.get("/dashboard/conversations")
    token = csrf_of(page.text)
    empty = await c.post(f"/dashboard/conversations/{A}/reply", data={"text": " ", "csrf": token})
    assert empty.status_code == 303 and empty.headers["location"].endswith("?error=empty")
    assert "Type a reply." in (await c.get(empty.headers["location"])).text
    # A made-up message in the link is never shown.
    spoof = await c.get(f"/dashboard/conversations/{A}?error=Call+0700+now")
    assert "Call 0700" not in spoof.text
    bank = await c.get("/dashboard/conversations/MPESA")
    assert bank.status_code == 200 and 'name="text"' not in bank.text
    bad = await c.post(
        "/dashboard/conversations/not-a-number/reply", data={"text": "x", "csrf": token}
    )
    assert bad.status_code == 400
    new = await c.get("/dashboard/conversations/new?to=0700000009")
    assert new.headers["location"] == "/dashboard/conversations/+254700000009"
    assert (await c.get("/dashboard/nowhere")).status_code == 404
    assert await messages.list_outbound(store) == []


async def test_an_admin_adds_a_phone_and_sees_its_qr_code_and_warning(
    client: Client, store: Database
) -> None:
    c = await client(Role.ADMIN)
    form = await c.get("/dashboard/phones/add")
    assert "this machine itself" in form.text  # the default URL is 127.0.0.1
    added = await c.post(
        "/dashboard/phones/add", data={"name": "clinic-2", "csrf": csrf_of(form.text)}
    )
    assert added.status_code == 200
    assert 'src="data:image/png;base64,' in added.text and "/smssync/d/" in added.text
    again = await c.post(
        "/dashboard/phones/add", data={"name": "clinic-2", "csrf": csrf_of(form.text)}
    )
    assert again.status_code == 409
    listing = await c.get("/dashboard/phones")
    assert "clinic-2" in listing.text
    # A battery level is shown once the phone's alert told it (E8).
    path = await phone(store, "p-battery")
    form_alert = {"Task": "alert", "message": "Battery level is at 23%"}
    assert (await c.post(path, data=form_alert)).status_code == 200
    assert re.search(r"p-battery</a></th>.*?23 %", (await c.get("/dashboard/phones")).text, re.S)
    rows = await c.get("/dashboard/phones/rows")
    assert rows.status_code == 200 and 'data-phone="p-battery"' in rows.json()["html"]
    assert (await (await client()).get("/dashboard/phones/rows")).status_code == 401
    operator = await client(Role.OPERATOR)
    page = await operator.get("/dashboard/phones")
    refused = await operator.post(
        "/dashboard/phones/add", data={"name": "x", "csrf": csrf_of(page.text)}
    )
    assert refused.status_code == 403


async def test_alerts_are_listed_counted_and_acknowledged_by_an_operator(
    client: Client, store: Database
) -> None:
    url = await phone(store, "p1")
    assert url
    found = await devices.device_by_name(store, "p1")
    assert found is not None
    battery = {"message": "Battery level is at 12", "error_code": None, "battery_percent": 12}
    alert_id = await alerts.record_phone_alert(store, found.id, battery, datetime.now(UTC))
    assert alert_id is not None
    viewer = await client(Role.VIEWER)
    page = await viewer.get("/dashboard/alerts")
    assert page.status_code == 200
    assert "Battery low" in page.text and "12 %" in page.text and "p1" in page.text
    assert 'aria-label="1 open"' in page.text  # the header's count, on every page
    assert 'aria-label="1 open"' in (await viewer.get("/dashboard/phones")).text
    assert "Acknowledge" not in page.text  # a viewer reads only
    token = csrf_of(page.text)
    refused = await viewer.post(f"/dashboard/alerts/{alert_id}/ack", data={"csrf": token})
    assert refused.status_code == 403
    operator = await client(Role.OPERATOR)
    page = await operator.get("/dashboard/alerts")
    assert "Acknowledge" in page.text
    forged = await operator.post(f"/dashboard/alerts/{alert_id}/ack", data={})
    assert forged.status_code == 403
    done = await operator.post(
        f"/dashboard/alerts/{alert_id}/ack", data={"csrf": csrf_of(page.text)}
    )
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/alerts"
    [seen] = await alerts.list_alerts(store)
    assert seen.acknowledged_by == "dashboard:operator"
    assert "seen by dashboard:operator" in (await operator.get("/dashboard/alerts")).text
    missing = await operator.post("/dashboard/alerts/999999/ack", data={"csrf": csrf_of(page.text)})
    assert missing.status_code == 404
    bad = await operator.post("/dashboard/alerts/x/ack", data={"csrf": csrf_of(page.text)})
    assert bad.status_code == 404


async def test_the_outbox_lists_newest_first_by_pages_and_an_operator_cancels(
    client: Client, store: Database
) -> None:
    ids = await queue_some(store, 3)
    viewer = await client(Role.VIEWER)
    page = await viewer.get("/dashboard/outbox")
    assert page.status_code == 200
    assert page.text.index(ids[2]) < page.text.index(ids[1]) < page.text.index(ids[0])
    assert ">Cancel<" not in page.text  # a viewer reads only
    token = csrf_of(page.text)
    assert (
        await viewer.post(f"/dashboard/outbox/{ids[0]}/cancel", data={"csrf": token})
    ).status_code == 403
    operator = await client(Role.OPERATOR)
    page = await operator.get("/dashboard/outbox")
    token = csrf_of(page.text)
    assert (await operator.post(f"/dashboard/outbox/{ids[0]}/cancel", data={})).status_code == 403
    done = await operator.post(f"/dashboard/outbox/{ids[0]}/cancel", data={"csrf": token})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/outbox"
    [cancelled] = await messages.list_outbound(store, message_id=ids[0])
    assert cancelled.status.value == "cancelled"
    again = await operator.post(f"/dashboard/outbox/{ids[0]}/cancel", data={"csrf": token})
    assert again.headers["location"].endswith("?error=cancel")
    assert "can no longer be cancelled" in (await operator.get(again.headers["location"])).text
    only = await operator.get("/dashboard/outbox?status=cancelled")
    assert ids[0] in only.text and ids[1] not in only.text
    older = await operator.get("/dashboard/outbox?before=2")
    assert ids[0] in older.text and ids[2] not in older.text  # before row id 2: the first only
    assert (await operator.get("/dashboard/outbox?before=x")).status_code == 400
    assert (await operator.get("/dashboard/outbox?status=nope")).status_code == 400
    missing = await operator.post("/dashboard/outbox/no-such/cancel", data={"csrf": token})
    assert missing.status_code == 404
