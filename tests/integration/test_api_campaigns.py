"""``/api/v1/campaigns``: create from a list or CSV, preview, counts that follow the phone's
reports, pause, resume, cancel and the results export; on both stores."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from smssync.records import AckMode
from smssync.store import optouts
from smssync.store.engine import Database
from tests.integration.api_helpers import ack, bearer, phone, poll, report
from tests.integration.store_helpers import T0

API = "/api/v1/campaigns"
CSV = "number,name\n0700000001,Ann\n0700 000 002,Bob\nabc,Cy\n+254700000003,Dee\n"


async def create(client: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    """POST a campaign."""
    return await client.post(API, json=body, headers=bearer(key))


async def test_create_from_csv_previews_counts_and_lists_bad_numbers(
    api_client: httpx.AsyncClient, keys: dict[str, str], store: Database
) -> None:
    await optouts.add_opt_out(store, "+254700000003", "test", T0)
    reply = await create(api_client, keys["send"], template="Hi {name}, clinic ✓ at 10", csv=CSV)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert (body["encoding"], body["segments_per_message"]) == ("ucs2", 1)
    assert body["preview"][0] == {
        "to": "+254700000001",
        "body": "Hi Ann, clinic ✓ at 10",
        "segments": 1,
    }
    assert body["invalid"] == [
        {"index": 2, "to": "abc", "message": "'abc' is not a phone number"},
        {"index": 3, "to": "+254700000003", "message": "on the opt-out list"},
    ]
    assert body["segments"] == 2
    assert body["estimate"] == {"online_phones": 0, "sms_per_minute": 30, "minutes": 1}
    campaign = body["campaign"]
    assert campaign["status"] == "running"
    assert campaign["recipients"] == {
        "pending": 0,
        "released": 2,
        "invalid": 1,
        "opted_out": 1,
        "cancelled": 0,
    }
    assert campaign["messages"] == {"queued": 2}
    assert campaign["released_ratio"] == 1.0
    got = await api_client.get(f"{API}/{campaign['id']}", headers=bearer(keys["read"]))
    assert got.json()["campaign"]["messages"] == {"queued": 2}


async def test_dry_run_stores_nothing(api_client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    reply = await create(
        api_client, keys["send"], template="x" * 161, to=["0700000001"], dry_run=True
    )
    assert reply.status_code == 200, reply.text
    assert (reply.json()["campaign"], reply.json()["segments"]) == (None, 2)
    listed = await api_client.get(API, headers=bearer(keys["read"]))
    assert listed.json() == {"ok": True, "campaigns": [], "next_cursor": None}


async def test_refusals_are_400_403_404_409(
    api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    for body in (
        {"template": "hi", "to": ["abc"]},
        {"template": "hi", "to": ["0700000001"], "csv": CSV},
        {"template": "hi"},
        {"template": "hi {a.b}", "to": ["0700000001"]},
        {"template": "hi", "csv": "name\nAnn\n"},
        {"template": "hi", "to": ["0700000001"], "device": "ghost"},
        {"template": "hi", "to": ["0700000001"], "window": {"start": "8:00", "end": "8:00"}},
        {
            "template": "hi",
            "to": ["0700000001"],
            "window": {"start": "8:00", "end": "9:00", "tz": "Mars/Base"},
        },
    ):
        reply = await create(api_client, keys["send"], **body)
        assert reply.status_code == 400, (body, reply.text)
        assert reply.json()["ok"] is False
    assert (
        await create(api_client, keys["read"], template="hi", to=["0700000001"])
    ).status_code == 403
    assert (await api_client.get(f"{API}/7", headers=bearer(keys["read"]))).status_code == 404
    made = (await create(api_client, keys["send"], template="hi", to=["0700000001"])).json()
    cid = made["campaign"]["id"]
    resume = await api_client.post(f"{API}/{cid}/resume", headers=bearer(keys["send"]))
    assert resume.status_code == 409
    assert resume.json()["error"] == f"campaign {cid} is running, not paused"


async def test_counts_follow_the_phone_and_the_export_says_each_fate(
    api_client: httpx.AsyncClient, keys: dict[str, str], store: Database
) -> None:
    url = await phone(store, "p1", ack_mode=AckMode.HANDSHAKE, segments_per_minute=100)
    numbers = [f"07000000{i:02d}" for i in range(1, 6)] + ["nope"]
    made = await create(api_client, keys["send"], template="Vaccination day", to=numbers)
    cid = made.json()["campaign"]["id"]
    uuids = await poll(api_client, url)
    assert len(uuids) == 5
    assert await ack(api_client, url, uuids) == uuids
    await report(api_client, url, uuids[0], -1, -1)  # sent and delivered
    await report(api_client, url, uuids[1], 1, 0)  # failed: generic failure
    got = (await api_client.get(f"{API}/{cid}", headers=bearer(keys["read"]))).json()
    assert got["campaign"]["messages"] == {"delivered": 1, "failed": 1, "accepted": 3}
    export = await api_client.get(f"{API}/{cid}/results.csv", headers=bearer(keys["read"]))
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["to"], r["state"], r["status"]) for r in rows] == [
        ("+254700000001", "released", "delivered"),
        ("+254700000002", "released", "failed"),
        ("+254700000003", "released", "accepted"),
        ("+254700000004", "released", "accepted"),
        ("+254700000005", "released", "accepted"),
        ("", "invalid", ""),
    ]
    assert rows[0]["device"] == "p1" and rows[0]["delivered_at"].endswith("Z")
    assert rows[5]["to_raw"] == "nope" and "not a phone number" in rows[5]["error"]


async def test_pause_resume_cancel(
    api_client: httpx.AsyncClient, keys: dict[str, str], store: Database
) -> None:
    url = await phone(store, "p1", segments_per_minute=1000)
    numbers = [f"0700{i:06d}" for i in range(100)]
    made = await create(api_client, keys["send"], template="Hello", to=numbers)
    cid = made.json()["campaign"]["id"]
    assert made.json()["campaign"]["recipients"]["released"] == 60
    assert len(await poll(api_client, url)) == 20
    paused = await api_client.post(f"{API}/{cid}/pause", headers=bearer(keys["send"]))
    assert paused.status_code == 200, paused.text
    assert paused.json()["campaign"]["recipients"]["pending"] == 80
    assert await poll(api_client, url) == []
    resumed = await api_client.post(f"{API}/{cid}/resume", headers=bearer(keys["send"]))
    assert resumed.json()["campaign"]["status"] == "running"
    cancelled = await api_client.post(f"{API}/{cid}/cancel", headers=bearer(keys["send"]))
    assert cancelled.json()["campaign"]["recipients"]["cancelled"] == 80
    again = await api_client.post(f"{API}/{cid}/cancel", headers=bearer(keys["send"]))
    assert again.status_code == 409
    page = await api_client.get(f"{API}?limit=1", headers=bearer(keys["read"]))
    assert [c["id"] for c in page.json()["campaigns"]] == [cid]
