"""``/api/v1/conversations``, ``/api/v1/search`` and ``/api/v1/opt-outs`` on both stores."""

from __future__ import annotations

import httpx

from smssync.store.engine import Database
from tests.integration.api_helpers import bearer, incoming, phone

API = "/api/v1"


async def test_threads_by_number_with_unread_counts_and_pages(
    api_client: httpx.AsyncClient, keys: dict[str, str], store: Database
) -> None:
    url = await phone(store)
    read, send = bearer(keys["read"]), bearer(keys["send"])
    await incoming(api_client, url, "+254700000001", "hello", "m1")
    await incoming(api_client, url, "0700000002", "clinic today?", "m2")
    await incoming(api_client, url, "+254700000001", "anyone?", "m3")
    sent = await api_client.post(
        f"{API}/messages", json={"to": "+254700000001", "body": "yes, open"}, headers=send
    )
    assert sent.status_code == 201
    first = (await api_client.get(f"{API}/conversations?limit=1", headers=read)).json()
    [ann] = first["conversations"]
    assert (ann["address"], ann["last_direction"], ann["last_body"], ann["unread"]) == (
        "+254700000001",
        "out",
        "yes, open",
        2,
    )
    rest = await api_client.get(
        f"{API}/conversations", params={"cursor": first["next_cursor"]}, headers=read
    )
    assert [c["address"] for c in rest.json()["conversations"]] == ["+254700000002"]
    found = await api_client.get(f"{API}/conversations?number=0002", headers=read)
    assert [c["address"] for c in found.json()["conversations"]] == ["+254700000002"]

    page = await api_client.get(f"{API}/conversations/0700000001/messages?limit=2", headers=read)
    body = page.json()
    assert [(m["direction"], m["body"], m["status"]) for m in body["messages"]] == [
        ("out", "yes, open", "queued"),
        ("in", "anyone?", None),
    ]
    more = await api_client.get(
        f"{API}/conversations/+254700000001/messages",
        params={"cursor": body["next_cursor"]},
        headers=read,
    )
    assert [m["body"] for m in more.json()["messages"]] == ["hello"]
    assert more.json()["next_cursor"] is None

    assert (
        await api_client.post(f"{API}/conversations/0700000001/read", headers=read)
    ).status_code == 403
    marked = await api_client.post(f"{API}/conversations/0700000001/read", headers=send)
    assert marked.json() == {"ok": True}
    missing = await api_client.post(f"{API}/conversations/0799999999/read", headers=send)
    assert missing.status_code == 404

    hits = await api_client.get(f"{API}/search", params={"text": "CLINIC"}, headers=read)
    assert [m["address"] for m in hits.json()["messages"]] == ["+254700000002"]
    bad = await api_client.get(f"{API}/conversations", params={"cursor": "x"}, headers=read)
    assert bad.status_code == 400


async def test_opt_out_list_by_api(api_client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    send, read = bearer(keys["send"]), bearer(keys["read"])
    added = await api_client.post(f"{API}/opt-outs", json={"number": "0700000005"}, headers=send)
    assert added.json() == {"ok": True, "number": "+254700000005", "changed": True}
    again = await api_client.post(f"{API}/opt-outs", json={"number": "+254700000005"}, headers=send)
    assert again.json()["changed"] is False
    listed = (await api_client.get(f"{API}/opt-outs", headers=read)).json()
    assert [(o["number"], o["source"]) for o in listed["opt_outs"]] == [("+254700000005", "api")]
    bad = await api_client.post(f"{API}/opt-outs", json={"number": "abc"}, headers=send)
    assert bad.status_code == 400
    gone = await api_client.delete(f"{API}/opt-outs/0700000005", headers=send)
    assert gone.json()["changed"] is True
    assert (await api_client.get(f"{API}/opt-outs", headers=read)).json()["opt_outs"] == []
