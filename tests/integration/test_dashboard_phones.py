"""The dashboard's phone page and its admin actions (rotate, disable, remove), the outbox's
retry and phone filter, and the Activity page, in-process over both stores; the phones
are real requests to the Sync URL through the same app."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Connection, select, update
from starlette.applications import Starlette

from smssync.cli import main
from smssync.dashboard.passwords import hash_password
from smssync.records import Role
from smssync.server.app import create_app
from smssync.server.credentials import create_device
from smssync.settings import Settings
from smssync.store import devices, messages, queue, users
from smssync.store.engine import Database
from smssync.store.schema import devices as devices_table
from smssync.store.schema import outbound
from tests.integration.api_helpers import bearer, incoming, phone, poll, report
from tests.integration.store_helpers import outgoing

PASSWORD = "correct horse"
HASH = hash_password(PASSWORD)
A = "+254700000001"

Client = Callable[..., Awaitable[httpx.AsyncClient]]


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
    """Make a client of the whole server, signed in with the given role (or not)."""
    opened: list[httpx.AsyncClient] = []

    async def make(role: Role | None = None) -> httpx.AsyncClient:
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms")
        opened.append(made)
        if role is not None:
            if await users.user_by_name(store, role.value) is None:
                await users.add_user(store, role.value, role, HASH, datetime.now(UTC))
            token = csrf_of((await made.get("/dashboard/signin")).text)
            form = {"csrf": token, "name": role.value, "password": PASSWORD}
            assert (await made.post("/dashboard/signin", data=form)).status_code == 303
        return made

    yield make
    for made in opened:
        await made.aclose()


async def queue_to(store: Database, count: int, device: str | None = None) -> list[str]:
    now = datetime.now(UTC)
    batch = [replace(outgoing(A, f"m{i}", device=device), created_at=now) for i in range(count)]
    await queue.enqueue(store, batch)
    return [m.message_id for m in batch]


async def test_a_phone_page_shows_battery_alerts_app_queue_and_send_rate(
    client: Client, store: Database
) -> None:
    url = await phone(store, "p1", batch_limit=1)
    c = await client(Role.VIEWER)
    await queue_to(store, 3, device="p1")
    [wire] = await poll(c, url)
    await report(c, url, wire, -1, -1)
    # The app's last request names it (a new User-Agent is written at once).
    agent = {"user-agent": "SMSSync/3.1.1 (Android 9)"}
    alert = {"Task": "alert", "message": "Battery level is at 23%"}
    assert (await c.post(url, data=alert, headers=agent)).status_code == 200
    page = await c.get("/dashboard/phones/p1")
    assert page.status_code == 200
    assert re.search(r'id="battery">23 %', page.text)
    assert "Battery level is at 23%" in page.text  # the phone's last alert
    assert "SMSSync/3.1.1 (Android 9)" in page.text
    assert '<dd id="queue">2</dd>' in page.text
    assert "1 handed out, 1 sent, 1 delivered, 0 failed" in page.text
    assert "online" in page.text and "Rotate the secret" not in page.text  # a viewer reads
    listing = await c.get("/dashboard/phones")
    assert 'href="/dashboard/phones/p1"' in listing.text
    assert (await c.get("/dashboard/phones/nobody")).status_code == 404


async def test_rotating_refuses_the_old_secret_and_shows_the_new_one_once(
    client: Client, store: Database
) -> None:
    _, issued = await create_device(store, "p1", datetime.now(UTC), secret="old-secret-1")
    url = f"/smssync/d/{issued.token}"
    phone_c = await client()
    assert (await phone_c.get(f"{url}?task=send&secret=old-secret-1")).status_code == 200
    # Neither a viewer nor an operator may, nor a form without its token.
    for role in (Role.VIEWER, Role.OPERATOR):
        other = await client(role)
        token = csrf_of((await other.get("/dashboard/phones/p1")).text)
        refused = await other.post("/dashboard/phones/p1/rotate", data={"csrf": token})
        assert refused.status_code == 403 and f"{Role.ADMIN.value} role" in refused.text
    admin = await client(Role.ADMIN)
    page = await admin.get("/dashboard/phones/p1")
    assert (await admin.post("/dashboard/phones/p1/rotate", data={})).status_code == 403
    assert (await phone_c.get(f"{url}?task=send&secret=old-secret-1")).status_code == 200

    done = await admin.post("/dashboard/phones/p1/rotate", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and 'src="data:image/png;base64,' in done.text
    secret = re.search(r'<code id="secret">([^<]+)</code>', done.text)
    shown_url = re.search(r'<code id="sync-url">([^<]+)</code>', done.text)
    assert secret and shown_url and shown_url.group(1).endswith(url)  # the URL stays
    old = await phone_c.get(f"{url}?task=send&secret=old-secret-1")
    assert old.status_code == 403 and old.json()["payload"]["success"] is False
    new = await phone_c.get(f"{url}?task=send&secret={secret.group(1)}")
    assert new.status_code == 200
    # Shown only once: the page read again has no secret.
    assert 'id="secret"' not in (await admin.get("/dashboard/phones/p1")).text


async def test_a_disabled_phone_is_refused_until_enabled_and_its_queue_moves_on(
    client: Client, store: Database
) -> None:
    url = await phone(store, "p1")
    other = await phone(store, "p2")
    admin = await client(Role.ADMIN)
    assert await poll(admin, url) == []  # p1 has polled: it is online
    [soft] = await queue_to(store, 1)
    await store.write(_assign, soft, "p1")
    token = csrf_of((await admin.get("/dashboard/phones/p1")).text)
    off = await admin.post("/dashboard/phones/p1/disable", data={"csrf": token})
    assert off.status_code == 303 and off.headers["location"] == "/dashboard/phones/p1"
    refused = await admin.get(f"{url}?task=send")
    assert refused.status_code == 403
    assert refused.json()["payload"]["error"] == "this phone is disabled"
    assert (await admin.post(url, data={"from": A, "message": "hi"})).status_code == 403
    off_now = await devices.device_by_name(store, "p1")
    assert off_now is not None and off_now.disabled_at is not None
    page = await admin.get("/dashboard/phones/p1")
    assert "disabled" in page.text and ">Enable</button>" in page.text
    assert "disabled" in (await admin.get("/dashboard/phones")).text
    # Its softly routed SMS went back to the shared queue: another phone sends it.
    assert len(await poll(admin, other)) == 1
    [moved] = await messages.list_outbound(store, message_id=soft)
    assert moved.device == "p2"

    on = await admin.post("/dashboard/phones/p1/enable", data={"csrf": token})
    assert on.status_code == 303
    assert (await admin.get(f"{url}?task=send")).status_code == 200
    found = await devices.device_by_name(store, "p1")
    assert found is not None and found.disabled_at is None


def _assign(conn: Connection, message_id: str, name: str) -> None:
    # A soft routing choice, as the sticky route makes once the liveness check saw p1.
    device_id = conn.execute(
        select(devices_table.c.id).where(devices_table.c.name == name)
    ).scalar_one()
    conn.execute(update(outbound).where(outbound.c.uuid == message_id).values(device_id=device_id))


def _purge(conn: Connection, message_id: str) -> None:
    # What retention leaves of a failed SMS past its days.
    conn.execute(
        update(outbound)
        .where(outbound.c.uuid == message_id)
        .values(status="failed", content="", purged_at=1)
    )


async def test_removing_a_phone_takes_a_confirmation_step(client: Client, store: Database) -> None:
    url = await phone(store, "p1")
    admin = await client(Role.ADMIN)
    token = csrf_of((await admin.get("/dashboard/phones/p1")).text)
    first = await admin.post("/dashboard/phones/p1/remove", data={"csrf": token})
    assert first.status_code == 303 and first.headers["location"].endswith("?remove=1")
    assert await devices.device_by_name(store, "p1") is not None
    confirm = await admin.get(first.headers["location"])
    assert "Type the phone's name to confirm" in confirm.text
    wrong = await admin.post("/dashboard/phones/p1/remove", data={"csrf": token, "confirm": "p"})
    assert wrong.headers["location"].endswith("?remove=1")
    operator = await client(Role.OPERATOR)
    page = await operator.get("/dashboard/phones/p1?remove=1")
    assert "Type the phone" not in page.text
    refused = await operator.post(
        "/dashboard/phones/p1/remove", data={"csrf": csrf_of(page.text), "confirm": "p1"}
    )
    assert refused.status_code == 403 and await devices.device_by_name(store, "p1") is not None

    done = await admin.post("/dashboard/phones/p1/remove", data={"csrf": token, "confirm": "p1"})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/phones"
    assert await devices.device_by_name(store, "p1") is None
    assert (await admin.get(f"{url}?task=send")).status_code == 403
    gone = await admin.post("/dashboard/phones/p1/disable", data={"csrf": token})
    assert gone.status_code == 404


async def test_retry_queues_a_failed_sms_again_and_a_phone_takes_it(
    client: Client, store: Database
) -> None:
    url = await phone(store, "p1")
    [failed, waiting] = await queue_to(store, 2)
    operator = await client(Role.OPERATOR)
    first = await poll(operator, url)
    await report(operator, url, first[0], 1, 0)  # failed: generic failure
    viewer = await client(Role.VIEWER)
    seen = await viewer.get("/dashboard/outbox")
    assert f"/outbox/{failed}/retry" not in seen.text  # a viewer is not offered it
    page = await operator.get("/dashboard/outbox?phone=p1")
    assert f"/outbox/{failed}/retry" in page.text
    assert f"/outbox/{waiting}/retry" not in page.text  # dispatched: not retryable
    token = csrf_of(page.text)
    forged = await operator.post(f"/dashboard/outbox/{failed}/retry", data={})
    assert forged.status_code == 403
    refused = await viewer.post(f"/dashboard/outbox/{failed}/retry", data={"csrf": token})
    assert refused.status_code == 403

    done = await operator.post(
        f"/dashboard/outbox/{failed}/retry", data={"csrf": token, "phone": "p1"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/outbox?phone=p1"
    [again] = await messages.list_outbound(store, message_id=failed)
    assert again.status.value == "queued" and again.reason is None
    assert [(h.status.value, h.detail) for h in again.history][-1] == ("queued", "retry")
    # The phone takes it as a new task: a wire id it has never seen (G-13).
    second = await poll(operator, url)
    assert len(second) == 1 and second[0] not in first
    [taken] = await messages.list_outbound(store, message_id=failed)
    assert taken.status.value == "dispatched"
    twice = await operator.post(f"/dashboard/outbox/{failed}/retry", data={"csrf": token})
    assert twice.headers["location"].endswith("?error=retry")
    assert "Only a failed or expired SMS" in (await operator.get(twice.headers["location"])).text
    missing = await operator.post("/dashboard/outbox/no-such/retry", data={"csrf": token})
    assert missing.status_code == 404
    assert (await operator.get("/dashboard/outbox?phone=" + "x" * 101)).status_code == 400


async def test_the_api_retries_failed_and_expired_sms_only(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    url = await phone(store, "p1")
    [failed] = await queue_to(store, 1, device="p1")  # pinned: it waits for p1 again
    [wire] = await poll(api_client, url)
    await report(api_client, url, wire, 1, 0)
    expiring = replace(outgoing(A, "late"), expires_at=datetime.now(UTC) - timedelta(seconds=9))
    await queue.enqueue(store, [expiring])
    await poll(api_client, url)  # the sweep expires it
    send = bearer(keys["send"])
    read = await api_client.post(f"/api/v1/messages/{failed}/retry", headers=bearer(keys["read"]))
    assert read.status_code == 403
    for message_id in (failed, expiring.message_id):
        done = await api_client.post(f"/api/v1/messages/{message_id}/retry", headers=send)
        assert done.status_code == 200, done.text
        assert done.json()["message"]["status"] == "queued"
    [pinned] = await messages.list_outbound(store, message_id=failed)
    assert pinned.device == "p1"
    again = await api_client.post(f"/api/v1/messages/{failed}/retry", headers=send)
    assert again.status_code == 409 and again.json()["ok"] is False
    missing = await api_client.post("/api/v1/messages/nope/retry", headers=send)
    assert missing.status_code == 404
    # Nor one whose text retention emptied: it would go out empty.
    [emptied] = await queue_to(store, 1)
    await store.write(_purge, emptied)
    purged = await api_client.post(f"/api/v1/messages/{emptied}/retry", headers=send)
    assert purged.status_code == 409 and "retention" in purged.json()["error"]
    # The expired one no longer runs out: a phone takes both.
    assert len(await poll(api_client, url)) == 2


async def test_the_activity_page_counts_a_known_set_of_sms(client: Client, store: Database) -> None:
    url = await phone(store, "p1")
    c = await client(Role.VIEWER)
    for n in range(3):
        await incoming(c, url, A, f"in {n}", f"m{n}")
    await queue_to(store, 3)
    wires = await poll(c, url)
    await report(c, url, wires[0], -1, -1)  # sent, delivered
    await report(c, url, wires[1], -1, 0)  # sent, not delivered
    await report(c, url, wires[2], 1, 0)  # failed
    today = datetime.now(UTC).date()
    page = await c.get("/dashboard/activity")
    assert page.status_code == 200 and 'aria-current="page">Activity' in page.text
    table = page.text.split('id="sms-table"')[1].split("</table>")[0]
    row = re.search(rf"<th scope=\"row\">{today.isoformat()}</th>(.*?)</tr>", table)
    assert row and re.findall(r"<td>(\d+)</td>", row.group(1)) == ["3", "2", "1", "1"]
    assert table.count("<tr>") == 1 + 7 + 1  # head, a week of days, total
    rates = page.text.split('id="rate-table"')[1].split("</table>")[0]
    cells = re.findall(r"<td>([^<]+)</td>", rates)
    assert "p1" in rates and cells == ["3", "2", "1", "2", "50 %"]
    assert "<svg" in page.text and 'class="bar-received"' in page.text
    hours = await c.get(f"/dashboard/activity?from={today}&to={today}&bucket=hour")
    hourly = hours.text.split('id="sms-table"')[1].split("</table>")[0]
    assert hourly.count("<tr>") == 1 + 24 + 1
    total = re.search(r"<tfoot><tr><th scope=\"row\">Total</th>(.*?)</tr>", hourly)
    assert total and re.findall(r"<td>(\d+)</td>", total.group(1)) == ["3", "2", "1", "1"]
    month_ago, weeks_ago = today - timedelta(days=30), today - timedelta(days=20)
    empty = await c.get(f"/dashboard/activity?from={month_ago}&to={weeks_ago}")
    assert "No SMS was handed to a phone in this range." in empty.text
    for bad in (
        "bucket=week",
        "from=yesterday",
        "from=2026-02-10&to=2026-02-01",
        "from=2026-01-01&to=2026-02-01&bucket=hour",
        "from=1900-01-01&to=2026-01-01",
    ):
        assert (await c.get(f"/dashboard/activity?{bad}")).status_code == 400, bad


def test_the_cli_disables_and_enables_with_the_same_verb(tmp_path: Path) -> None:
    def run(*args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path)])

    assert run("device", "add", "p1", "--json").exit_code == 0
    done = run("device", "disable", "p1")
    assert done.exit_code == 0 and "disabled p1" in done.output
    with sqlite3.connect(tmp_path / "smssync.db") as db:
        [when] = db.execute("SELECT disabled_at FROM devices WHERE name = 'p1'").fetchone()
    assert when is not None
    assert "enabled p1" in run("device", "enable", "p1").output
    with sqlite3.connect(tmp_path / "smssync.db") as db:
        assert db.execute("SELECT disabled_at FROM devices").fetchone() == (None,)
    missing = run("device", "disable", "nobody")
    assert missing.exit_code == 1 and "no device named 'nobody'" in missing.output
