"""The SMSsync endpoint in-process (httpx ASGI transport) over both stores."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from smssync.records import LAST_SEEN_EVERY, AckMode, Device, DeviceSettings, new_outbound
from smssync.server.app import create_app
from smssync.server.credentials import IssuedCredentials, create_device
from smssync.settings import Settings
from smssync.store import devices, inbox, liveness, messages, queue, wire
from smssync.store.engine import Database
from tests.integration.store_helpers import FailingStore

FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json; charset=UTF-8"}
UNAUTHORIZED = {"payload": {"success": False, "error": "unauthorized"}}


@pytest.fixture
async def client(store: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sms") as c:
            yield c


async def add(
    store: Database, name: str, secret: str | None = "s", **settings: Any
) -> tuple[Device, IssuedCredentials, str]:
    device, issued = await create_device(
        store, name, datetime.now(UTC), secret=secret, settings=DeviceSettings(**settings)
    )
    return device, issued, f"/smssync/d/{issued.token}"


async def queue_some(
    store: Database, device: str | None, *texts: str, to: str = "+254700000002"
) -> list[str]:
    """Queue messages and return their wire ids: what the phone is told and names."""
    batch = [new_outbound(to, t, device, datetime.now(UTC)) for t in texts]
    await queue.enqueue(store, batch)
    told = await wire.wire_ids(store, [m.message_id for m in batch])
    return [told[m.message_id] for m in batch]


async def public_id(store: Database, wire_id: str) -> str:
    """Return the public uuid (API, webhooks) of a wire id."""
    return (await wire.message_ids(store, [wire_id]))[wire_id]


async def poll(client: httpx.AsyncClient, url: str, secret: str = "s") -> list[str]:
    reply = await client.get(f"{url}?task=send&secret={secret}")
    assert reply.status_code == 200, reply.text
    return [m["uuid"] for m in reply.json()["payload"]["messages"]]


async def ack(client: httpx.AsyncClient, url: str, uuids: list[str]) -> list[str]:
    reply = await client.post(
        f"{url}?task=sent", content=json.dumps({"queued_messages": uuids}).encode(), headers=JSON
    )
    assert reply.status_code == 200, reply.text
    listed: list[str] = reply.json()["message_uuids"]
    return listed


async def status_of(store: Database, wire_id: str) -> str:
    [message] = await messages.list_outbound(store, message_id=await public_id(store, wire_id))
    return message.status.value


async def test_token_and_basic_of_different_devices_is_refused(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url_a = await add(store, "a", secret=None)
    await create_device(
        store, "b", datetime.now(UTC), secret=None, basic_user="bee", basic_password="pw"
    )
    reply = await client.get(f"{url_a}?task=send", auth=httpx.BasicAuth("bee", "pw"))
    assert (reply.status_code, reply.json()) == (403, UNAUTHORIZED)


async def test_token_device_with_secret_must_present_it(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url = await add(store, "a", secret="right")
    assert (await client.get(f"{url}?task=send&secret=wrong")).status_code == 403
    assert (await client.get(f"{url}?task=send&secret=right")).status_code == 200


@pytest.mark.parametrize("by", ["token", "basic"])
async def test_a_device_url_alone_neither_empties_its_outbox_nor_posts(
    store: Database, client: httpx.AsyncClient, by: str
) -> None:
    """A missing secret is as wrong as a wrong one on E1, E3, E4, E6 and E7 (S-6, S-8)."""
    device, issued = await create_device(
        store, "a", datetime.now(UTC), secret="right", basic_user="bee", basic_password="pw"
    )
    url, auth = (
        (f"/smssync/d/{issued.token}", {})
        if by == "token"
        else ("/smssync", {"authorization": "Basic " + base64.b64encode(b"bee:pw").decode()})
    )
    [mid] = await queue_some(store, "a", "secret text")
    test_post = "from=%2B000000000000&message=Test%20Message%20From%20SMSSync%20Integration"
    for request in (
        client.get(f"{url}?task=send", headers=auth),
        client.get(f"{url}?task=result", headers=auth),
        client.post(f"{url}?task=result", content=b'{"message_result":"[]"}', headers=auth),
        client.post(url, content=b"from=1&message=2&message_id=m1", headers=FORM | auth),
        client.post(url, content=test_post.encode(), headers=FORM | auth),
    ):
        reply = await request
        assert (reply.status_code, reply.json()) == (403, UNAUTHORIZED)
    assert await status_of(store, mid) == "queued"
    assert await inbox.list_inbound(store) == []
    assert (await devices.device_by_name(store, "a")) == device  # last_seen untouched
    # E5 and E8, where the App sends no secret, still pass on the token or Basic alone.
    reply = await client.get(f"{url}?task=send&secret=right", headers=auth)
    assert [m["uuid"] for m in reply.json()["payload"]["messages"]] == [mid]
    sent = json.dumps({"queued_messages": [mid]}).encode()
    reply = await client.post(f"{url}?task=sent", content=sent, headers=JSON | auth)
    assert reply.json()["message_uuids"] == [mid]
    alert = b"Task=alert&message=Battery%20low%2015%25"
    reply = await client.post(url, content=alert, headers=FORM | auth)
    assert reply.status_code == 200, reply.text


async def test_unauthenticated_requests_change_nothing(
    store: Database, client: httpx.AsyncClient
) -> None:
    device, _, url = await add(store, "a")
    [mid] = await queue_some(store, "a", "secret text")
    for request in (
        client.get(f"{url}?task=send&secret=nope"),
        client.get("/smssync?task=send"),
        client.get("/smssync?task=result"),
        client.post("/smssync?task=sent", content=json.dumps({"queued_messages": [mid]})),
        client.post("/smssync", content=b"from=1&message=2&secret=", headers=FORM),
    ):
        reply = await request
        assert reply.status_code == 403
        assert "secret text" not in reply.text and mid not in reply.text
    assert await status_of(store, mid) == "queued"
    assert (await devices.device_by_name(store, "a")) == device  # last_seen untouched
    assert await inbox.list_inbound(store) == []


async def test_handshake_lease_expiry_requeues(store: Database, client: httpx.AsyncClient) -> None:
    _, _, url = await add(store, "a", ack_mode=AckMode.HANDSHAKE, lease_s=1)
    [mid] = await queue_some(store, "a", "one")
    assert await poll(client, url) == [mid]
    assert await status_of(store, mid) == "dispatched"
    await asyncio.sleep(1.2)
    assert await poll(client, url) == [mid]  # offered again after the lease
    assert await ack(client, url, [mid]) == [mid]
    assert await status_of(store, mid) == "accepted"
    await asyncio.sleep(1.2)
    assert await poll(client, url) == []  # accepted is never offered again


async def test_a_public_uuid_cannot_confirm_a_message_on_the_shared_url(
    store: Database, client: httpx.AsyncClient
) -> None:
    """Issue 14, finding 2: API readers and webhook receivers see a message's uuid; naming it
    in an unauthenticated task=sent must not take the message from the phone that polled."""
    _, _, url = await add(store, "a", ack_mode=AckMode.HANDSHAKE)
    [wire_id] = await queue_some(store, "a", "your code is 4711")
    assert await poll(client, url) == [wire_id]
    public = await public_id(store, wire_id)
    assert public != wire_id
    [shown] = await messages.list_outbound(
        store, message_id=public
    )  # what the API and webhooks show
    assert shown.status.value == "dispatched"
    attack = await client.post(
        "/smssync?task=sent", content=json.dumps({"queued_messages": [public]}), headers=JSON
    )
    assert (attack.status_code, attack.json()) == (403, UNAUTHORIZED)
    assert await status_of(store, wire_id) == "dispatched"
    # The real phone, on the shared URL with no credential (lease binding), still gets it.
    real = await client.post(
        "/smssync?task=sent", content=json.dumps({"queued_messages": [wire_id]}), headers=JSON
    )
    assert (real.status_code, real.json()) == (200, {"message_uuids": [wire_id]})
    assert await status_of(store, wire_id) == "accepted"


async def test_auto_mode_lease_expiry_drops_back_to_handoff(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url = await add(store, "a", lease_s=1)
    first, second = await queue_some(store, "a", "one", "two")
    assert await poll(client, url) == [first, second]
    assert (await devices.device_by_name(store, "a")).effective_mode is AckMode.HANDOFF  # type: ignore[union-attr]
    assert await ack(client, url, [first, second]) == [first, second]
    assert (await devices.device_by_name(store, "a")).effective_mode is AckMode.HANDSHAKE  # type: ignore[union-attr]
    [third] = await queue_some(store, "a", "three")
    assert await poll(client, url) == [third]
    await asyncio.sleep(1.2)
    # The phone stopped confirming: the message may be sent already, so never offer it again.
    assert await poll(client, url) == []
    assert await status_of(store, third) == "dispatched"
    assert (await devices.device_by_name(store, "a")).effective_mode is AckMode.HANDOFF  # type: ignore[union-attr]


async def test_result_listing_never_turns_an_unsent_message_unknown(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url = await add(store, "a")
    [mid] = await queue_some(store, "a", "one")
    await poll(client, url)
    await ack(client, url, [mid])
    # The phone accepted it and reports nothing: however often it is listed, it stays
    # accepted (S-30: the stuck alert tells a person), never delivery_unknown.
    for _ in range(8):
        reply = await client.get(f"{url}?task=result&secret=s")
        assert reply.json() == {"message_uuids": [mid]}
    assert await status_of(store, mid) == "accepted"
    # Reported sent: still listed, for the delivery report.
    entry = {"uuid": mid, "sent_result_code": -1, "sent_result_message": "SMS sent"}
    reply = await client.post(f"{url}?task=result&secret=s", json={"message_result": [entry]})
    assert reply.status_code == 200
    assert (await client.get(f"{url}?task=result&secret=s")).json() == {"message_uuids": [mid]}
    assert await status_of(store, mid) == "sent"


async def test_the_result_window_is_the_setting_and_ends_only_sent_messages(
    store: Database,
) -> None:
    # By default a sent SMS waits 48 h for its delivery report (carriers' validity
    # periods), however often it is listed; the count limit is off.
    assert (Settings().result_max_age_h, Settings().result_max_listings) == (48, 0)
    app = create_app(Settings(result_max_age_h=0), store)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms") as c,
    ):
        _, _, url = await add(store, "a")
        sent, accepted = await queue_some(store, "a", "one", "two")
        await poll(c, url)
        await ack(c, url, [sent, accepted])
        entry = {"uuid": sent, "sent_result_code": -1, "sent_result_message": "SMS sent"}
        reply = await c.post(f"{url}?task=result&secret=s", json={"message_result": [entry]})
        assert reply.status_code == 200
        # A window of 0 h has passed for both: the sent one is given up on, truly
        # (sent, no report); the accepted one stays accepted, no longer asked about.
        assert (await c.get(f"{url}?task=result&secret=s")).json() == {"message_uuids": []}
        assert [await status_of(store, m) for m in (sent, accepted)] == [
            "delivery_unknown",
            "accepted",
        ]


async def test_results_for_other_devices_are_ignored(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url_a = await add(store, "a", secret="sa")
    _, _, url_b = await add(store, "b", secret="sb")
    [mid] = await queue_some(store, "a", "one")
    await poll(client, url_a, "sa")
    body = {"message_result": [{"uuid": mid, "sent_result_code": -1}]}
    reply = await client.post(
        f"{url_b}?task=result&secret=sb", content=json.dumps(body), headers=JSON
    )
    assert reply.status_code == 200
    assert await status_of(store, mid) == "dispatched"
    await client.post(f"{url_a}?task=result&secret=sa", content=json.dumps(body), headers=JSON)
    assert await status_of(store, mid) == "sent"
    late = {"message_result": [{"uuid": mid, "sent_result_code": 1}]}
    await client.post(f"{url_a}?task=result&secret=sa", content=json.dumps(late), headers=JSON)
    delivered = {
        "message_result": [{"uuid": mid, "sent_result_code": -1, "delivered_result_code": -1}]
    }
    await client.post(f"{url_a}?task=result&secret=sa", content=json.dumps(delivered), headers=JSON)
    await client.post(f"{url_a}?task=result&secret=sa", content=json.dumps(late), headers=JSON)
    assert await status_of(store, mid) == "delivered"


async def test_result_timestamps_are_read_in_the_device_zone_and_kept_raw(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url = await add(store, "a", timezone="Africa/Nairobi")
    [mid] = await queue_some(store, "a", "one")
    await poll(client, url)
    # The App's locale form with U+202F before PM (Android 13+), and a delivery time that
    # parses as nothing: the report is still applied (S-34).
    sent_raw = "Feb 21, 2017 3:36:40\u202fPM"
    body = {
        "message_result": [
            {
                "uuid": mid,
                "sent_result_code": -1,
                "delivered_result_code": -1,
                "sent_timestamp": sent_raw,
                "delivered_timestamp": "not a time",
            }
        ]
    }
    reply = await client.post(f"{url}?task=result&secret=s", content=json.dumps(body), headers=JSON)
    assert reply.json() == {"payload": {"success": True, "error": None}}
    [message] = await messages.list_outbound(store, message_id=await public_id(store, mid))
    assert message.status.value == "delivered"
    assert message.sent_at == datetime(2017, 2, 21, 12, 36, 40, tzinfo=UTC)  # 15:36 in Nairobi
    assert (message.sent_timestamp_raw, message.delivered_timestamp_raw) == (sent_raw, "not a time")
    assert message.delivered_at is not None and message.delivered_at.year >= 2026


async def test_pacing_limits_segments_per_minute(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url = await add(store, "a", segments_per_minute=5)
    mids = await queue_some(store, "a", *[f"m{i}" for i in range(8)])
    assert await poll(client, url) == mids[:5]
    assert await poll(client, url) == []


async def test_routing_sticks_to_a_recipient_and_fails_over(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url_a = await add(store, "a", secret="sa", liveness_s=1)
    _, _, url_b = await add(store, "b", secret="sb", liveness_s=1)
    [first] = await queue_some(store, None, "first", to="+254711111111")
    assert await poll(client, url_a, "sa") == [first]
    await liveness.check_liveness(store, datetime.now(UTC))  # the server's periodic check, run now
    [second] = await queue_some(store, None, "second", to="+254711111111")
    assert await poll(client, url_b, "sb") == []  # sticky to a, which is alive
    assert await poll(client, url_a, "sa") == [second]
    [third] = await queue_some(store, None, "third", to="+254711111111")
    # The server's periodic check, run once a is silent past its liveness window (counted
    # from its stored last seen, which may lag its last poll by LAST_SEEN_EVERY).
    later = datetime.now(UTC) + LAST_SEEN_EVERY + timedelta(seconds=1.6)
    await liveness.check_liveness(store, later)
    assert await poll(client, url_b, "sb") == [third]


async def test_auto_reply_rides_on_the_reply(store: Database, client: httpx.AsyncClient) -> None:
    _, _, url = await add(store, "a", reply_from_server=True, auto_reply="Got it")
    body = f"secret=s&from=%2B254700000001&message=hi&message_id={uuid.uuid4()}"
    reply = await client.post(url, content=body.encode(), headers=FORM)
    [message] = reply.json()["payload"]["messages"]
    assert (message["to"], message["message"]) == ("+254700000001", "Got it")
    alpha = f"secret=s&from=M-PESA&message=hi&message_id={uuid.uuid4()}"
    reply = await client.post(url, content=alpha.encode(), headers=FORM)
    assert reply.json()["payload"].get("messages", []) == []


async def test_custom_keys_apply_to_e1(store: Database, client: httpx.AsyncClient) -> None:
    keys = {"from_addr": "sender", "content": "text"}
    from smssync.records import KeyMap

    _, _, url = await add(store, "a", keys=KeyMap(**keys))
    body = f"secret=s&sender=%2B254700000001&text=hello&message_id={uuid.uuid4()}"
    assert (await client.post(url, content=body.encode(), headers=FORM)).status_code == 200
    [row] = await inbox.list_inbound(store)
    assert (row.from_addr, row.content) == ("+254700000001", "hello")


async def test_storage_failure_is_503_so_the_phone_retries(store: Database) -> None:
    await add(store, "a", secret="s")
    app = create_app(Settings(), FailingStore(store, inbox.record_inbound_many))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sms"
        ) as c:
            body = f"secret=s&from=1&message=x&message_id={uuid.uuid4()}"
            reply = await c.post("/smssync", content=body.encode(), headers=FORM)
    assert reply.status_code == 503
    assert reply.json()["payload"]["success"] is False


async def test_hostile_bytes_are_stored_or_refused_never_500(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url = await add(store, "a")
    nul = await client.post(
        url, content=b"secret=s&from=a&message=x%00y&message_id=1", headers=FORM
    )
    assert (nul.status_code, nul.json()["payload"]["success"]) == (200, True)
    long_id = "x" * 300
    for _ in range(2):
        reply = await client.post(
            url, content=f"secret=s&from=b&message=m&message_id={long_id}".encode(), headers=FORM
        )
        assert reply.status_code == 200
    rows = {r.content: r for r in await inbox.list_inbound(store)}
    assert set(rows) == {"x\ufffdy", "m"}
    assert rows["m"].message_id is None and "long_message_id" in rows["m"].flags
    e5 = await client.post("/smssync?task=sent", content=b'{"queued_messages":["\\u0000"]}')
    assert e5.status_code == 403
    basic = await client.get("/smssync?task=send", auth=httpx.BasicAuth("a\x00", "b"))
    assert basic.status_code == 401
    e7 = await client.post(
        f"{url}?task=result&secret=s",
        content=b'{"message_result":[{"uuid":"\\u0000"}]}',
        headers=JSON,
    )
    assert e7.status_code == 200


async def test_not_delivered_alone_counts_only_after_a_reported_send(
    store: Database, client: httpx.AsyncClient
) -> None:
    _, _, url = await add(store, "a")
    sent, open_ = await queue_some(store, "a", "one", "two")
    await poll(client, url)
    await ack(client, url, [sent, open_])
    report = {"message_result": [{"uuid": sent, "sent_result_code": -1}]}
    await client.post(f"{url}?task=result&secret=s", content=json.dumps(report), headers=JSON)
    only_delivery = {
        "message_result": [
            {"uuid": sent, "delivered_result_code": 0},
            {"uuid": open_, "delivered_result_code": 0},
        ]
    }
    await client.post(
        f"{url}?task=result&secret=s", content=json.dumps(only_delivery), headers=JSON
    )
    assert await status_of(store, sent) == "undelivered"
    assert await status_of(store, open_) == "accepted"  # the App's default, not a report
