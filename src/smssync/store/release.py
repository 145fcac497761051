"""Releasing campaigns' held recipients into the outbound queue, a little at a time.

Only what the fleet can send within the horizon is queued: the online phones' pacing (each
its ``segments_per_minute``; the campaign's own device when it has one) × the horizon, less
what the campaign already has queued. So pausing takes back minutes of
sending, not the whole campaign, and a message is queued only for a recipient whose window
stays open for the horizon: once released it may be sent at any moment of it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from smssync.compose import window_open
from smssync.records import CampaignStatus, NewOutbound, OutboundStatus, RecipientState
from smssync.store import campaigns as store
from smssync.store import queue
from smssync.store.engine import Database
from smssync.store.rows import to_us
from smssync.store.schema import campaign_recipients, campaigns, outbound

R = RecipientState
#: How far ahead a release fills the queue, by default.
HORIZON_S = 120

_RELEASED = (
    update(campaign_recipients)
    .where(campaign_recipients.c.id == bindparam("rid"))
    .values(state=R.RELEASED.value, message_id=bindparam("mid"))
)


def _pending(conn: Connection, campaign_id: int) -> bool:
    query = select(campaign_recipients.c.id).where(
        campaign_recipients.c.campaign_id == campaign_id,
        campaign_recipients.c.state == R.PENDING.value,
    )
    return conn.execute(query.limit(1)).first() is not None


def _queued_segments(conn: Connection, campaign_id: int) -> int:
    query = select(func.coalesce(func.sum(outbound.c.segments), 0)).where(
        outbound.c.campaign_id == campaign_id, outbound.c.status == OutboundStatus.QUEUED.value
    )
    return int(conn.execute(query).scalar_one())


def release(conn: Connection, campaign_id: int, now: datetime, horizon_s: int = HORIZON_S) -> int:
    """Queue the campaign's next recipients the fleet can send within the horizon, of the
    zones inside the window; mark the campaign done when none is left; return how many."""
    row = store.locked(conn, campaign_id)
    if row.status != CampaignStatus.RUNNING.value:
        return 0
    if not _pending(conn, campaign_id):
        store.set_status(conn, campaign_id, CampaignStatus.DONE, to_us(now))
        return 0
    window = store.window_of(row)
    zones = [z for z in json.loads(row.zones) if window_open(window, z or None, now, horizon_s)]
    if not zones:
        return 0
    _, per_minute = store.fleet_rate(conn, row.device)
    budget = per_minute * horizon_s // 60
    budget -= _queued_segments(conn, campaign_id)
    if budget <= 0:
        return 0
    known = [z for z in zones if z]
    in_zones: list[Any] = [campaign_recipients.c.zone.in_(known)] if known else []
    if "" in zones:
        in_zones.append(campaign_recipients.c.zone.is_(None))
    candidates = conn.execute(
        select(
            campaign_recipients.c.id,
            campaign_recipients.c.to_addr,
            campaign_recipients.c.content,
            campaign_recipients.c.segments,
        )
        .where(
            campaign_recipients.c.campaign_id == campaign_id,
            campaign_recipients.c.state == R.PENDING.value,
            or_(*in_zones),
        )
        .order_by(campaign_recipients.c.id)
        .limit(budget)
    ).all()
    taken: list[tuple[int, NewOutbound]] = []
    used = 0
    for candidate in candidates:
        if taken and used + candidate.segments > budget:
            break
        used += candidate.segments
        message = NewOutbound(
            message_id=store.new_message_id(),
            to_addr=candidate.to_addr,
            content=candidate.content,
            segments=candidate.segments,
            device=row.device,
            created_at=now,
            api_key_id=row.api_key_id,
            campaign_id=campaign_id,
        )
        taken.append((candidate.id, message))
    if not taken:
        return 0
    queue.enqueue.run(conn, [message for _, message in taken])
    conn.execute(_RELEASED, [{"rid": rid, "mid": m.message_id} for rid, m in taken])
    conn.execute(
        update(campaigns).where(campaigns.c.id == campaign_id).values(updated_at=to_us(now))
    )
    return len(taken)


async def running(db: Database) -> bool:
    """Tell whether any campaign is running: a read, so an idle loop writes nothing."""
    return bool(await store.running_campaigns(db))


async def release_due(db: Database, now: datetime, horizon_s: int = HORIZON_S) -> int:
    """Release every running campaign's next recipients, one transaction each; return how
    many were queued."""
    released = 0
    for campaign_id in await store.running_campaigns(db):
        released += await db.write(release, campaign_id, now, horizon_s)
    return released
