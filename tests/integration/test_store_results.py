"""E5 acknowledgement, E6 listing, E7 results and cancel, on both engines."""

from __future__ import annotations

from typing import Any

import pytest

from smssync.errors import Conflict, NotFound
from smssync.records import AckMode, OutboundStatus, SendOutcome
from smssync.store import devices, messages, queue, results
from smssync.store.engine import Database
from tests.integration.store_helpers import at, device, queue_some, status_of

S = OutboundStatus
SENT = SendOutcome(S.SENT, None, None)
DELIVERED = SendOutcome(None, None, S.DELIVERED)
FAILED = SendOutcome(S.FAILED, "no service", None)


async def dispatched(store: Database, count: int = 3, **settings: Any) -> tuple[int, list[str]]:
    """Add device "a" and dispatch ``count`` messages to it."""
    a = await device(store, "a", **settings)
    ids = await queue_some(store, count)
    claimed = await queue.claim_outbound(store, a.id, count, at(1))
    assert [c.message_id for c in claimed] == ids
    return a.id, ids


async def test_acknowledge_lists_in_request_order_and_skips_others(store: Database) -> None:
    a, ids = await dispatched(store, 3, ack_mode=AckMode.HANDSHAKE)
    b = await device(store, "b")
    [not_dispatched] = await queue_some(store, 1)
    await results.cancel(store, ids[1], at(2))
    asked = [ids[2], "unknown", ids[1], ids[0], ids[2], not_dispatched, ""]
    assert await results.acknowledge(store, b.id, asked, at(3)) == []
    assert await results.acknowledge(store, a, asked, at(3)) == [ids[2], ids[0]]
    assert [await status_of(store, i) for i in ids] == ["accepted", "cancelled", "accepted"]
    assert await status_of(store, not_dispatched) == "queued"
    # Repeating it lists nothing: they are no longer dispatched.
    assert await results.acknowledge(store, a, asked, at(4)) == []


async def test_acknowledge_switches_auto_to_handshake_only(store: Database) -> None:
    a = await device(store, "a", ack_mode=AckMode.HANDOFF)
    await results.acknowledge(store, a.id, ["x"], at(1))
    found = await devices.device_by_name(store, "a")
    assert found is not None and found.effective_mode is AckMode.HANDOFF


async def test_lease_owner(store: Database) -> None:
    a, ids = await dispatched(store, 2)
    b = await device(store, "b")
    # Other recipients: the first one's sticky route would assign them to "a".
    [other] = await queue_some(store, 1, to_addr="+2547002")
    [queued] = await queue_some(store, 1, to_addr="+2547003")
    await queue.claim_outbound(store, b.id, 1, at(2))
    assert await results.lease_owner(store, ids) == a
    assert await results.lease_owner(store, [ids[0], "unknown", queued]) == a
    assert await results.lease_owner(store, [other]) == b.id
    assert await results.lease_owner(store, [ids[0], other]) is None
    assert await results.lease_owner(store, [queued, "unknown"]) is None
    assert await results.lease_owner(store, []) is None


async def test_awaiting_results_never_gives_up_on_unsent_by_count(store: Database) -> None:
    a, ids = await dispatched(store, 3)
    await results.acknowledge(store, a, ids[:2], at(2))
    # Listed far more often than any count limit: an accepted or handed-off message has no
    # reported send, so it never becomes delivery_unknown by listings (issue 13).
    for n in range(20):
        assert await results.awaiting_results(store, a, at(10 + n), 2, 5, 3600) == ids[:2]
    assert await results.awaiting_results(store, a, at(40), 100, 5, 3600) == ids
    assert [await status_of(store, i) for i in ids] == ["accepted", "accepted", "dispatched"]


async def test_awaiting_results_gives_up_on_a_sent_message_after_max_listings(
    store: Database,
) -> None:
    a, ids = await dispatched(store, 2)
    await results.acknowledge(store, a, ids, at(2))
    await results.record_results(store, a, [(ids[0], SENT)], at(3))
    for n in range(3):
        assert await results.awaiting_results(store, a, at(10 + n), 100, 3, 3600) == ids
    # The sent one was listed three times without a delivery report: given up on. The
    # accepted one, listed as often, stays: nothing says it was sent.
    assert await results.awaiting_results(store, a, at(20), 100, 3, 3600) == ids[1:]
    assert [await status_of(store, i) for i in ids] == ["delivery_unknown", "accepted"]
    [message] = await messages.list_outbound(store, message_id=ids[0])
    assert message.history[-1].detail == "sent; no delivery report in time"
    # No count limit (0, the default): listed for as long as the time limit allows.
    await results.record_results(store, a, [(ids[1], SENT)], at(21))
    for n in range(10):
        assert await results.awaiting_results(store, a, at(30 + n), 100, 0, 3600) == ids[1:]
    assert await status_of(store, ids[1]) == "sent"


