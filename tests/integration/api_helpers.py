"""Fixtures for the application API in-process: the app, keys, a phone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from smssync.records import DeviceSettings
from smssync.server.credentials import create_device
from smssync.store.engine import Database

JSON = {"content-type": "application/json"}


def bearer(key: str) -> dict[str, str]:
    """Return the Authorization header for a key."""
    return {"authorization": f"Bearer {key}"}


async def phone(store: Database, name: str = "p1", **settings: Any) -> str:
    """Register a device without a secret; return its Sync URL path."""
    _, issued = await create_device(
        store, name, datetime.now(UTC), secret=None, settings=DeviceSettings(**settings)
    )
    return f"/smssync/d/{issued.token}"


async def poll(client: httpx.AsyncClient, url: str) -> list[str]:
    """E4: return the uuids handed out."""
    reply = await client.get(f"{url}?task=send")
    assert reply.status_code == 200, reply.text
    return [m["uuid"] for m in reply.json()["payload"]["messages"]]


async def ack(client: httpx.AsyncClient, url: str, uuids: list[str]) -> list[str]:
    """E5: return the uuids listed back."""
    reply = await client.post(
        f"{url}?task=sent", content=json.dumps({"queued_messages": uuids}), headers=JSON
    )
    assert reply.status_code == 200, reply.text
    listed: list[str] = reply.json()["message_uuids"]
    return listed


async def report(client: httpx.AsyncClient, url: str, uuid: str, sent: int, delivered: int) -> None:
    """E7: report one message's sent and delivery codes."""
    result = [
        {
            "uuid": uuid,
            "sent_result_code": sent,
            "sent_result_message": "",
            "delivered_result_code": delivered,
            "delivered_result_message": "",
        }
    ]
    body = json.dumps({"message_result": result})
    reply = await client.post(f"{url}?task=result", content=body, headers=JSON)
    assert reply.status_code == 200, reply.text


async def incoming(client: httpx.AsyncClient, url: str, sender: str, text: str, mid: str) -> Any:
    """E1: post an incoming SMS; return the reply's JSON."""
    form = {"from": sender, "message": text, "message_id": mid, "sent_timestamp": "1700000000000"}
    reply = await client.post(url, data=form)
    assert reply.status_code == 200, reply.text
    return reply.json()
