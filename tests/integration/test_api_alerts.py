"""The alerts API on both engines, fed by a phone's battery alert over the real Sync URL."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.api_helpers import bearer, phone


async def battery(client: httpx.AsyncClient, url: str, percent: int) -> None:
    """E8 as v2.x and the gateway send it (S-36)."""
    form = {"Task": "alert", "message": f"Battery level is at {percent}"}
    reply = await client.post(url, data=form)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"payload": {"success": True, "error": None}}


async def test_a_battery_alert_is_listed_and_acknowledged(
    api_client: httpx.AsyncClient, store: Any, keys: dict[str, str]
) -> None:
    url = await phone(store, name="p1")
    await battery(api_client, url, 14)
    await battery(api_client, url, 12)
    reply = await api_client.get("/api/v1/alerts", headers=bearer(keys["read"]))
    assert reply.status_code == 200, reply.text
    page = reply.json()
    [alert] = page["alerts"]
    assert page["ok"] is True and page["next_cursor"] is None
    assert (alert["kind"], alert["state"], alert["device"]) == ("device.battery_low", "open", "p1")
    assert alert["details"] == {"battery_percent": 14, "message": "Battery level is at 14"}
    assert alert["raised_at"].endswith("Z") and alert["resolved_at"] is None

    # Acknowledging takes the admin scope and names the key.
    path = f"/api/v1/alerts/{alert['id']}/ack"
    refused = await api_client.post(path, headers=bearer(keys["read"]))
    assert refused.status_code == 403
    assert refused.json()["ok"] is False
    acked = await api_client.post(path, headers=bearer(keys["admin"]))
    assert acked.status_code == 200, acked.text
    body = acked.json()["alert"]
    assert (body["state"], body["acknowledged_by"]) == ("acknowledged", "api:admin")
    # Still listed until the phone is heard from again.
    listed = await api_client.get("/api/v1/alerts", headers=bearer(keys["read"]))
    assert [a["state"] for a in listed.json()["alerts"]] == ["acknowledged"]


async def test_paging_all_and_bad_input(
    api_client: httpx.AsyncClient, store: Any, keys: dict[str, str]
) -> None:
    for name in ("a", "b", "c"):
        await battery(api_client, await phone(store, name=name), 10)
    first = await api_client.get("/api/v1/alerts?limit=2", headers=bearer(keys["read"]))
    page = first.json()
    assert [a["device"] for a in page["alerts"]] == ["c", "b"]
    second = await api_client.get(
        f"/api/v1/alerts?limit=2&all=true&cursor={page['next_cursor']}",
        headers=bearer(keys["read"]),
    )
    assert [a["device"] for a in second.json()["alerts"]] == ["a"]
    for bad in ("/api/v1/alerts?limit=0", "/api/v1/alerts?cursor=x", "/api/v1/alerts?all=maybe"):
        reply = await api_client.get(bad, headers=bearer(keys["read"]))
        assert reply.status_code == 400, (bad, reply.text)
        assert reply.json()["ok"] is False
    for bad_id in ("0", "x", "99999"):
        reply = await api_client.post(f"/api/v1/alerts/{bad_id}/ack", headers=bearer(keys["admin"]))
        assert reply.status_code == (404 if bad_id == "99999" else 400), reply.text
    unauthenticated = await api_client.get("/api/v1/alerts")
    assert unauthenticated.status_code == 401
