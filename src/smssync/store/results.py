"""After the claim: E5 acknowledgement, E6/E7 results, cancel and queue reads (S-26 to S-35)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select, update

from smssync.errors import Conflict, NotFound
from smssync.records import (
    FINAL_STATUSES,
    AckMode,
    Outbound,
    OutboundStatus,
    SendOutcome,
)
from smssync.store import alerts, dialects, messages, webhooks
from smssync.store.engine import Database, reads, writes
from smssync.store.rows import (
    RowMap,
    add_history,
    chunks,
    maybe_us,
    settings_of,
    to_us,
)
from smssync.store.schema import devices, outbound, outbound_history
from smssync.store.webhooks import HOOK_COLUMNS

S = OutboundStatus
#: Statuses a device still owes a result for (S-31).
AWAITING = (S.DISPATCHED.value, S.ACCEPTED.value, S.SENT.value)
#: What a person may send again: no phone sent it (failed) or none took it in time (expired).
RETRYABLE = (S.FAILED.value, S.EXPIRED.value)
CANCELLABLE = (S.QUEUED.value, S.DISPATCHED.value)
#: The history detail of a sent message given up on.
NO_DELIVERY_REPORT = "sent; no delivery report in time"


@writes
def acknowledge(
    conn: Connection, device_id: int, message_ids: list[str], now: datetime
) -> list[str]:
    """E5: mark the listed messages dispatched to this device and still wanted as
    ``accepted`` and return them in request order (S-27); switch an ``auto`` device to
    handshake. Others are left alone (S-28)."""
    now_us = to_us(now)
    wanted = list(dict.fromkeys(m for m in message_ids if m))
    found: dict[str, int] = {}
    for part in chunks(wanted):
        rows = conn.execute(
            update(outbound)
            .where(
                outbound.c.uuid.in_(part),
                outbound.c.device_id == device_id,
                outbound.c.status == S.DISPATCHED.value,
            )
            .values(status=S.ACCEPTED.value, lease_expires_at=None, updated_at=now_us)
            .returning(outbound.c.id, outbound.c.uuid)
        )
        found.update({row.uuid: row.id for row in rows})
    accepted = [m for m in wanted if m in found]
    add_history(conn, [found[m] for m in accepted], now_us, S.ACCEPTED, None)
    row = conn.execute(select(devices).where(devices.c.id == device_id)).one_or_none()
    if row is not None and settings_of(row._mapping).ack_mode is AckMode.AUTO:
        # The device does E5, so the App's Message Results API is on (S-23).
        if row.effective_mode != AckMode.HANDSHAKE.value:
            conn.execute(
                update(devices)
                .where(devices.c.id == device_id)
                .values(effective_mode=AckMode.HANDSHAKE.value)
            )
    return accepted


@reads
def lease_owner(conn: Connection, message_ids: list[str]) -> int | None:
    """Return the one device all dispatched uuids among ``message_ids`` belong to (S-26)."""
    owners: set[int | None] = set()
    for part in chunks(list(dict.fromkeys(m for m in message_ids if m))):
        owners.update(
            conn.execute(
                select(outbound.c.device_id)
                .distinct()
                .join(devices, devices.c.id == outbound.c.device_id)
                .where(outbound.c.uuid.in_(part), outbound.c.status == S.DISPATCHED.value)
                # A disabled phone's leases bind nothing: it is refused as a whole.
                .where(devices.c.disabled_at.is_(None))
            ).scalars()
        )
    if len(owners) != 1:
        return None
    return owners.pop()


async def awaiting_results(
    db: Database, device_id: int, now: datetime, limit: int, max_listings: int, max_age_s: int
) -> list[str]:
    """E6 (S-31): the uuids whose outcome the device still owes, oldest first, each listing
    counted (see ``list_awaiting``)."""
    # A read first, as for task=send: most phones of a fleet have nothing to report.
    if not await db.read(any_awaiting, device_id):
        return []
    return await db.write(list_awaiting, device_id, now, limit, max_listings, max_age_s)


def any_awaiting(conn: Connection, device_id: int) -> bool:
    """Tell whether ``list_awaiting`` could list or change anything for the device."""
    query = select(outbound.c.id).where(
        outbound.c.device_id == device_id, outbound.c.status.in_(AWAITING)
    )
    return conn.execute(query.limit(1)).first() is not None


def list_awaiting(
    conn: Connection, device_id: int, now: datetime, limit: int, max_listings: int, max_age_s: int
) -> list[str]:
    """List the device's messages whose outcome is still open, oldest first (S-31).

    Only a message reported ``sent`` is given up on: past ``max_age_s`` since it left the
    queue (or listed ``max_listings`` times, when that is set) it becomes
    ``delivery_unknown``, which says the truth (sent, no delivery report). A message the phone
    accepted but never reported sent stays ``accepted`` (the stuck alert tells a person, S-30)
    and one handed off stays ``dispatched``: past the same age both are no longer listed, and
    a late report still applies to all three.

    A ``dispatched`` message under a lease is not listed: the phone has not confirmed it, so
    it cannot report it, and the lease may yet hand it to another phone. Listing it would tell
    a gateway that takes a listing as the acknowledgement it lost (issue 13) to send a message
    the server may give to someone else.
    """
    now_us = to_us(now)
    cutoff_us = now_us - max_age_s * 1_000_000
    mine = outbound.c.device_id == device_id
    overdue = [outbound.c.left_queue_at < cutoff_us]
    if max_listings > 0:
        overdue.append(outbound.c.result_listings >= max_listings)
    stale = conn.execute(
        update(outbound)
        .where(mine, outbound.c.status == S.SENT.value, or_(*overdue))
        .values(status=S.DELIVERY_UNKNOWN.value, updated_at=now_us)
        .returning(outbound.c.id)
    ).scalars()
    add_history(conn, list(stale), now_us, S.DELIVERY_UNKNOWN, NO_DELIVERY_REPORT)
    open_outcome = or_(
        outbound.c.status.in_((S.ACCEPTED.value, S.SENT.value)),
        and_(outbound.c.status == S.DISPATCHED.value, outbound.c.lease_expires_at.is_(None)),
    )
    rows = conn.execute(
        select(outbound.c.id, outbound.c.uuid)
        .where(mine, outbound.c.status.in_(AWAITING), open_outcome)
        .where(outbound.c.left_queue_at >= cutoff_us)
        .order_by(outbound.c.id)
        .limit(limit)
    ).all()
    for part in chunks([row.id for row in rows]):
        conn.execute(
            update(outbound)
            .where(outbound.c.id.in_(part))
            .values(result_listings=outbound.c.result_listings + 1)
        )
    return [row.uuid for row in rows]


def _may_become(current: OutboundStatus, target: OutboundStatus) -> bool:
    if current is target:
        return False
    if target is S.SENT:
        return current in (S.QUEUED, S.DISPATCHED, S.ACCEPTED)
    if target is S.FAILED:
        # A send is reported once: a failure contradicting a reported success is stale,
        # also after giving up on its delivery report (delivery_unknown is a reported send).
        return current in (S.QUEUED, S.DISPATCHED, S.ACCEPTED)
    if target in (S.DELIVERED, S.UNDELIVERED):
        # A late report still beats giving up, but no report beats another final one.
        return current not in FINAL_STATUSES or current is S.DELIVERY_UNKNOWN
    return False


async def record_results(
    db: Database,
    device_id: int,
    outcomes: list[tuple[str, SendOutcome]],
    now: datetime,
    failing_after: int = alerts.SEND_FAILURES,
) -> int:
    """E7 (S-33, S-35): apply outcomes of this device's messages, idempotently, never
    replacing a final status by a non-final one; return how many changed. ``failing_after``
    failed sends in a row raise ``device.send_failing``."""
    # An empty report is common (a gateway reports even when asked about nothing, G-15).
    if not outcomes:
        return 0
    return await db.write(apply_results, device_id, outcomes, now, failing_after)


def apply_results(
    conn: Connection,
    device_id: int,
    outcomes: list[tuple[str, SendOutcome]],
    now: datetime,
    failing_after: int = alerts.SEND_FAILURES,
) -> int:
    """Apply the device's outcomes in order, never going backwards (S-33, S-35)."""
    now_us = to_us(now)
    state: dict[str, dict[str, Any]] = {}
    hooks: dict[int, RowMap] = {}
    for part in chunks(list(dict.fromkeys(uuid for uuid, _ in outcomes))):
        # Locked: a cancel or an E6 giving up must not commit between this read and the
        # update below, or a final status could be overwritten (S-35).
        query = select(*HOOK_COLUMNS).where(
            outbound.c.uuid.in_(part), outbound.c.device_id == device_id
        )
        for row in conn.execute(dialects.for_update(conn, query.order_by(outbound.c.id))):
            hooks[row.id] = row._mapping
            state[row.uuid] = {
                "_id": row.id,
                "_status": S(row.status),
                "_reason": None,
                "_sent_at": None,
                "_delivered_at": None,
                "_sent_raw": None,
                "_delivered_raw": None,
                "changed": False,
            }
    history: list[dict[str, Any]] = []
    for uuid, outcome in outcomes:
        entry = state.get(uuid)
        if entry is None:
            continue
        steps = [(outcome.status, outcome.sent_at), (outcome.delivered, outcome.delivered_at)]
        applied = False
        for target, at in steps:
            if target is None or not _may_become(entry["_status"], target):
                continue
            if (
                target is S.UNDELIVERED
                and outcome.status is None
                and entry["_status"] is not S.SENT
            ):
                # "Not delivered" alone is also the App's default when no report came: it
                # means something only for a message already reported sent (S-33).
                continue
            entry.update(_status=target, changed=True)
            applied = True
            # The time is the phone's when it parses, else when the report came.
            if target is S.SENT:
                entry["_sent_at"] = maybe_us(at) or now_us
            elif target is S.DELIVERED:
                entry["_delivered_at"] = maybe_us(at) or now_us
            if target in (S.FAILED, S.UNDELIVERED) and outcome.reason:
                entry["_reason"] = outcome.reason
            detail = outcome.reason if target in (S.FAILED, S.UNDELIVERED) else None
            history.append({"outbound_id": entry["_id"], "status": target.value, "detail": detail})
        if applied:
            # The timestamps as the phone wrote them, parsed or not, whatever the outcome
            # (S-34): of the first report that changed the message, as a report that changes
            # nothing is a repeat.
            entry["_sent_raw"] = entry["_sent_raw"] or outcome.sent_timestamp_raw
            entry["_delivered_raw"] = entry["_delivered_raw"] or outcome.delivered_timestamp_raw
    changed = [
        {k: (v.value if isinstance(v, S) else v) for k, v in e.items() if k != "changed"}
        for e in state.values()
        if e["changed"]
    ]
    if changed:
        conn.execute(
            update(outbound)
            .where(outbound.c.id == bindparam("_id"))
            .values(
                status=bindparam("_status"),
                lease_expires_at=None,
                updated_at=now_us,
                reason=func.coalesce(bindparam("_reason"), outbound.c.reason),
                sent_at=func.coalesce(bindparam("_sent_at"), outbound.c.sent_at),
                delivered_at=func.coalesce(bindparam("_delivered_at"), outbound.c.delivered_at),
                sent_timestamp_raw=func.coalesce(
                    outbound.c.sent_timestamp_raw, bindparam("_sent_raw")
                ),
                delivered_timestamp_raw=func.coalesce(
                    outbound.c.delivered_timestamp_raw, bindparam("_delivered_raw")
                ),
            ),
            changed,
        )
        conn.execute(outbound_history.insert(), [{**h, "at": now_us} for h in history])
        # The webhook events of these changes commit with them, or not at all.
        webhooks.emit_status_changes(conn, device_id, hooks, history, now_us)
        # Only changes count: a repeated report must not lengthen a run of failures.
        alerts.count_sends(conn, device_id, history, now_us, failing_after)
    return len(changed)


