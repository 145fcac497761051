"""The /api/v1 messages API in-process over both stores: errors, send, idempotency, cancel."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx

from smssync.store import apikeys, messages, wire
from smssync.store.engine import Database
from tests.integration.api_helpers import ack, bearer, phone, poll

ERROR_KEYS = {"ok", "error", "errors", "status"}


def assert_error(reply: httpx.Response, status: int) -> None:
    """Check the one error shape."""
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == ERROR_KEYS
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and isinstance(body["errors"], list)


async def test_error_shape_is_the_same_everywhere(
    api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    c = api_client
    assert_error(await c.get("/api/v1/messages"), 401)
    assert_error(await c.post("/api/v1/messages", content=b"{nope"), 401)
    assert_error(await c.get("/api/v1/messages", headers=bearer("ssk_wrong")), 401)
    assert_error(await c.get("/api/v1/nowhere"), 401)  # nothing answers without a key
    assert_error(await c.get("/api/v1/messages", headers=bearer(keys["send"])), 403)
    assert_error(await c.get("/api/v1/webhooks", headers=bearer(keys["read"])), 403)
    assert_error(await c.get("/api/v1/nowhere", headers=bearer(keys["read"])), 404)
    admin = bearer(keys["admin"])
    assert_error(await c.get("/api/v1/messages/none", headers=admin), 404)
    assert_error(await c.delete("/api/v1/messages/none", headers=admin), 404)
    bad = await c.post("/api/v1/messages", json={"to": 5, "bodyy": "x"}, headers=admin)
    assert_error(bad, 400)
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"body.body", "body.bodyy"} <= fields
    assert_error(await c.post("/api/v1/messages", content=b"{nope", headers=admin), 400)
    assert_error(await c.get("/api/v1/messages?limit=0", headers=admin), 400)
    reply = await c.get("/api/v1/messages")
    assert reply.headers["www-authenticate"].startswith("Bearer")


async def test_docs_and_openapi_are_public(api_client: httpx.AsyncClient) -> None:
    spec = (await api_client.get("/api/v1/openapi.json")).json()
    assert "/messages" in spec["paths"]
    page = await api_client.get("/api/v1/docs")
    assert page.status_code == 200 and "POST" in page.text and "/messages" in page.text


async def test_send_one_and_read_its_history(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    url = await phone(store)
    reply = await api_client.post(
        "/api/v1/messages",
        json={"to": "0700 000001", "body": "hello", "priority": 5},
        headers=bearer(keys["send"]),
    )
    assert reply.status_code == 201, reply.text
    [queued] = reply.json()["messages"]
    assert queued["to"] == "+254700000001" and queued["status"] == "queued"
    # The phone is told a wire id of its own, never the uuid API readers see (S-29).
    [wire_id] = await poll(api_client, url)
    assert wire_id != queued["uuid"]
    assert await wire.message_ids(store, [wire_id]) == {wire_id: queued["uuid"]}
    read = await api_client.get(f"/api/v1/messages/{queued['uuid']}", headers=bearer(keys["read"]))
    message = read.json()["message"]
    assert message["priority"] == 5
    assert [h["status"] for h in message["history"]] == ["queued", "dispatched"]
    assert message["sent_at"] is None and message["sent_timestamp_raw"] is None
    # The phone reports it sent, in its own words (S-34): shown as written and as a time.
    report = [{"uuid": wire_id, "sent_result_code": -1, "sent_timestamp": "1487658999000"}]
    posted = await api_client.post(f"{url}?task=result", json={"message_result": report})
    assert posted.status_code == 200, posted.text
    read = await api_client.get(f"/api/v1/messages/{queued['uuid']}", headers=bearer(keys["read"]))
    message = read.json()["message"]
    assert message["status"] == "sent" and message["sent_timestamp_raw"] == "1487658999000"
    assert message["sent_at"].startswith("2017-02-21T06:36:39")


async def test_bulk_reports_bad_numbers_and_queues_the_rest(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    numbers = [f"+2547000{i:05d}" for i in range(300)]
    numbers[7] = "not a number"
    numbers[42] = "+1"
    reply = await api_client.post(
        "/api/v1/messages", json={"to": numbers, "body": "bulk"}, headers=bearer(keys["send"])
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert len(body["messages"]) == 298
    assert [e["index"] for e in body["errors"]] == [7, 42]
    assert len(await messages.list_outbound(store, limit=1000)) == 298
    nothing = await api_client.post(
        "/api/v1/messages", json={"to": ["x"], "body": "b"}, headers=bearer(keys["send"])
    )
    assert_error(nothing, 400)
    assert nothing.json()["errors"][0]["index"] == 0


async def test_list_filters_and_cursor(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    send = bearer(keys["send"])
    numbers = [f"+25470000{i:04d}" for i in range(5)]
    await api_client.post("/api/v1/messages", json={"to": numbers, "body": "x"}, headers=send)
    seen: list[str] = []
    cursor = ""
    while True:
        page = await api_client.get(
            f"/api/v1/messages?limit=2{'&cursor=' + cursor if cursor else ''}",
            headers=bearer(keys["read"]),
        )
        body = page.json()
        seen += [m["to"] for m in body["messages"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert seen == numbers
    one = await api_client.get(
        f"/api/v1/messages?to={numbers[3]}&status=queued", headers=bearer(keys["read"])
    )
    assert [m["to"] for m in one.json()["messages"]] == [numbers[3]]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    none = await api_client.get(
        "/api/v1/messages", params={"since": later}, headers=bearer(keys["read"])
    )
    assert none.json()["messages"] == []


async def test_idempotency_key_replays_and_conflicts(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    headers = {**bearer(keys["send"]), "idempotency-key": "order-1"}
    request = {"to": "+254700000001", "body": "once"}
    first = await api_client.post("/api/v1/messages", json=request, headers=headers)
    again = await api_client.post("/api/v1/messages", json=request, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await api_client.post(
        "/api/v1/messages", json={**request, "body": "twice"}, headers=headers
    )
    assert_error(other, 409)
    assert len(await messages.list_outbound(store)) == 1


async def test_concurrent_duplicates_make_one_message(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    headers = {**bearer(keys["send"]), "idempotency-key": "burst"}
    request = {"to": ["+254700000001", "+254700000002"], "body": "race"}
    replies = await asyncio.gather(
        *(api_client.post("/api/v1/messages", json=request, headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in replies} == {201}
    assert len({json.dumps(r.json(), sort_keys=True) for r in replies}) == 1
    assert len(await messages.list_outbound(store)) == 2


async def test_cancel_until_a_phone_accepts(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    url = await phone(store)
    send = bearer(keys["send"])
    reply = await api_client.post(
        "/api/v1/messages", json={"to": ["+254700000001"] * 2, "body": "c"}, headers=send
    )
    first, second = (m["uuid"] for m in reply.json()["messages"])
    cancelled = await api_client.delete(f"/api/v1/messages/{first}", headers=send)
    assert cancelled.json()["message"]["status"] == "cancelled"
    told = await wire.wire_ids(store, [second])
    assert await poll(api_client, url) == [told[second]]
    assert await ack(api_client, url, [told[second]]) == [told[second]]
    assert_error(await api_client.delete(f"/api/v1/messages/{second}", headers=send), 409)


async def test_cancel_races_a_polling_phone(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    url = await phone(store, batch_limit=5, segments_per_minute=10_000)
    send = bearer(keys["send"])
    numbers = [f"+2547000{i:05d}" for i in range(40)]
    reply = await api_client.post(
        "/api/v1/messages", json={"to": numbers, "body": "r"}, headers=send
    )
    uuids = [m["uuid"] for m in reply.json()["messages"]]

    async def phone_loop() -> set[str]:
        accepted: set[str] = set()
        for _ in range(10):
            handed = await poll(api_client, url)
            accepted.update(await ack(api_client, url, handed))
        return set((await wire.message_ids(store, list(accepted))).values())  # public uuids

    async def cancel_all() -> set[str]:
        done = set()
        for uuid in reversed(uuids):
            if (
                await api_client.delete(f"/api/v1/messages/{uuid}", headers=send)
            ).status_code == 200:
                done.add(uuid)
        return done

    accepted, cancelled = await asyncio.gather(phone_loop(), cancel_all())
    assert not accepted & cancelled
    for message in await messages.list_outbound(store, limit=100):
        expected = "cancelled" if message.message_id in cancelled else None
        if message.message_id in accepted:
            expected = "accepted"
        if expected:
            assert message.status.value == expected


async def test_unknown_device_is_a_bad_request(
    api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    reply = await api_client.post(
        "/api/v1/messages",
        json={"to": "+254700000001", "body": "x", "device": "ghost"},
        headers=bearer(keys["send"]),
    )
    assert_error(reply, 400)


async def test_devices_and_inbox(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    url = await phone(store)
    await api_client.post(url, data={"from": "+254700000009", "message": "hi", "message_id": "1"})
    read = bearer(keys["read"])
    [device] = (await api_client.get("/api/v1/devices", headers=read)).json()["devices"]
    assert device["name"] == "p1" and device["health"] == "online"
    [sms] = (await api_client.get("/api/v1/inbox", headers=read)).json()["messages"]
    assert sms["from"] == "+254700000009" and sms["body"] == "hi"
    assert sms["sent_timestamp_raw"] is None  # the upload had none


async def test_revoked_key_is_refused(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    [key] = [k for k in await apikeys.list_api_keys(store) if k.name == "read"]
    await apikeys.revoke_api_key(store, key.id, datetime.now(UTC))
    # Revoked behind the API's back: refused at once all the same.
    assert_error(await api_client.get("/api/v1/devices", headers=bearer(keys["read"])), 401)
