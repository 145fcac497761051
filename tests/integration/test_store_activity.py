"""Activity counts over time and per phone, on both engines, and the API that shows them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import httpx
import pytest

from smssync.records import OutboundStatus, SendOutcome
from smssync.store import activity, inbox, queue, results
from smssync.store.engine import Database
from tests.integration.store_helpers import T0, at, device, incoming, queue_some

S = OutboundStatus
HOUR = timedelta(hours=1)


async def receive(store: Database, device_id: int, key: str, seconds: float) -> None:
    message = dataclasses.replace(incoming(device_id, key), received_at=at(seconds))
    created, _ = await inbox.record_inbound(store, message)
    assert created


async def send(store: Database, device_id: int, count: int, when: float) -> list[str]:
    ids = await queue_some(store, count, created=when)
    claimed = await queue.claim_outbound(store, device_id, count, at(when))
    assert [c.message_id for c in claimed] == ids
    return ids


async def test_counts_fall_into_their_hours_and_every_hour_is_listed(store: Database) -> None:
    a = await device(store, "a", segments_per_minute=1000)
    await receive(store, a.id, "k1", 10)
    await receive(store, a.id, "k2", 3599)
    await receive(store, a.id, "k3", 2 * 3600 + 1)
    await receive(store, a.id, "early", -1)  # before the range
    ids = await send(store, a.id, 3, 60)
    await results.record_results(
        store, a.id, [(i, SendOutcome(S.SENT, None, None)) for i in ids[:2]], at(3700)
    )
    await results.record_results(
        store, a.id, [(ids[0], SendOutcome(None, None, S.DELIVERED))], at(3800)
    )
    await results.record_results(
        store, a.id, [(ids[2], SendOutcome(S.FAILED, "no service", None))], at(3900)
    )

    found = await activity.activity(store, T0, T0 + 3 * HOUR, HOUR)
    assert [(b.start, b.received, b.sent, b.delivered, b.failed) for b in found] == [
        (T0, 2, 0, 0, 1),  # the failure counts when it was handed out
        (T0 + HOUR, 0, 2, 1, 0),  # sent in the second hour, one of them delivered
        (T0 + 2 * HOUR, 1, 0, 0, 0),
    ]
    [phone] = await activity.device_activity(store, T0, T0 + 3 * HOUR)
    assert (phone.device, phone.handed_out, phone.sent, phone.delivered, phone.failed) == (
        "a",
        3,
        2,
        1,
        1,
    )


async def test_days_start_at_local_midnight(store: Database) -> None:
    a = await device(store, "a")
    # T0 is 12:00 UTC: 15:00 at UTC+3, so 10 h later is 01:00 of the next local day.
    await receive(store, a.id, "k1", 0)
    await receive(store, a.id, "k2", 10 * 3600)
    day = timedelta(days=1)
    found = await activity.activity(store, T0, T0 + day, day, timedelta(hours=3))
    local_midnight = T0 - timedelta(hours=15)
    assert [(b.start, b.received) for b in found] == [
        (local_midnight, 1),
        (local_midnight + day, 1),
    ]


async def test_ranges_are_checked(store: Database) -> None:
    with pytest.raises(ValueError, match="later"):
        await activity.activity(store, T0, T0, HOUR)
    with pytest.raises(ValueError, match="buckets"):
        await activity.activity(store, T0, T0 + timedelta(days=400), HOUR)


async def test_the_api_shows_activity_to_readers_only(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    a = await device(store, "a")
    await receive(store, a.id, "k1", 10)
    query = {"since": "2030-01-01T12:00:00Z", "until": "2030-01-01T14:00:00Z"}
    reply = await api_client.get(
        "/api/v1/activity", params=query, headers={"Authorization": f"Bearer {keys['read']}"}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [(b["start"], b["received"]) for b in body["buckets"]] == [
        ("2030-01-01T12:00:00Z", 1),
        ("2030-01-01T13:00:00Z", 0),
    ]
    assert body["devices"] == []
    refused = await api_client.get(
        "/api/v1/activity", params=query, headers={"Authorization": f"Bearer {keys['send']}"}
    )
    assert refused.status_code == 403
    backwards = {**query, "until": "2030-01-01T11:00:00Z"}
    bad = await api_client.get(
        "/api/v1/activity", params=backwards, headers={"Authorization": f"Bearer {keys['read']}"}
    )
    assert bad.status_code == 400 and "later" in bad.text
