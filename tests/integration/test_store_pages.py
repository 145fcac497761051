"""The list pages' keyset reads: outgoing and incoming SMS newest first, conversations,
one number's thread of both directions, and search."""

from __future__ import annotations

import dataclasses

from smssync.records import NewInbound
from smssync.store import conversations, inbox, messages, queue
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


async def test_conversations_thread_by_number_newest_first_with_unread(store: Database) -> None:
    phone = await device(store, "a")
    ann, bob, cy = "+254700000001", "+254700000002", "+254700000003"
    await inbox.record_inbound(store, sms_from(phone.id, ann, "hello", "k1", 1))
    await inbox.record_inbound(store, sms_from(phone.id, bob, "hi", "k2", 2))
    await inbox.record_inbound(store, sms_from(phone.id, ann, "are you there", "k3", 3))
    await queue.enqueue(store, [outgoing(cy, "promo", created=4)])
    await queue.enqueue(store, [outgoing(ann, "yes", created=5)])
    # A duplicate of an SMS already stored changes nothing.
    await inbox.record_inbound(store, sms_from(phone.id, bob, "hi", "k2", 9))
    page = await conversations.conversation_page(store, limit=2)
    assert [(c.address, c.last_direction, c.last_content, c.unread) for c in page] == [
        (ann, "out", "yes", 2),
        (cy, "out", "promo", 0),
    ]
    assert page[0].last_device is None  # queued, not yet assigned to a phone
    cursor = (int(page[-1].last_at.timestamp() * 1_000_000), page[-1].address)
    rest = await conversations.conversation_page(store, cursor, limit=2)
    assert [(c.address, c.unread, c.last_device) for c in rest] == [(bob, 1, "a")]
    assert [c.address for c in await conversations.conversation_page(store, number="0002")] == [bob]
    assert await conversations.mark_read(store, ann)
    assert not await conversations.mark_read(store, "+254799999999")
    [first] = await conversations.conversation_page(store, limit=1)
    assert first.unread == 0


async def test_a_thread_interleaves_both_directions_across_pages(store: Database) -> None:
    phone = await device(store, "a")
    ann = "+254700000001"
    expected: list[str] = []
    for i in range(9):
        if i % 3 == 0:
            await queue.enqueue(store, [outgoing(ann, f"out{i}", created=i)])
            expected.append(f"out{i}")
        else:
            await inbox.record_inbound(store, sms_from(phone.id, ann, f"in{i}", f"k{i}", i))
            expected.append(f"in{i}")
        await inbox.record_inbound(store, sms_from(phone.id, "+254700000002", "other", f"x{i}", i))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = await conversations.thread(store, ann, cursor, limit=4)
        seen += [m.content for m in page]
        pages += 1
        if cursor is None:
            break
    assert seen == expected[::-1]
    assert pages == 3
    page, _ = await conversations.thread(store, ann, limit=1)
    assert (page[0].direction, page[0].status) == ("in", None)


async def test_search_finds_text_in_both_directions_any_case(store: Database) -> None:
    phone = await device(store, "a")
    await inbox.record_inbound(store, sms_from(phone.id, "+254700000001", "Clinic TODAY?", "k1", 1))
    await inbox.record_inbound(store, sms_from(phone.id, "+254700000002", "nothing", "k2", 2))
    await queue.enqueue(store, [outgoing("+254700000003", "the clinic opens at 9", created=3)])
    await queue.enqueue(store, [outgoing("+254700000003", "100% off_", created=4)])
    found, cursor = await conversations.search_messages(store, "CLINIC")
    assert [(m.direction, m.address) for m in found] == [
        ("out", "+254700000003"),
        ("in", "+254700000001"),
    ]
    assert cursor is None
    # LIKE's wildcards are searched as text.
    found, _ = await conversations.search_messages(store, "0% o")
    assert [m.content for m in found] == ["100% off_"]
    assert (await conversations.search_messages(store, "_x"))[0] == []


async def test_one_conversation_by_its_number(store: Database) -> None:
    await queue.enqueue(store, [outgoing("+254700000009", "hi", created=1)])
    found = await conversations.conversation(store, "+254700000009")
    assert found is not None and (found.last_content, found.unread) == ("hi", 0)
    assert await conversations.conversation(store, "+254700000008") is None