async def test_awaiting_results_gives_up_by_time_only_on_sent_messages(store: Database) -> None:
    a, ids = await dispatched(store, 3)
    await results.acknowledge(store, a, ids[:2], at(2))
    await results.record_results(store, a, [(ids[1], SENT)], at(3))
    assert await results.awaiting_results(store, a, at(100), 100, 0, 3600) == ids
    # Past the age: the sent one is delivery_unknown (true: sent, no report); the accepted
    # and the handed-off one keep their status and are no longer asked about.
    assert await results.awaiting_results(store, a, at(3602), 100, 0, 3600) == []
    assert [await status_of(store, i) for i in ids] == [
        "accepted",
        "delivery_unknown",
        "dispatched",
    ]
    # Reports that come after the server stopped asking still move each one forward.
    late = [(ids[0], SENT), (ids[1], DELIVERED), (ids[2], FAILED)]
    assert await results.record_results(store, a, late, at(9000)) == 3
    assert [await status_of(store, i) for i in ids] == ["sent", "delivered", "failed"]


async def test_awaiting_results_skips_messages_under_a_lease(store: Database) -> None:
    a, ids = await dispatched(store, 1, ack_mode=AckMode.HANDSHAKE)
    # Not confirmed by E5: the lease may still return it to the queue for another phone.
    assert await results.awaiting_results(store, a, at(2), 100, 0, 3600) == []
    assert await results.acknowledge(store, a, ids, at(3)) == ids
    assert await results.awaiting_results(store, a, at(4), 100, 0, 3600) == ids


async def test_awaiting_results_only_lists_own_messages(store: Database) -> None:
    await dispatched(store, 2)
    b = await device(store, "b")
    assert await results.awaiting_results(store, b.id, at(5), 100, 5, 3600) == []


async def test_record_results_never_goes_backwards(store: Database) -> None:
    a, ids = await dispatched(store, 3)
    outcomes = [
        (ids[0], SENT),
        (ids[0], DELIVERED),
        (ids[1], FAILED),
        (ids[2], SendOutcome(S.SENT, None, S.UNDELIVERED)),
    ]
    assert await results.record_results(store, a, outcomes, at(5)) == 3
    assert [await status_of(store, i) for i in ids] == ["delivered", "failed", "undelivered"]
    # Repeating, or a late "sent", changes nothing.
    assert await results.record_results(store, a, outcomes, at(6)) == 0
    assert await results.record_results(store, a, [(ids[0], SENT), (ids[1], SENT)], at(7)) == 0
    # A delivery report after a failure is ignored: failed is final.
    assert await results.record_results(store, a, [(ids[1], DELIVERED)], at(8)) == 0
    [message] = await messages.list_outbound(store, message_id=ids[1])
    assert message.reason == "no service"
    [message] = await messages.list_outbound(store, message_id=ids[0])
    assert [h.status.value for h in message.history] == [
        "queued",
        "dispatched",
        "sent",
        "delivered",
    ]


async def test_results_keep_the_phones_timestamps_as_written(store: Database) -> None:
    a, ids = await dispatched(store, 2)
    phone_time = at(3)
    reported = SendOutcome(
        S.SENT,
        None,
        S.DELIVERED,
        sent_at=phone_time,
        delivered_at=None,  # did not parse
        sent_timestamp_raw="Feb 21, 2017 3:36:40\u202fPM",
        delivered_timestamp_raw="sometime",
    )
    assert await results.record_results(store, a, [(ids[0], reported)], at(5)) == 1
    [message] = await messages.list_outbound(store, message_id=ids[0])
    assert (message.sent_at, message.sent_timestamp_raw) == (
        phone_time,
        reported.sent_timestamp_raw,
    )
    # An unparseable time is kept as written, and the report's own time stands in (S-34).
    assert (message.delivered_at, message.delivered_timestamp_raw) == (at(5), "sometime")
    # A later report of a step already taken changes neither.
    again = SendOutcome(S.SENT, None, None, sent_at=at(9), sent_timestamp_raw="other")
    assert await results.record_results(store, a, [(ids[0], again)], at(9)) == 0
    [message] = await messages.list_outbound(store, message_id=ids[0])
    assert message.sent_timestamp_raw == reported.sent_timestamp_raw
    # A message without results has none.
    [other] = await messages.list_outbound(store, message_id=ids[1])
    assert (other.sent_at, other.sent_timestamp_raw, other.delivered_timestamp_raw) == (
        None,
        None,
        None,
    )


