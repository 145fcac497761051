"""The list pages' keyset reads: outgoing and incoming SMS newest first, by cursor."""

from __future__ import annotations

import dataclasses

from smssync.records import NewInbound
from smssync.store import inbox, messages, queue
from smssync.store.engine import Database
from tests.integration.store_helpers import at, device, incoming, outgoing


def sms_from(device_id: int, sender: str, text: str, key: str, when: float) -> NewInbound:
    """An incoming SMS from ``sender`` received at ``at(when)``."""
    return dataclasses.replace(
        incoming(device_id, key, text), from_addr=sender, received_at=at(when)
    )


async def test_outbound_and_inbound_newest_first_by_cursor(store: Database) -> None:
    phone = await device(store, "a")
    await queue.enqueue(store, [outgoing(content=f"o{i}", created=i) for i in range(7)])
    for i in range(7):
        await inbox.record_inbound(store, sms_from(phone.id, "+254700000001", f"i{i}", f"k{i}", i))
    seen: list[str] = []
    before = None
    while True:
        page = await messages.outbound_newest(store, before, limit=3)
        seen += [m.content for m in page]
        if len(page) < 3:
            break
        before = page[-1].seq
    assert seen == [f"o{i}" for i in reversed(range(7))]
    assert [h.status.value for h in page[0].history] == ["queued"]
    first = await inbox.inbound_newest(store, limit=4)
    rest = await inbox.inbound_newest(store, first[-1].id, limit=4)
    assert [m.content for m in first + rest] == [f"i{i}" for i in reversed(range(7))]
    assert await inbox.inbound_newest(store, device="a", limit=2) == first[:2]
    assert await inbox.inbound_newest(store, device="ghost") == []
    assert await messages.outbound_newest(store, status="sent") == []
