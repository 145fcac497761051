"""Webhook outbox and rules over both stores: events in the change's transaction, lanes, dead
letters, liveness, keyword routing."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta

import httpx
from sqlalchemy import Connection, update

from smssync.records import (
    DeliveryOutcome,
    DeviceSettings,
    NewRule,
    OutboundStatus,
    RuleKind,
    SendOutcome,
)
from smssync.server.credentials import issue
from smssync.store import (
    devices,
    liveness,
    messages,
    queue,
    results,
    rules,
    schema,
    serverkey,
    webhooks,
)
from smssync.store.engine import Database
from smssync.store.rows import to_us
from tests.integration.api_helpers import bearer, incoming, phone
from tests.integration.store_helpers import T0, at, device, queue_some

ALL = ["message.sent", "message.failed", "message.delivered", "message.undelivered"]


async def sent_and_delivered(store: Database, count: int = 1) -> list[str]:
    """Queue, hand out and report messages sent then delivered, in one E7 each."""
    phone_ = await device(store, "p")
    ids = await queue_some(store, count, device="p")
    await queue.claim_outbound(store, phone_.id, count, at(1))
    outcome = SendOutcome(OutboundStatus.SENT, None, OutboundStatus.DELIVERED, None, None)
    await results.record_results(store, phone_.id, [(m, outcome) for m in ids], at(2))
    return ids


async def test_events_are_written_with_the_status_change(store: Database) -> None:
    endpoint = await webhooks.add_webhook(store, "http://127.0.0.1:9/hook", ALL, "s3cret", T0)
    [mid] = await sent_and_delivered(store)
    pending = await webhooks.deliveries(store, "pending")
    bodies = [json.loads(d.body) for d in pending]
    assert [b["type"] for b in bodies] == ["message.sent", "message.delivered"]
    assert {b["data"]["uuid"] for b in bodies} == {mid}
    assert all(d.secret == "s3cret" and d.url.endswith("/hook") for d in pending)
    assert len({b["id"] for b in bodies}) == 2
    assert endpoint


async def test_nothing_is_written_without_receivers(store: Database) -> None:
    await sent_and_delivered(store)
    assert await webhooks.deliveries(store, "pending") == []


async def test_a_lane_goes_out_in_order_and_dead_letters_unblock_it(store: Database) -> None:
    await webhooks.add_webhook(store, "http://127.0.0.1:9/hook", ALL, "s", T0)
    await sent_and_delivered(store, count=2)
    first = await webhooks.claim_deliveries(store, at(3), 10, hold_s=60)
    # One message.sent per message; each message.delivered waits for its lane.
    assert [json.loads(d.body)["type"] for d in first] == ["message.sent"] * 2
    assert await webhooks.claim_deliveries(store, at(4), 10, hold_s=60) == []
    retry = DeliveryOutcome(first[0].id, False, "HTTP 500", at(5))
    await webhooks.finish_deliveries(store, [retry, DeliveryOutcome(first[1].id, True)], at(4))
    [next_one] = await webhooks.claim_deliveries(store, at(4), 10, hold_s=60)
    assert json.loads(next_one.body)["type"] == "message.delivered"
    await webhooks.finish_deliveries(store, [DeliveryOutcome(next_one.id, True)], at(4))
    [again] = await webhooks.claim_deliveries(store, at(6), 10, hold_s=60)
    assert again.id == first[0].id and again.attempts == 2
    await webhooks.finish_deliveries(
        store, [DeliveryOutcome(again.id, False, "HTTP 500", None)], at(6)
    )
    [dead] = await webhooks.deliveries(store, "dead")
    assert dead.id == again.id and dead.last_error == "HTTP 500"
    [unblocked] = await webhooks.claim_deliveries(store, at(7), 10, hold_s=60)
    assert json.loads(unblocked.body)["type"] == "message.delivered"
    assert await webhooks.redrive(store, None, at(8)) == 1
    [redriven] = await webhooks.claim_deliveries(store, at(8), 10, hold_s=60)
    assert redriven.id == dead.id and redriven.attempts == 1


async def test_concurrent_claims_never_share_a_delivery(store: Database) -> None:
    await webhooks.add_webhook(store, "http://127.0.0.1:9/a", ALL, "s", T0)
    await webhooks.add_webhook(store, "http://127.0.0.1:9/b", ALL, "s", T0)
    await sent_and_delivered(store, count=10)
    claims = await asyncio.gather(
        *(webhooks.claim_deliveries(store, at(3), 3, 60) for _ in range(10))
    )
    ids = [d.id for claim in claims for d in claim]
    assert len(ids) == len(set(ids)) == 20  # every message.sent, once


async def test_a_whole_fleet_changing_at_once_is_announced_once_per_phone(
    store: Database,
) -> None:
    # More phones than one statement's chunk, three processes checking at once: each phone's
    # change is written and announced by exactly one of them.
    await webhooks.add_webhook(
        store, "http://127.0.0.1:9/d", ["device.offline", "device.online"], "s", T0
    )
    key = await serverkey.server_key(store)
    names = [f"f{i:04d}" for i in range(1_100)]
    entries = [
        (name, issue(key, secret=f"fleet-{name}")[1], DeviceSettings(liveness_s=60))
        for name in names
    ]
    await devices.add_devices(store, entries, at(0))

    def seen(conn: Connection) -> None:
        conn.execute(update(schema.devices).values(last_seen_at=to_us(at(1))))

    await store.write(seen)
    assert sorted(await liveness.check_liveness(store, at(1))) == [(n, True) for n in names]
    late = at(200)
    results = await asyncio.gather(*(liveness.check_liveness(store, late) for _ in range(3)))
    assert sorted(r for result in results for r in result) == [(n, False) for n in names]
    assert await liveness.check_liveness(store, late) == []
    events = Counter(
        (json.loads(d.body)["type"], json.loads(d.body)["data"]["device"])
        for d in await webhooks.deliveries(store, "pending", limit=10_000)
    )
    assert set(events.values()) == {1} and len(events) == 2 * len(names)


async def test_liveness_transitions_are_announced_once(store: Database) -> None:
    await webhooks.add_webhook(
        store, "http://127.0.0.1:9/d", ["device.offline", "device.online"], "s", T0
    )
    phone_ = await device(store, "p", liveness_s=60)
    assert await liveness.check_liveness(store, at(1)) == [("p", True)]  # first sight of a live one
    late = at(1) + timedelta(seconds=120)
    results = await asyncio.gather(*(liveness.check_liveness(store, late) for _ in range(3)))
    assert sorted(r for result in results for r in result) == [("p", False)]
    await devices.LastSeen(store).touch(phone_.id, late, "test")
    assert await liveness.check_liveness(store, late) == [("p", True)]
    events = [json.loads(d.body)["type"] for d in await webhooks.deliveries(store, "pending")]
    assert events == ["device.online", "device.offline", "device.online"]
    never = await device(store, "q", seen=None)
    assert never and await liveness.check_liveness(store, late) == []  # never seen: not news


async def test_keyword_rule_replies_in_the_e1_reply_tags_and_forwards(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    admin = bearer(keys["admin"])
    hook = await api_client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.org/in", "events": ["message.sent"]},
        headers=admin,
    )
    assert hook.status_code == 201, hook.text
    hook_id = hook.json()["webhook"]["id"]
    assert hook.json()["secret"].startswith("whsec_")
    rule = await api_client.post(
        "/api/v1/rules",
        json={
            "kind": "keyword",
            "pattern": "JOIN",
            "auto_reply": "Welcome!",
            "forward_webhook_id": hook_id,
            "tag": "signup",
        },
        headers=admin,
    )
    assert rule.status_code == 201, rule.text
    url = await phone(store, reply_from_server=True)
    reply = await incoming(api_client, url, "+254700000001", "join please", "m1")
    [task] = reply["payload"]["messages"]
    assert (task["to"], task["message"]) == ("+254700000001", "Welcome!")
    duplicate = await incoming(api_client, url, "+254700000001", "join please", "m1")
    assert duplicate["payload"].get("messages", []) == []
    await incoming(api_client, url, "+254700000001", "hello", "m2")
    inbox = (await api_client.get("/api/v1/inbox", headers=admin)).json()["messages"]
    assert [m["tags"] for m in inbox] == [["signup"], []]
    [forwarded] = await webhooks.deliveries(store, "pending")
    body = json.loads(forwarded.body)
    assert body["type"] == "message.received" and body["data"]["tags"] == ["signup"]
    assert body["data"]["body"] == "join please"


async def test_rule_reply_is_queued_without_reply_from_server(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    url = await phone(store)
    await rules.add_rule(store, NewRule(RuleKind.REGEX, r"(?i)\bstop\b", auto_reply="Bye"), T0)
    # Added behind the API's back (as the CLI does): applies at once all the same.
    reply = await incoming(api_client, url, "+254700000001", "please STOP now", "m1")
    assert reply["payload"].get("messages", []) == []
    [queued] = await messages.list_outbound(store)
    assert (queued.content, queued.device, queued.status.value) == ("Bye", "p1", "queued")
    await incoming(api_client, url, "MPESA", "stop", "m2")  # not a number: never answered
    assert len(await messages.list_outbound(store)) == 1


async def test_rules_and_webhooks_are_managed_through_the_api(
    api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    admin = bearer(keys["admin"])
    bad = await api_client.post(
        "/api/v1/rules", json={"kind": "regex", "pattern": "(", "tag": "x"}, headers=admin
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "pattern"
    noaction = await api_client.post(
        "/api/v1/rules", json={"kind": "keyword", "pattern": "A"}, headers=admin
    )
    assert noaction.status_code == 400
    a = (
        await api_client.post(
            "/api/v1/rules", json={"kind": "keyword", "pattern": "A", "tag": "a"}, headers=admin
        )
    ).json()["rule"]
    b = (
        await api_client.post(
            "/api/v1/rules",
            json={"kind": "sender", "pattern": "+2547", "tag": "b", "position": 1},
            headers=admin,
        )
    ).json()["rule"]
    listed = (await api_client.get("/api/v1/rules", headers=admin)).json()["rules"]
    assert [r["id"] for r in listed] == [b["id"], a["id"]]
    assert (await api_client.delete(f"/api/v1/rules/{a['id']}", headers=admin)).status_code == 200
    assert (await api_client.delete(f"/api/v1/rules/{a['id']}", headers=admin)).status_code == 404
    missing = await api_client.post(
        "/api/v1/rules",
        json={"kind": "keyword", "pattern": "A", "forward_webhook_id": 99},
        headers=admin,
    )
    assert missing.status_code == 404
    dead = await api_client.get("/api/v1/webhooks/dead-letters", headers=admin)
    assert dead.json() == {"ok": True, "deliveries": []}
    redrive = await api_client.post(
        "/api/v1/webhooks/dead-letters/redrive", json={"all": True}, headers=admin
    )
    assert redrive.json() == {"ok": True, "redriven": 0}
