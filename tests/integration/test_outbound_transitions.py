"""Every change a ``task=result`` report makes to an outgoing SMS, as one table, on both engines.

One message per (status before, report): each is brought to its status by the store's own
verbs, then one E7 carries every report at once, and the statuses after must be the table's.
The transitions that are not reports (claim, lease expiry, E5, giving up by time or by
listings, cancel, expiry) have their own tests in ``test_store_queue.py`` and
``test_store_results.py``.
"""

from __future__ import annotations

from smssync.records import OutboundStatus, SendOutcome
from smssync.store import messages, queue, results
from smssync.store.engine import Database
from tests.integration.store_helpers import at, device, queue_some

S = OutboundStatus
REPORTS = {
    "sent": SendOutcome(S.SENT, None, None),
    "failed": SendOutcome(S.FAILED, "no service", None),
    "delivered": SendOutcome(None, None, S.DELIVERED),
    "sent+delivered": SendOutcome(S.SENT, None, S.DELIVERED),
    "sent+undelivered": SendOutcome(S.SENT, None, S.UNDELIVERED),
    # "Not delivered" alone is also what the App says when no report came (S-33).
    "undelivered": SendOutcome(None, None, S.UNDELIVERED),
}


def unsent(status: str) -> dict[str, str]:
    """What the reports make of a message nobody has reported sent yet."""
    return {
        "sent": "sent",
        "failed": "failed",
        "delivered": "delivered",
        "sent+delivered": "delivered",
        "sent+undelivered": "undelivered",
        "undelivered": status,
    }


def final(status: str) -> dict[str, str]:
    """No report changes a final status."""
    return dict.fromkeys(REPORTS, status)


#: Status before -> report -> status after.
TABLE = {
    # Pinned to the device and still queued (as after a lease ran out): a report that it
    # went out ends it, so it is never handed out again.
    "queued": unsent("queued"),
    "dispatched": unsent("dispatched"),
    "accepted": unsent("accepted"),
    # Reported sent once: a failure contradicting it is stale; a delivery report moves it.
    "sent": {
        "sent": "sent",
        "failed": "sent",
        "delivered": "delivered",
        "sent+delivered": "delivered",
        "sent+undelivered": "undelivered",
        "undelivered": "undelivered",
    },
    # Sent, no delivery report in time: a late delivery report still applies (issue 13);
    # as for ``sent``, a failure contradicts the reported send, and a bare "not delivered"
    # says no more than the silence did.
    "delivery_unknown": {
        "sent": "delivery_unknown",
        "failed": "delivery_unknown",
        "delivered": "delivered",
        "sent+delivered": "delivered",
        "sent+undelivered": "undelivered",
        "undelivered": "delivery_unknown",
    },
    "delivered": final("delivered"),
    "undelivered": final("undelivered"),
    "failed": final("failed"),
    "cancelled": final("cancelled"),
}


async def test_every_report_from_every_status(store: Database) -> None:
    a = await device(store, "a", segments_per_minute=10_000, batch_limit=1_000)
    n = len(REPORTS)
    ids = {"cancelled": await queue_some(store, n, device="a")}
    for message_id in ids["cancelled"]:
        await results.cancel(store, message_id, at(1))
    # Handed to the device (auto mode starts in handoff: no lease).
    handed = [b for b in TABLE if b not in ("queued", "cancelled")]
    fresh = await queue_some(store, n * len(handed))
    claimed = await queue.claim_outbound(store, a.id, len(fresh), at(1))
    assert [c.message_id for c in claimed] == fresh
    ids |= {b: fresh[i * n : (i + 1) * n] for i, b in enumerate(handed)}
    # Queued after the claim, pinned to the device, so that they wait in the queue.
    ids["queued"] = await queue_some(store, n, device="a")

    def report(before: str, outcome: SendOutcome) -> list[tuple[str, SendOutcome]]:
        return [(m, outcome) for m in ids[before]]

    # Sent, then given up on by time: the only way to delivery_unknown.
    await results.record_results(store, a.id, report("delivery_unknown", REPORTS["sent"]), at(2))
    assert await results.awaiting_results(store, a.id, at(100), 1_000, 0, 60) == []
    await results.acknowledge(store, a.id, ids["accepted"], at(101))
    setup = [
        *report("sent", REPORTS["sent"]),
        *report("delivered", REPORTS["sent+delivered"]),
        *report("undelivered", REPORTS["sent+undelivered"]),
        *report("failed", REPORTS["failed"]),
    ]
    await results.record_results(store, a.id, setup, at(102))
    assert await statuses(store) == {m: b for b in TABLE for m in ids[b]}

    # One E7 with every cell: message i of each row gets report i.
    outcomes = [(ids[b][i], o) for b in TABLE for i, o in enumerate(REPORTS.values())]
    await results.record_results(store, a.id, outcomes, at(200))
    after = await statuses(store)
    got = {b: {r: after[ids[b][i]] for i, r in enumerate(REPORTS)} for b in TABLE}
    assert got == TABLE


async def statuses(store: Database) -> dict[str, str]:
    """Every outgoing SMS's status by id."""
    return {m.message_id: m.status.value for m in await messages.list_outbound(store, limit=500)}
