"""The dashboard's management pages in-process over both stores: rules, webhooks (their
deliveries, dead letters and redelivery), API keys and users, for admins only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from smssync.dashboard import webhooks as webhook_pages
from smssync.dashboard.passwords import hash_password
from smssync.records import DeliveryOutcome, DeliveryState, Role
from smssync.server.app import create_app
from smssync.settings import Settings
from smssync.store import apikeys, deliveries, messages, rules, users, webhooks
from smssync.store.engine import Database
from tests.integration.api_helpers import bearer, incoming, phone

A = "+254700000001"
PASSWORD = "correct horse"
#: An argon2 hash costs ~50 ms: made once for every user of this module.
HASH = hash_password(PASSWORD)
#: Nothing listens on the discard port: a receiver that always fails, refused at once.
FAILING = "http://127.0.0.1:9/hook"
REDELIVER = "/dashboard/webhooks/deliveries/{}/redeliver"
PAGES = ("/dashboard/rules", "/dashboard/webhooks", "/dashboard/keys", "/dashboard/users")

Client = Callable[..., Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
async def app(store: Database) -> AsyncIterator[Starlette]:
    # Loopback allowed, so that the failing receiver is tried (and fails), not refused.
    made = create_app(Settings(default_region="KE", webhook_allow="127.0.0.0/8"), store)
    async with made.router.lifespan_context(made):
        yield made


@pytest.fixture
async def client(app: Starlette, store: Database) -> AsyncIterator[Client]:
    """Make a client signed in as the user ``name`` (made with ``role`` when missing)."""
    opened: list[httpx.AsyncClient] = []

    async def make(role: Role | None = Role.ADMIN, name: str | None = None) -> httpx.AsyncClient:
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms")
        opened.append(made)
        if role is not None:
            name = name or role.value
            if await users.user_by_name(store, name) is None:
                await users.add_user(store, name, role, HASH, datetime.now(UTC))
            assert (await sign_in(made, name, PASSWORD)).status_code == 303
        return made

    yield make
    for made in opened:
        await made.aclose()


async def sign_in(c: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    token = csrf_of((await c.get("/dashboard/signin")).text)
    return await c.post(
        "/dashboard/signin", data={"csrf": token, "name": name, "password": password}
    )


async def token_of(c: httpx.AsyncClient, path: str = "/dashboard/rules") -> str:
    return csrf_of((await c.get(path)).text)


async def test_only_admins_see_or_use_the_management_pages(client: Client, store: Database) -> None:
    endpoint = await webhooks.add_webhook(store, FAILING, ["message.sent"], "s", datetime.now(UTC))
    posts = [
        ("/dashboard/rules", {"kind": "keyword", "pattern": "JOIN", "tag": "x"}),
        ("/dashboard/webhooks", {"url": "https://hooks.example.org/x"}),
        (f"/dashboard/webhooks/{endpoint}/remove", {}),
        ("/dashboard/webhooks/deliveries/1/redeliver", {}),
        ("/dashboard/keys", {"name": "k", "scopes": "admin"}),
        ("/dashboard/users", {"name": "eve", "role": "admin", "password": PASSWORD}),
        ("/dashboard/users/remove", {"name": "admin"}),
        ("/dashboard/users/password", {"name": "admin", "password": "taken over"}),
    ]
    for role in (Role.VIEWER, Role.OPERATOR):
        c = await client(role)
        home = await c.get("/dashboard/outbox")
        assert home.status_code == 200 and f"{role.value}" in home.text
        assert "/dashboard/rules" not in home.text and "/dashboard/users" not in home.text
        for path in (*PAGES, f"/dashboard/webhooks/{endpoint}"):
            reply = await c.get(path)
            assert reply.status_code == 403 and "admin role" in reply.text, path
        token = csrf_of(home.text)
        for path, data in posts:
            reply = await c.post(path, data={**data, "csrf": token})
            assert reply.status_code == 403 and "admin role" in reply.text, path
    anonymous = await client(None)
    for path in PAGES:
        reply = await anonymous.get(path)
        assert reply.status_code == 303 and "/dashboard/signin?next=" in reply.headers["location"]
    # An admin's own forms without their token are refused too, and change nothing.
    admin = await client(Role.ADMIN)
    listing = await admin.get("/dashboard/outbox")
    assert all(f'href="{path}"' in listing.text for path in PAGES)
    for path, data in posts:
        for forged in ({}, {"csrf": "not-the-token"}):
            reply = await admin.post(path, data={**data, **forged})
            assert reply.status_code == 403 and "form has expired" in reply.text, path
    assert (await rules.hook_config(store)).rules == ()
    assert [e.id for e in (await rules.hook_config(store)).endpoints] == [endpoint]
    assert await apikeys.list_api_keys(store) == []
    assert {u.name for u in await users.list_users(store)} == {"viewer", "operator", "admin"}
    assert (await users.user_by_name(store, "admin")) is not None


async def test_an_admin_adds_and_removes_rules_and_every_sms_meets_them(
    client: Client, store: Database
) -> None:
    endpoint = await webhooks.add_webhook(store, FAILING, ["message.sent"], "s", datetime.now(UTC))
    c = await client()
    page = await c.get("/dashboard/rules")
    assert page.status_code == 200 and "No rule" in page.text and FAILING in page.text
    token = csrf_of(page.text)
    added = await c.post(
        "/dashboard/rules",
        data={"csrf": token, "kind": "keyword", "pattern": " JOIN ", "auto_reply": "Welcome <b>!"},
    )
    assert added.status_code == 303 and added.headers["location"] == "/dashboard/rules"
    forward = {"kind": "sender", "pattern": A, "forward": str(endpoint), "position": "1"}
    assert (await c.post("/dashboard/rules", data={"csrf": token, **forward})).status_code == 303
    [first, second] = (await rules.hook_config(store)).rules
    assert (first.kind.value, first.pattern, first.forward_endpoint_id) == ("sender", A, endpoint)
    assert (second.pattern, second.auto_reply, second.position) == ("JOIN", "Welcome <b>!", 2)
    listing = (await c.get("/dashboard/rules")).text
    assert listing.index(f"rule-{first.id}") < listing.index(f"rule-{second.id}")
    assert "Welcome &lt;b&gt;!" in listing and "Welcome <b>" not in listing

    # The server routes the next SMS by the new rule (its cache heard of the change).
    url = await phone(store)
    await incoming(c, url, "+254700000002", "join us", "m1")
    [reply] = await messages.list_outbound(store)
    assert (reply.to_addr, reply.content) == ("+254700000002", "Welcome <b>!")

    bad = [
        ({"kind": "keyword", "pattern": "A"}, "Give an action"),
        ({"kind": "regex", "pattern": "(", "tag": "t"}, "Not a regular expression"),
        ({"kind": "keyword", "pattern": "", "tag": "t"}, "Give a pattern"),
        ({"kind": "nope", "pattern": "A", "tag": "t"}, "Choose keyword, regex or sender"),
        ({"kind": "keyword", "pattern": "A", "tag": "t", "position": "x"}, "whole number"),
        ({"kind": "keyword", "pattern": "A" * 201, "tag": "t"}, "at most 200"),
        ({"kind": "keyword", "pattern": "A", "forward": "-1"}, "Choose a webhook"),
    ]
    for data, message in bad:
        refused = await c.post("/dashboard/rules", data={"csrf": token, **data})
        assert refused.status_code == 400 and message in refused.text, data
        assert 'aria-invalid="true"' in refused.text
    typed = await c.post(
        "/dashboard/rules", data={"csrf": token, "kind": "regex", "pattern": "(", "tag": "mine"}
    )
    assert 'value="mine"' in typed.text and 'value="regex" selected' in typed.text
    gone = await c.post(
        "/dashboard/rules", data={"csrf": token, "kind": "keyword", "pattern": "A", "forward": "99"}
    )
    assert gone.status_code == 409 and "no longer exists" in gone.text
    assert len((await rules.hook_config(store)).rules) == 2

    removed = await c.post(f"/dashboard/rules/{second.id}/remove", data={"csrf": token})
    assert removed.status_code == 303
    assert [r.id for r in (await rules.hook_config(store)).rules] == [first.id]
    assert "was removed" in (await c.get(removed.headers["location"])).text
    for rule_id in (str(second.id), "x", "9" * 30):
        missing = await c.post(f"/dashboard/rules/{rule_id}/remove", data={"csrf": token})
        assert missing.status_code == 404


async def test_an_admin_adds_a_webhook_sees_its_secret_once_and_its_deliveries(
    client: Client, store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await client()
    token = await token_of(c, "/dashboard/webhooks")
    added = await c.post(
        "/dashboard/webhooks",
        data={"csrf": token, "url": FAILING, "events": ["message.received", "message.sent"]},
    )
    assert added.status_code == 200
    secret = re.search(r'id="signing-secret">(whsec_[^<]+)<', added.text)
    assert secret, added.text
    [endpoint] = (await rules.hook_config(store)).endpoints
    assert endpoint.secret == secret.group(1) and endpoint.url == FAILING
    assert endpoint.events == {"message.received", "message.sent"}
    listing = await c.get("/dashboard/webhooks")
    assert FAILING in listing.text and secret.group(1) not in listing.text
    # No event ticked: every event, as the CLI and API default.
    every = await c.post("/dashboard/webhooks", data={"csrf": token, "url": FAILING + "2"})
    assert every.status_code == 200
    assert len([e for e in (await rules.hook_config(store)).endpoints if len(e.events) > 2]) == 1

    for data, message in [
        ({"url": "ftp://example.org/x"}, "http:// or https://"),
        ({"url": "http://10.1.2.3/x"}, "SMSSYNC_WEBHOOK_ALLOW"),
        ({"url": "https://hooks.example.org/x", "events": "message.nope"}, "from the list"),
    ]:
        refused = await c.post("/dashboard/webhooks", data={"csrf": token, **data})
        assert refused.status_code == 400 and message in refused.text, data
        assert f'value="{data["url"]}"' in refused.text
    assert len((await rules.hook_config(store)).endpoints) == 2

    # Two incoming SMS: two message.received for this receiver, newest first, by pages.
    url = await phone(store)
    await incoming(c, url, A, "one", "m1")
    await incoming(c, url, A, "two", "m2")
    page = await c.get(f"/dashboard/webhooks/{endpoint.id}")
    assert page.status_code == 200
    ids = [int(i) for i in re.findall(r'id="delivery-(\d+)"', page.text)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 2
    assert re.search(r"<td>message.received</td>\s*<td[^>]*>pending</td>", page.text)
    monkeypatch.setattr(webhook_pages, "PAGE", 1)
    first = await c.get(f"/dashboard/webhooks/{endpoint.id}")
    assert re.findall(r'id="delivery-(\d+)"', first.text) == [str(ids[0])]
    older = re.search(r'href="([^"]+)">Older deliveries', first.text)
    assert older and older.group(1) == f"/dashboard/webhooks/{endpoint.id}?before={ids[0]}"
    second = await c.get(older.group(1))
    assert re.findall(r'id="delivery-(\d+)"', second.text) == [str(ids[1])]
    assert "Older deliveries" not in second.text
    for path in ("?before=x", "?before=-4"):
        assert (await c.get(f"/dashboard/webhooks/{endpoint.id}{path}")).status_code == 400
    assert (await c.get("/dashboard/webhooks/999")).status_code == 404
    assert (await c.get("/dashboard/webhooks/abc")).status_code == 404

    removed = await c.post(f"/dashboard/webhooks/{endpoint.id}/remove", data={"csrf": token})
    assert removed.status_code == 303
    assert endpoint.id not in [e.id for e in (await rules.hook_config(store)).endpoints]
    assert await deliveries.endpoint_deliveries(store, endpoint.id, None, 10) == []
    again = await c.post(f"/dashboard/webhooks/{endpoint.id}/remove", data={"csrf": token})
    assert again.status_code == 404


async def test_a_dead_letter_is_listed_and_redelivered_back_to_pending(
    client: Client, store: Database
) -> None:
    endpoint = await webhooks.add_webhook(
        store, FAILING, ["message.received"], "s", datetime.now(UTC)
    )
    c = await client()
    url = await phone(store)
    await incoming(c, url, A, "hello", "m1")
    [pending] = await deliveries.endpoint_deliveries(store, endpoint, None, 10)
    # The receiver refuses every attempt; its retries run out (as the dispatcher decides
    # once the retry window is over; the running dispatcher may have tried it meanwhile,
    # its outcome only ever changes a delivery still pending).
    out = DeliveryOutcome(pending.id, False, "ConnectError: refused", None)
    await webhooks.finish_deliveries(store, [out], datetime.now(UTC))
    [dead] = await deliveries.dead_letters(store, None, 10)
    assert dead.id == pending.id and dead.state is DeliveryState.DEAD

    page = await c.get("/dashboard/webhooks")
    assert f'id="delivery-{dead.id}"' in page.text and "ConnectError: refused" in page.text
    assert f"/dashboard/webhooks/deliveries/{dead.id}/redeliver" in page.text
    token = csrf_of(page.text)
    done = await c.post(REDELIVER.format(dead.id), data={"csrf": token})
    assert done.status_code == 303 and done.headers["location"].endswith("done=redelivered")
    assert await deliveries.dead_letters(store, None, 10) == []
    [again] = await deliveries.endpoint_deliveries(store, endpoint, None, 10)
    # Pending, with a fresh retry window (the dispatcher, woken, may be trying it already).
    assert again.id == dead.id and again.state is DeliveryState.PENDING
    assert again.attempts <= 1 and again.finished_at is None
    assert "No dead letter" in (await c.get(done.headers["location"])).text
    twice = await c.post(
        f"/dashboard/webhooks/deliveries/{dead.id}/redeliver", data={"csrf": token}
    )
    assert twice.status_code == 409 and "not a dead letter" in twice.text
    for bad in ("x", "0", "9" * 25):
        reply = await c.post(
            f"/dashboard/webhooks/deliveries/{bad}/redeliver", data={"csrf": token}
        )
        assert reply.status_code == 404
    assert (await c.get("/dashboard/webhooks?before=nope")).status_code == 400


async def test_an_admin_creates_a_key_shown_once_and_revokes_it(
    client: Client, store: Database
) -> None:
    c = await client()
    token = await token_of(c, "/dashboard/keys")
    made = await c.post(
        "/dashboard/keys", data={"csrf": token, "name": "clinic-app", "scopes": ["read", "send"]}
    )
    assert made.status_code == 200
    found = re.search(r'id="api-key">(ssk_[^<]+)<', made.text)
    assert found, made.text
    key = found.group(1)
    [stored] = await apikeys.list_api_keys(store)
    assert stored.name == "clinic-app" and {s.value for s in stored.scopes} == {"read", "send"}
    assert key.startswith(stored.prefix)
    listing = await c.get("/dashboard/keys")
    assert stored.prefix in listing.text and key not in listing.text and "active" in listing.text
    # The key is a real one: the API answers it, until it is revoked.
    assert (await c.get("/api/v1/devices", headers=bearer(key))).status_code == 200
    revoked = await c.post(f"/dashboard/keys/{stored.id}/revoke", data={"csrf": token})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/dashboard/keys?revoked=1"
    assert (await c.get("/api/v1/devices", headers=bearer(key))).status_code == 401
    assert "revoked" in (await c.get("/dashboard/keys")).text

    for data, message in [
        ({"name": "x"}, "at least one scope"),
        ({"name": " ", "scopes": "read"}, "1 to 100 characters"),
        ({"name": "x", "scopes": "root"}, "from the list"),
    ]:
        refused = await c.post("/dashboard/keys", data={"csrf": token, **data})
        assert refused.status_code == 400 and message in refused.text, data
    assert len(await apikeys.list_api_keys(store)) == 1
    for key_id in ("999", "x"):
        missing = await c.post(f"/dashboard/keys/{key_id}/revoke", data={"csrf": token})
        assert missing.status_code == 404
    assert (await c.get("/dashboard/keys?after=x")).status_code == 400


async def test_an_admin_manages_users_and_their_sessions_end(
    client: Client, store: Database
) -> None:
    admin = await client(Role.ADMIN)
    amy = await client(Role.OPERATOR, "amy")
    page = await admin.get("/dashboard/users")
    assert page.status_code == 200
    assert re.search(r"amy</th>\s*<td>operator</td>", page.text)
    assert "(you)" in page.text
    token = csrf_of(page.text)

    added = await admin.post(
        "/dashboard/users",
        data={"csrf": token, "name": "bob", "role": "viewer", "password": "bob's password"},
    )
    assert added.status_code == 303 and added.headers["location"] == "/dashboard/users?done=added"
    bob = await client(None)
    assert (await sign_in(bob, "bob", "bob's password")).status_code == 303
    assert (await users.user_by_name(store, "bob")) is not None
    for data, message, status in [
        ({"name": "bob", "role": "viewer", "password": PASSWORD}, "named bob exists", 409),
        ({"name": "cy", "role": "viewer", "password": "short"}, "at least 8 characters", 400),
        ({"name": "cy", "role": "boss", "password": PASSWORD}, "Choose viewer", 400),
        ({"name": "", "role": "viewer", "password": PASSWORD}, "1 to 100 characters", 400),
    ]:
        refused = await admin.post("/dashboard/users", data={"csrf": token, **data})
        assert refused.status_code == status and message in refused.text, data
    assert (await users.user_by_name(store, "cy")) is None

    # A new password signs amy out everywhere; the new one signs her in.
    assert (await amy.get("/dashboard/outbox")).status_code == 200
    changed = await admin.post(
        "/dashboard/users/password", data={"csrf": token, "name": "amy", "password": "new secret"}
    )
    assert changed.status_code == 303
    assert (await amy.get("/dashboard/outbox")).status_code == 303
    assert (await sign_in(amy, "amy", "new secret")).status_code == 303
    short = await admin.post(
        "/dashboard/users/password", data={"csrf": token, "name": "amy", "password": "x"}
    )
    assert short.status_code == 400 and "at least 8 characters" in short.text
    nobody = await admin.post(
        "/dashboard/users/password", data={"csrf": token, "name": "zed", "password": PASSWORD}
    )
    assert nobody.status_code == 404

    # Removing bob ends his session; nobody removes themselves.
    assert (await bob.get("/dashboard/outbox")).status_code == 200
    removed = await admin.post("/dashboard/users/remove", data={"csrf": token, "name": "bob"})
    assert removed.status_code == 303
    assert (await bob.get("/dashboard/outbox")).status_code == 303
    self_removal = await admin.post(
        "/dashboard/users/remove", data={"csrf": token, "name": "admin"}
    )
    assert self_removal.status_code == 409 and "cannot remove yourself" in self_removal.text
    assert (await users.user_by_name(store, "admin")) is not None
    missing = await admin.post("/dashboard/users/remove", data={"csrf": token, "name": "bob"})
    assert missing.status_code == 404
