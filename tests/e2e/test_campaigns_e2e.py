"""A CSV bulk send of 200 numbers through a real ``smssync serve``: the server releases it at
the phone's pace, the phone sends and reports over HTTP, and the campaign's counts and its
results export end with every message delivered."""

from __future__ import annotations

import csv
import io
import json
import time

import httpx

from tests.e2e.serverproc import Server

JSON = {"content-type": "application/json"}


def deliver_all(http: httpx.Client, url: str) -> int:
    """Poll, acknowledge and report delivered everything handed out; return how many."""
    reply = http.get(url + "?task=send")
    assert reply.status_code == 200, reply.text
    uuids = [m["uuid"] for m in reply.json()["payload"]["messages"]]
    if not uuids:
        return 0
    acked = http.post(
        url + "?task=sent", content=json.dumps({"queued_messages": uuids}), headers=JSON
    )
    assert acked.json()["message_uuids"] == uuids
    results = [
        {"uuid": u, "sent_result_code": -1, "sent_result_message": "",
         "delivered_result_code": -1, "delivered_result_message": ""}
        for u in uuids
    ]  # fmt: skip
    body = json.dumps({"message_result": results})
    assert http.post(url + "?task=result", content=body, headers=JSON).status_code == 200
    return len(uuids)


def test_a_csv_campaign_of_200_is_released_sent_and_counted(
    server: Server, http: httpx.Client
) -> None:
    dev = server.add_device("bulk", "--no-secret")
    server.cli("device", "set", "bulk", "--segments-per-minute", "1000", "--batch-limit", "50")
    key = server.cli_json("apikey", "create", "--scope", "admin")["key"]
    api = {"authorization": f"Bearer {key}"}
    people = "phone,first\n" + "".join(f"0711{i:06d},P{i}\n" for i in range(200)) + "zzz,Nobody\n"
    made = http.post(
        server.base + "/api/v1/campaigns",
        json={"name": "drive", "template": "Hello {first}", "csv": people},
        headers=api,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["invalid"] == [
        {"index": 200, "to": "zzz", "message": "'zzz' is not a phone number"}
    ]
    cid = body["campaign"]["id"]
    # Only the phones' next minutes are queued at once; the rest is held.
    assert 0 < body["campaign"]["recipients"]["released"] < 200
    sent = 0
    deadline = time.monotonic() + 120
    while sent < 200 and time.monotonic() < deadline:
        got = deliver_all(http, dev["sync_url"])
        sent += got
        if not got:
            time.sleep(0.5)
    assert sent == 200
    campaign = http.get(f"{server.base}/api/v1/campaigns/{cid}", headers=api).json()["campaign"]
    assert campaign["messages"] == {"delivered": 200}
    assert campaign["recipients"]["released"] == 200
    assert campaign["status"] == "done" or campaign["recipients"]["pending"] == 0
    export = http.get(f"{server.base}/api/v1/campaigns/{cid}/results.csv", headers=api)
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 201
    assert {r["status"] for r in rows[:200]} == {"delivered"}
    assert rows[0]["to"] == "+254711000000" and rows[0]["device"] == "bulk"
