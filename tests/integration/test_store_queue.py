"""enqueue and claim_outbound: order, atomicity, pacing, leases, expiry and routing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, event

from smssync.errors import Conflict, NotFound
from smssync.records import AckMode
from smssync.store import devices, liveness, messages, open_store, queue, results, schedule
from smssync.store.engine import Database
from tests.integration.store_helpers import at, device, outgoing, queue_some, status_of

HANDSHAKE = AckMode.HANDSHAKE


async def claim_ids(store: Database, device_id: int, when: float, limit: int = 20) -> list[str]:
    """Claim and return the uuids."""
    claimed = await queue.claim_outbound(store, device_id, limit, at(when))
    return [c.message_id or "" for c in claimed]


async def test_claim_hands_out_oldest_first_once(store: Database) -> None:
    a = await device(store, "a", segments_per_minute=1000)
    ids = await queue_some(store, 30)
    claimed = await queue.claim_outbound(store, a.id, 20, at(1))
    assert [c.message_id for c in claimed] == ids[:20]
    assert (claimed[0].to_addr, claimed[0].content) == ("+254700000001", "m0")
    assert await claim_ids(store, a.id, 2) == ids[20:]
    assert await claim_ids(store, a.id, 3) == []
    [message] = await messages.list_outbound(store, message_id=ids[0])
    assert message.device == "a"
    assert [h.status.value for h in message.history] == ["queued", "dispatched"]


async def test_enqueue_rejects_unknown_device_and_duplicate_ids(store: Database) -> None:
    with pytest.raises(NotFound):
        await queue.enqueue(store, [outgoing(), outgoing(device="ghost")])
    assert await messages.list_outbound(store) == []
    first = outgoing()
    await queue.enqueue(store, [first])
    with pytest.raises(Conflict):
        await queue.enqueue(store, [first])
    assert len(await messages.list_outbound(store)) == 1


async def test_enqueue_of_ten_thousand_is_a_few_statements(store: Database) -> None:
    # Bulk, not a statement per message: the cost that matters, counted rather than timed.
    batch = [outgoing(content=f"m{i}") for i in range(10_000)]
    statements: list[str] = []

    def count(conn: object, cursor: object, text: str, *args: object) -> None:
        statements.append(text)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        await queue.enqueue(store, batch)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert await messages.queue_depths(store) == {None: 10_000}
    assert 0 < len(statements) <= 30, statements


async def test_pinned_messages_go_only_to_their_device(store: Database) -> None:
    a = await device(store, "a")
    b = await device(store, "b")
    [pinned] = await queue_some(store, 1, device="a")
    assert await claim_ids(store, b.id, 1) == []
    assert await messages.queue_depths(store) == {"a": 1}
    # Even when "a" falls silent, its pinned message waits for it.
    assert await claim_ids(store, b.id, 3600) == []
    assert await claim_ids(store, a.id, 3600) == [pinned]


async def test_pacing_limits_segments_per_minute(store: Database) -> None:
    a = await device(store, "a", segments_per_minute=5)
    ids = await queue_some(store, 3, segments=2)
    assert await claim_ids(store, a.id, 0) == ids[:2]  # 4 of 5 segments
    assert await claim_ids(store, a.id, 30) == []  # 1 left, the next needs 2
    assert await claim_ids(store, a.id, 61) == ids[2:]


async def test_pacing_lets_one_long_message_through_an_idle_window(store: Database) -> None:
    a = await device(store, "a", segments_per_minute=3)
    ids = await queue_some(store, 2, segments=10)
    assert await claim_ids(store, a.id, 0) == ids[:1]
    assert await claim_ids(store, a.id, 30) == []
    assert await claim_ids(store, a.id, 61) == ids[1:]


async def test_handshake_lease_expiry_requeues(store: Database) -> None:
    a = await device(store, "a", ack_mode=HANDSHAKE, lease_s=60)
    b = await device(store, "b", ack_mode=HANDSHAKE)
    [one] = await queue_some(store, 1)
    assert await claim_ids(store, a.id, 0) == [one]
    assert await claim_ids(store, b.id, 30) == []  # lease still running
    assert await claim_ids(store, b.id, 61) == [one]  # expired, swept, offered again
    [message] = await messages.list_outbound(store, message_id=one)
    assert [(h.status.value, h.detail) for h in message.history][-2:] == [
        ("queued", "lease expired"),
        ("dispatched", "lease"),
    ]
    assert message.device == "b"


async def test_auto_lease_expiry_keeps_dispatched_and_falls_back_to_handoff(
    store: Database,
) -> None:
    a = await device(store, "a", lease_s=60)  # auto
    first, second = await queue_some(store, 2)
    assert await claim_ids(store, a.id, 0, limit=1) == [first]  # handoff: no lease
    assert await results.acknowledge(store, a.id, [first], at(1)) == [first]
    found = await devices.device_by_name(store, "a")
    assert found is not None and found.effective_mode is HANDSHAKE
    assert await claim_ids(store, a.id, 2) == [second]  # now under a lease
    assert await claim_ids(store, a.id, 100) == []  # swept: not requeued
    assert await status_of(store, second) == "dispatched"
    found = await devices.device_by_name(store, "a")
    assert found is not None and found.effective_mode is AckMode.HANDOFF
    assert [e["kind"] for e in await devices.device_events(store, device="a")] == ["ack_mode"]
    # No lease any more: nothing to sweep later either.
    assert await claim_ids(store, a.id, 1000) == []
    assert await status_of(store, second) == "dispatched"


async def test_piggyback_never_takes_a_lease(store: Database) -> None:
    a = await device(store, "a", ack_mode=HANDSHAKE, lease_s=60)
    [one] = await queue_some(store, 1)
    [claimed] = await queue.claim_outbound(store, a.id, 5, at(0), piggyback=True)
    assert claimed.message_id == one
    assert await claim_ids(store, a.id, 120) == []
    assert await status_of(store, one) == "dispatched"


async def test_expired_validity_is_never_handed_out(store: Database) -> None:
    a = await device(store, "a")
    [old] = await queue_some(store, 1, expires=10)
    [fresh] = await queue_some(store, 1, expires=100)
    assert await claim_ids(store, a.id, 20) == [fresh]
    assert await status_of(store, old) == "expired"


async def test_routing_sticks_and_fails_over(store: Database) -> None:
    a = await device(store, "a", liveness_s=60)
    b = await device(store, "b", liveness_s=60)
    [first] = await queue_some(store, 1, to_addr="+2547001")
    assert await claim_ids(store, a.id, 1) == [first]  # records the route to "a"
    # While "a" is healthy (and counted online), new messages to it are assigned to it.
    await devices.LastSeen(store).touch(a.id, at(10), "t")
    await liveness.check_liveness(store, at(10))
    [second] = await queue_some(store, 1, to_addr="+2547001", created=10)
    assert await messages.queue_depths(store) == {"a": 1}
    assert await claim_ids(store, b.id, 20) == []
    # "a" falls silent; the liveness check (a server runs it every few seconds) hands its
    # soft assignment to the fleet: "b" takes it over, and the route moves.
    await devices.LastSeen(store).touch(b.id, at(100), "t")
    assert await claim_ids(store, b.id, 69) == []  # still within a's window
    await liveness.check_liveness(store, at(100))
    assert await claim_ids(store, b.id, 100) == [second]
    [third] = await queue_some(store, 1, to_addr="+2547001", created=101)
    assert await messages.queue_depths(store) == {"b": 1}
    assert await claim_ids(store, b.id, 102) == [third]


async def test_silent_sticky_device_is_not_assigned(store: Database) -> None:
    a = await device(store, "a", liveness_s=60)
    [first] = await queue_some(store, 1)
    assert await claim_ids(store, a.id, 0) == [first]
    await queue_some(store, 1, created=500)  # "a" silent since 0
    assert await messages.queue_depths(store) == {None: 1}


async def test_concurrent_claimers_never_share_a_message(store: Database, store_url: str) -> None:
    fast = {"segments_per_minute": 100_000, "batch_limit": 7}
    names = [f"d{i}" for i in range(4)]
    ids = [(await device(store, name, **fast)).id for name in names]
    queued = set(await queue_some(store, 500))
    # A second store instance: another pool on PostgreSQL, another writer on SQLite.
    other = open_store(store_url)
    await other.open()
    try:
        seen: list[str] = []

        async def drain(s: Database, device_id: int) -> None:
            while True:
                got = await claim_ids(s, device_id, 1, limit=7)
                if not got:
                    return
                seen.extend(got)

        await asyncio.gather(*(drain(s, i) for i in ids for s in (store, other)))
    finally:
        await other.close()
    assert len(seen) == len(set(seen)) == 500
    assert set(seen) == queued


async def test_liveness_check_hands_only_soft_assignments_of_the_silent_to_the_fleet(
    store: Database,
) -> None:
    a = await device(store, "a", liveness_s=60, seen=None)
    b = await device(store, "b", liveness_s=60)
    assert await liveness.check_liveness(store, at(0)) == [("b", True)]  # "a" recorded offline
    await devices.LastSeen(store).touch(a.id, at(1), "t")
    [first] = await queue_some(store, 1, to_addr="+2547001")
    assert await claim_ids(store, a.id, 1) == [first]  # the route sticks to "a"
    # Until the check counts "a" online again, nothing new sticks to it.
    [unassigned] = await queue_some(store, 1, to_addr="+2547001", created=30)
    assert await messages.queue_depths(store) == {None: 1}
    assert await claim_ids(store, b.id, 30) == [unassigned]
    assert await liveness.check_liveness(store, at(30)) == [("a", True)]
    [mine] = await queue_some(store, 1, to_addr="+2547003", created=30)
    [pinned] = await queue_some(store, 1, device="a", created=30)
    assert await claim_ids(store, a.id, 31, limit=1) == [mine]  # the route sticks to "a"
    [soft] = await queue_some(store, 1, to_addr="+2547003", created=40)
    assert await messages.queue_depths(store) == {"a": 2}
    await devices.LastSeen(store).touch(b.id, at(100), "t")
    assert await liveness.check_liveness(store, at(100)) == [("a", False)]
    assert await messages.queue_depths(store) == {None: 1, "a": 1}
    assert await claim_ids(store, b.id, 100) == [soft]
    assert await claim_ids(store, a.id, 200) == [pinned]


async def test_a_periodic_run_is_taken_by_one_process_per_slot(
    store: Database, store_url: str
) -> None:
    other = open_store(store_url)
    await other.open()
    try:
        taken = await asyncio.gather(
            *(schedule.claim_run(s, "job", at(10), 5) for s in (store, other))
        )
        assert sorted(taken) == [False, True]
        assert not await schedule.claim_run(store, "job", at(14.9), 5)  # the same slot
        assert not await schedule.claim_run(other, "job", at(3), 5)  # an earlier one
        assert await schedule.claim_run(other, "other job", at(14.9), 5)
        assert await schedule.claim_run(other, "job", at(15), 5)
        assert not await schedule.claim_run(store, "job", at(19), 5)
    finally:
        await other.close()