@writes
def cancel(conn: Connection, message_id: str, now: datetime) -> Outbound:
    """Cancel a message no device has accepted; NotFound, Conflict.

    A ``dispatched`` message is cancelled while its phone must still confirm it (S-27: the
    next ``task=sent`` leaves it out and the App drops it; spec example 8.5), also in ``auto``
    mode, where a phone that confirms is told no. A phone set to ``handoff`` confirms nothing
    and sends what it got: cancelling its message would claim what it may not do."""
    now_us = to_us(now)
    row = conn.execute(
        select(outbound.c.id, outbound.c.status, outbound.c.lease_expires_at, devices.c.settings)
        .outerjoin(devices, devices.c.id == outbound.c.device_id)
        .where(outbound.c.uuid == message_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no message {message_id!r}")
    if (
        row.status == S.DISPATCHED.value
        and row.lease_expires_at is None
        and row.settings is not None
        and settings_of(row._mapping).ack_mode is AckMode.HANDOFF
    ):
        raise Conflict(
            f"message {message_id} was handed to a phone in handoff mode, which sends it"
            " without confirming: it can no longer be cancelled"
        )
    # Conditional on the status, so that a phone's E5 committing between the read and this
    # write wins (PostgreSQL re-checks the condition after the row lock) and nothing is
    # both accepted and cancelled.
    changed = conn.execute(
        update(outbound)
        .where(outbound.c.id == row.id, outbound.c.status.in_(CANCELLABLE))
        .values(status=S.CANCELLED.value, lease_expires_at=None, updated_at=now_us)
        .returning(outbound.c.id)
    ).first()
    if changed is None:
        current = conn.execute(
            select(outbound.c.status).where(outbound.c.id == row.id)
        ).scalar_one()
        raise Conflict(f"message {message_id} is {current} and can no longer be cancelled")
    add_history(conn, [row.id], now_us, S.CANCELLED, None)
    return messages.list_outbound.run(conn, message_id)[0]


@writes
def retry(conn: Connection, message_id: str, now: datetime) -> Outbound:
    """Queue a failed or expired message again, as a new attempt; NotFound, Conflict.

    The message keeps its uuid and history, and gets a new wire id: a phone or gateway
    never sends a uuid it has seen again (G-13), so the attempt must look new to it. It
    waits for its pinned phone, else for whichever phone polls first (the one that failed
    need not be the one to try again), with no validity left to run out."""
    now_us = to_us(now)
    row = conn.execute(select(outbound.c.id).where(outbound.c.uuid == message_id)).one_or_none()
    if row is None:
        raise NotFound(f"no message {message_id!r}")
    # Conditional on the status, as cancel: two people retrying at once queue it once.
    # Nor a text retention emptied: that would send an empty SMS.
    changed = conn.execute(
        update(outbound)
        .where(outbound.c.id == row.id, outbound.c.status.in_(RETRYABLE))
        .where(outbound.c.purged_at.is_(None))
        .values(
            status=S.QUEUED.value,
            wire_id=str(uuid4()),
            # A pinned message whose phone was removed would wait for no one: unpin it.
            pinned=and_(outbound.c.pinned, outbound.c.device_id.is_not(None)),
            device_id=case((outbound.c.pinned, outbound.c.device_id), else_=None),
            expires_at=None,
            dispatched_at=None,
            left_queue_at=None,
            lease_expires_at=None,
            result_listings=0,
            sent_code=None,
            reason=None,
            sent_at=None,
            delivered_at=None,
            sent_timestamp_raw=None,
            delivered_timestamp_raw=None,
            accepted_alert_at=None,
            updated_at=now_us,
        )
        .returning(outbound.c.id)
    ).first()
    if changed is None:
        current = conn.execute(
            select(outbound.c.status, outbound.c.purged_at).where(outbound.c.id == row.id)
        ).one()
        if current.purged_at is not None:
            raise Conflict(f"message {message_id} has had its text emptied by retention")
        raise Conflict(
            f"message {message_id} is {current.status}: only failed or expired SMS are retried"
        )
    add_history(conn, [row.id], now_us, S.QUEUED, "retry")
    return messages.list_outbound.run(conn, message_id)[0]
