"""The opt-out list by the API."""

from __future__ import annotations

import httpx

from tests.integration.api_helpers import bearer

API = "/api/v1"


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
