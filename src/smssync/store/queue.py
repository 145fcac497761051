"""Outbound queue verbs: enqueue and the atomic claim with its sweeps (S-22 to S-25).

Plain functions over one Connection already inside a transaction; the backends decide how
that transaction is run. Only ``dialects`` knows which engine is underneath.

A poll's cost must not grow with the fleet: every verb here reads the polling device's row,
the devices its messages name, and index-backed ranges of the queue, never every device.
Who is silent is decided by the periodic liveness check, which hands a silent device's soft
assignments back to the shared queue (``release``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    and_,
    case,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from smssync.errors import Conflict, NotFound
from smssync.records import AckMode, NewOutbound, OutboundStatus, TaskMessage
from smssync.store import dialects, threads
from smssync.store.engine import Database, writes
from smssync.store.rows import add_history, chunks, is_silent, maybe_us, settings_of, to_us
from smssync.store.schema import (
    device_liveness,
    devices,
    events,
    outbound,
    outbound_history,
    routes,
)

PACING_WINDOW_US = 60_000_000
#: An enqueue this large changes the queue's shape enough to refresh planner statistics.
BULK = 5000


#: What a claim reads of each message it may hand out.
CANDIDATE_COLUMNS = (
    outbound.c.id,
    outbound.c.uuid,
    outbound.c.to_addr,
    outbound.c.content,
    outbound.c.segments,
    outbound.c.claim_rank,
)


def _device_ids(conn: Connection, names: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in chunks(sorted(set(names))):
        query = select(devices.c.name, devices.c.id).where(devices.c.name.in_(part))
        found.update({row.name: row.id for row in conn.execute(query)})
    return found


def _healthy(conn: Connection, device_ids: Iterable[int], now_us: int) -> set[int]:
    """Return the devices that polled within their window, that the liveness check counts
    online, and that no admin disabled (a disabled phone is refused: nothing sticks to it).

    Only the check's offline transition releases a silent device's messages, so a message
    may stick only to a device recorded online: one recorded offline that just came back
    gets its messages once the next check sees it. On PostgreSQL the liveness rows are
    read FOR SHARE: a concurrent transition to offline waits for this enqueue, and its
    release then sees the new messages.
    """
    healthy: set[int] = set()
    for part in chunks(sorted(set(device_ids))):
        query = (
            select(devices.c.id, devices.c.last_seen_at, devices.c.settings)
            .join(device_liveness, device_liveness.c.device_id == devices.c.id)
            .where(devices.c.id.in_(part), device_liveness.c.online == true())
            .where(devices.c.disabled_at.is_(None))
            .with_for_update(read=True, of=device_liveness)
        )
        healthy.update(row.id for row in conn.execute(query) if not is_silent(row._mapping, now_us))
    return healthy


@writes
def enqueue(conn: Connection, messages: list[NewOutbound]) -> None:
    """Queue outbound SMS in one transaction, pinned to their device or softly routed to the
    recipient's sticky device when it is healthy (the assignment moves on failover);
    NotFound for an unknown device name."""
    if not messages:
        return
    by_name = _device_ids(conn, (m.device for m in messages if m.device is not None))
    for message in messages:
        if message.device is not None and message.device not in by_name:
            raise NotFound(f"no device named {message.device!r}")
    now_us = max(to_us(m.created_at) for m in messages)
    sticky = _sticky_routes(conn, [m.to_addr for m in messages if m.device is None])
    healthy = _healthy(conn, sticky.values(), now_us)
    rows: list[dict[str, Any]] = []
    for m in messages:
        if m.device is not None:
            device_id: int | None = by_name[m.device]
        else:
            route = sticky.get(m.to_addr)
            device_id = route if route in healthy else None
        rows.append(
            {
                "uuid": m.message_id,
                "device_id": device_id,
                "pinned": m.device is not None,
                "to_addr": m.to_addr,
                "content": m.content,
                "segments": m.segments,
                "status": OutboundStatus.QUEUED.value,
                "created_at": to_us(m.created_at),
                "updated_at": to_us(m.created_at),
                "expires_at": maybe_us(m.expires_at),
                "result_listings": 0,
                "claim_rank": -m.priority,
                "send_at": maybe_us(m.send_at),
                "callback_url": m.callback_url,
                "api_key_id": m.api_key_id,
                "campaign_id": m.campaign_id,
            }
        )
    try:
        conn.execute(outbound.insert(), rows)
    except IntegrityError as exc:
        raise Conflict("a message with this id is already queued") from exc
    # History by uuid in SQL: cheaper than RETURNING ids for every row of a large batch.
    history = select(
        outbound.c.id, outbound.c.created_at, literal(OutboundStatus.QUEUED.value), null()
    )
    for part in chunks([row["uuid"] for row in rows]):
        conn.execute(
            outbound_history.insert().from_select(
                ["outbound_id", "at", "status", "detail"], history.where(outbound.c.uuid.in_(part))
            )
        )
    threads.touch_outbound(conn, [row["uuid"] for row in rows])
    if len(rows) >= BULK:
        dialects.refresh_statistics(conn, outbound)


def _sticky_routes(conn: Connection, addresses: list[str]) -> dict[str, int]:
    wanted = sorted(set(addresses))
    found: dict[str, int] = {}
    for part in chunks(wanted):
        query = select(routes.c.to_addr, routes.c.device_id).where(routes.c.to_addr.in_(part))
        found.update({row.to_addr: row.device_id for row in conn.execute(query)})
    return found


def anything_to_claim(conn: Connection, device_id: int, now_us: int) -> bool:
    """Tell whether ``claim`` could change anything: a message the device may take, an
    expired lease or validity to sweep, or an unknown device (for claim's NotFound).

    Most polls of a fleet find nothing; with this read first they cost no write.
    """
    known = conn.execute(select(devices.c.id).where(devices.c.id == device_id)).first()
    due = [
        select(outbound.c.id)
        .where(outbound.c.status == OutboundStatus.QUEUED.value, outbound.c.expires_at < now_us)
        .limit(1),
        select(outbound.c.id).where(outbound.c.lease_expires_at < now_us).limit(1),
        *(query.limit(1) for query in _sources(device_id, now_us)),
    ]
    return known is None or any(conn.execute(query).first() is not None for query in due)


async def claim_outbound(
    db: Database, device_id: int, limit: int, now: datetime, *, piggyback: bool = False
) -> list[TaskMessage]:
    """Hand up to ``limit`` queued messages to the device, oldest first, in one atomic
    transaction (S-22): messages pinned to it, assigned to it, unassigned, or assigned to
    a device silent past its liveness window. Applies the device's pacing and its ack
    mode (lease in handshake mode), sweeps expired leases and validities first, and
    records the recipient's sticky route. Two devices or processes never get the same
    message. ``piggyback`` dispatches at-most-once regardless of mode (S-25)."""
    # A read first: most polls find nothing, and then cost no turn of the single SQLite
    # writer (nor a PostgreSQL write transaction). A message queued after this read
    # goes to the next poll, as it would had it been queued after the claim.
    if not await db.read(anything_to_claim, device_id, to_us(now)):
        return []
    return await db.write(claim, device_id, limit, now, piggyback)


def claim(
    conn: Connection, device_id: int, limit: int, now: datetime, piggyback: bool
) -> list[TaskMessage]:
    """Sweep, then hand up to ``limit`` paced messages to the device, oldest first."""
    now_us = to_us(now)
    dialects.lock_device_claims(conn, device_id)
    row = conn.execute(select(devices).where(devices.c.id == device_id)).one_or_none()
    if row is None:
        raise NotFound(f"no device with id {device_id}")
    to_handoff = sweep(conn, now_us)
    settings = settings_of(row._mapping)
    effective = AckMode(row.effective_mode)
    if device_id in to_handoff:
        effective = AckMode.HANDOFF
    if limit <= 0:
        return []

    used = conn.execute(
        select(func.coalesce(func.sum(outbound.c.segments), 0)).where(
            outbound.c.device_id == device_id,
            outbound.c.dispatched_at > now_us - PACING_WINDOW_US,
        )
    ).scalar_one()
    allowed = settings.segments_per_minute - int(used)
    if used and allowed <= 0:
        return []

    candidates = _candidates(conn, device_id, limit, now_us)
    taken: list[Row[Any, Any, Any, Any, Any]] = []
    total = 0
    for candidate in candidates:
        # With nothing sent in the window, one message goes even if longer than the rate.
        if total + candidate.segments > allowed and (taken or used):
            break
        taken.append(candidate)
        total += candidate.segments
    if not taken:
        return []

    handshake = not piggyback and (
        settings.ack_mode is AckMode.HANDSHAKE
        or (settings.ack_mode is AckMode.AUTO and effective is AckMode.HANDSHAKE)
    )
    lease = now_us + settings.lease_s * 1_000_000 if handshake else None
    ids = [row.id for row in taken]
    for part in chunks(ids):
        conn.execute(
            update(outbound)
            .where(outbound.c.id.in_(part))
            .values(
                status=OutboundStatus.DISPATCHED.value,
                device_id=device_id,
                dispatched_at=now_us,
                left_queue_at=now_us,
                lease_expires_at=lease,
                updated_at=now_us,
            )
        )
    add_history(conn, ids, now_us, OutboundStatus.DISPATCHED, "lease" if lease else None)
    upsert = dialects.insert(conn, routes)
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[routes.c.to_addr],
            set_={"device_id": upsert.excluded.device_id, "updated_at": upsert.excluded.updated_at},
        ),
        [
            {"to_addr": addr, "device_id": device_id, "updated_at": now_us}
            for addr in sorted({row.to_addr for row in taken})
        ],
    )
    return [TaskMessage(r.to_addr, r.content, r.uuid) for r in taken]


def _candidates(
    conn: Connection, device_id: int, limit: int, now_us: int
) -> list[Row[Any, Any, Any, Any, Any]]:
    """Return the first ``limit`` messages the device may take, most urgent then oldest,
    locked on PostgreSQL; messages scheduled for later are skipped.

    One query per source (its own, then the unassigned ones) so that each is an ordered
    range scan of (device_id, status, claim_rank, id) stopping after ``limit`` rows; one
    query with OR makes planners collect and sort the whole queue instead. A silent
    device's soft assignments are among the unassigned once the liveness check released
    them (``release``).
    """
    found: list[Row[Any, Any, Any, Any, Any]] = []
    for query in _sources(device_id, now_us):
        found.extend(conn.execute(dialects.skip_locked(conn, query.limit(limit))))
    found.sort(key=lambda row: (row.claim_rank, row.id))
    return found[:limit]


def _sources(device_id: int, now_us: int) -> list[Select[Any]]:
    """The ordered queries of the messages a device may take: its own, then unassigned."""
    queued = and_(
        outbound.c.status == OutboundStatus.QUEUED.value,
        or_(outbound.c.send_at.is_(None), outbound.c.send_at <= now_us),
    )
    wheres = [
        and_(queued, outbound.c.device_id == device_id),
        and_(queued, outbound.c.device_id.is_(None), outbound.c.pinned == false()),
    ]
    # device_id and status are fixed within one source, so ordering by them changes
    # nothing, but PostgreSQL only walks the index in order when the ORDER BY names its
    # leading columns: it does not treat "device_id IS NULL" as a constant, and otherwise
    # sorted the whole queue (1 s per poll with 1M queued).
    return [
        select(*CANDIDATE_COLUMNS)
        .where(where)
        .order_by(outbound.c.device_id, outbound.c.status, outbound.c.claim_rank, outbound.c.id)
        for where in wheres
    ]


def sweep(conn: Connection, now_us: int) -> set[int]:
    """Expire validities and expired leases (S-24); return devices switched to handoff.

    Both are ranges of their own index, so a poll that finds nothing expired costs the
    same whatever the size of the fleet or the queue.
    """
    expired = conn.execute(
        update(outbound)
        .where(
            outbound.c.status == OutboundStatus.QUEUED.value,
            outbound.c.expires_at < now_us,
        )
        .values(status=OutboundStatus.EXPIRED.value, updated_at=now_us)
        .returning(outbound.c.id)
    ).scalars()
    add_history(conn, list(expired), now_us, OutboundStatus.EXPIRED, "validity ended")

    # Only the lease index: a status condition would lead SQLite to scan every dispatched
    # message, and every change out of dispatched clears the lease anyway.
    leased = [
        row
        for row in conn.execute(
            select(outbound.c.id, outbound.c.device_id, outbound.c.status, devices.c.settings)
            .outerjoin(devices, devices.c.id == outbound.c.device_id)
            .where(outbound.c.lease_expires_at < now_us)
        )
        if row.status == OutboundStatus.DISPATCHED.value
    ]
    requeue: list[int] = []
    keep: list[int] = []
    to_handoff: set[int] = set()
    for row in leased:
        owner = row.settings
        ack_mode = AckMode.HANDSHAKE if owner is None else settings_of(row._mapping).ack_mode
        if ack_mode is AckMode.HANDSHAKE:
            requeue.append(row.id)
        else:
            # auto: the phone may have stopped doing E5 and already sent it (S-24).
            keep.append(row.id)
            if ack_mode is AckMode.AUTO:
                to_handoff.add(row.device_id)
    # Each update re-checks the lease: on PostgreSQL another transaction (an E5 accepting the
    # message, another sweep) may have changed the row since it was read above, and an
    # accepted message must never go back to the queue.
    still_leased = (
        outbound.c.status == OutboundStatus.DISPATCHED.value,
        outbound.c.lease_expires_at < now_us,
    )
    requeued: list[int] = []
    for part in chunks(requeue):
        requeued.extend(
            conn.execute(
                update(outbound)
                .where(outbound.c.id.in_(part), *still_leased)
                .values(
                    status=OutboundStatus.QUEUED.value,
                    device_id=case((outbound.c.pinned, outbound.c.device_id), else_=None),
                    lease_expires_at=None,
                    dispatched_at=None,
                    left_queue_at=None,
                    result_listings=0,
                    updated_at=now_us,
                )
                .returning(outbound.c.id)
            ).scalars()
        )
    add_history(conn, requeued, now_us, OutboundStatus.QUEUED, "lease expired")
    for part in chunks(keep):
        conn.execute(
            update(outbound)
            .where(outbound.c.id.in_(part), *still_leased)
            .values(lease_expires_at=None, updated_at=now_us)
        )
    for device_id in sorted(to_handoff):
        conn.execute(
            update(devices)
            .where(devices.c.id == device_id)
            .values(effective_mode=AckMode.HANDOFF.value)
        )
        conn.execute(
            events.insert().values(
                device_id=device_id,
                at=now_us,
                kind="ack_mode",
                detail=json.dumps({"effective_mode": "handoff", "reason": "lease expired"}),
            )
        )
    return to_handoff