async def test_failed_undelivered_and_late_reports_keep_their_raw_timestamps(
    store: Database,
) -> None:
    a, ids = await dispatched(store, 3)
    failed = SendOutcome(S.FAILED, "3: no pdu", None, sent_timestamp_raw="Feb 21, 2017 3:36:40 PM")
    undelivered = SendOutcome(
        S.SENT, None, S.UNDELIVERED, sent_timestamp_raw="1", delivered_timestamp_raw="2"
    )
    assert (
        await results.record_results(store, a, [(ids[0], failed), (ids[1], undelivered)], at(5))
        == 2
    )
    [first] = await messages.list_outbound(store, message_id=ids[0])
    [second] = await messages.list_outbound(store, message_id=ids[1])
    assert (first.status, first.sent_timestamp_raw) == (S.FAILED, "Feb 21, 2017 3:36:40 PM")
    assert (second.status, second.sent_timestamp_raw, second.delivered_timestamp_raw) == (
        S.UNDELIVERED,
        "1",
        "2",
    )
    # No longer asked about, then a late full report: it applies, with the raw times it carries.
    assert await results.awaiting_results(store, a, at(99_999), 10, 5, 60) == []
    late = SendOutcome(
        S.SENT, None, S.DELIVERED, sent_timestamp_raw="3", delivered_timestamp_raw="4"
    )
    assert await results.record_results(store, a, [(ids[2], late)], at(100_000)) == 1
    [third] = await messages.list_outbound(store, message_id=ids[2])
    assert (third.status, third.sent_timestamp_raw, third.delivered_timestamp_raw) == (
        S.DELIVERED,
        "3",
        "4",
    )


async def test_late_result_replaces_delivery_unknown(store: Database) -> None:
    a, ids = await dispatched(store, 2)
    await results.record_results(store, a, [(ids[0], SENT)], at(2))
    assert await results.awaiting_results(store, a, at(99_999), 10, 5, 60) == []
    assert await status_of(store, ids[0]) == "delivery_unknown"
    # A repeat of the send changes nothing: delivery_unknown already says it was sent.
    assert await results.record_results(store, a, [(ids[0], SENT)], at(100_000)) == 0
    assert (
        await results.record_results(store, a, [(ids[0], DELIVERED), (ids[1], FAILED)], at(100_001))
        == 2
    )
    assert [await status_of(store, i) for i in ids] == ["delivered", "failed"]


async def test_results_of_other_devices_are_ignored(store: Database) -> None:
    _, ids = await dispatched(store, 1)
    b = await device(store, "b")
    assert (
        await results.record_results(store, b.id, [(ids[0], FAILED), ("unknown", SENT)], at(5)) == 0
    )
    assert await status_of(store, ids[0]) == "dispatched"


async def test_cancel(store: Database) -> None:
    a, ids = await dispatched(store, 2, ack_mode=AckMode.HANDSHAKE)
    [queued] = await queue_some(store, 1)
    cancelled = await results.cancel(store, queued, at(2))
    assert cancelled.status is S.CANCELLED and cancelled.history[-1].status is S.CANCELLED
    assert (await results.cancel(store, ids[0], at(2))).status is S.CANCELLED
    await results.acknowledge(store, a, ids[1:], at(3))
    with pytest.raises(Conflict):
        await results.cancel(store, ids[1], at(4))
    with pytest.raises(Conflict):
        await results.cancel(store, queued, at(4))
    with pytest.raises(NotFound):
        await results.cancel(store, "unknown", at(4))
    # A cancelled message is never handed out, nor listed for results.
    assert await queue.claim_outbound(store, a, 10, at(5)) == []
    assert await results.awaiting_results(store, a, at(5), 10, 5, 3600) == ids[1:]


async def test_a_message_handed_to_a_handoff_phone_is_not_cancelled(store: Database) -> None:
    # The phone confirms nothing and sends what it got: "cancelled" would claim what it may
    # not do. Its report still counts.
    a, [handed] = await dispatched(store, 1, ack_mode=AckMode.HANDOFF)
    with pytest.raises(Conflict, match="handoff"):
        await results.cancel(store, handed, at(2))
    assert await status_of(store, handed) == "dispatched"
    assert await results.record_results(store, a, [(handed, SENT)], at(3)) == 1


async def test_auto_mode_cancels_what_a_phone_must_still_confirm(store: Database) -> None:
    # Spec example 8.5: in auto mode the phone that confirms (task=sent) is told no.
    a, [handed, kept] = await dispatched(store, 2, ack_mode=AckMode.AUTO)
    assert (await results.cancel(store, handed, at(2))).status is S.CANCELLED
    assert await results.acknowledge(store, a, [handed, kept], at(3)) == [kept]


async def test_outbound_filters(store: Database) -> None:
    _, ids = await dispatched(store, 2)
    [queued] = await queue_some(store, 1, to_addr="+2547009")
    assert [m.message_id for m in await messages.list_outbound(store, device="a")] == ids
    assert [m.message_id for m in await messages.list_outbound(store, status=S.QUEUED)] == [queued]
    assert [m.message_id for m in await messages.list_outbound(store, limit=1)] == ids[:1]
    assert await messages.list_outbound(store, message_id="unknown") == []
    assert await messages.queue_depths(store) == {None: 1}
