"""Campaigns: one text to many recipients, held and released into the outbound queue.

A campaign's recipients wait in ``campaign_recipients`` (pending) and only the release
(``release``, run by the server's campaign loop) moves them into the queue: as many as the
online phones can send in the next minutes at their pacing, and only for recipients inside
the daily window. So a held message is never in the queue, and a phone's poll, which walks
the queue, costs the same whatever campaigns wait. Pausing takes back what was queued and
not yet handed to a phone; cancelling cancels it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import Connection, func, select, true, update

from smssync.compose import OPTED_OUT, PHONE_SMS_PER_MINUTE
from smssync.errors import Conflict, NotFound
from smssync.records import (
    FINAL_CAMPAIGN_STATUSES,
    Campaign,
    CampaignResult,
    CampaignStatus,
    NewCampaign,
    NewRecipient,
    OutboundStatus,
    RecipientState,
    SendWindow,
)
from smssync.store import dialects, optouts
from smssync.store.engine import reads, writes
from smssync.store.rows import add_history, chunks, from_us, maybe_dt, to_us
from smssync.store.schema import (
    campaign_recipients,
    campaigns,
    device_liveness,
    devices,
    outbound,
)

R = RecipientState
C = CampaignStatus
#: How a duplicate number of one campaign is recorded: it gets the text once.
DUPLICATE = "duplicate of an earlier recipient"


def _minutes(moment: time | None) -> int | None:
    return None if moment is None else moment.hour * 60 + moment.minute


def window_of(row: Any) -> SendWindow | None:
    """Return a campaign row's window, None when it has none."""
    if row.window_start is None or row.window_end is None:
        return None
    start, end = divmod(row.window_start, 60), divmod(row.window_end, 60)
    return SendWindow(time(*start), time(*end), row.window_tz)


def _state(recipient: NewRecipient, blocked: set[str], seen: set[str]) -> tuple[R, str | None]:
    if recipient.to_addr is None:
        return R.INVALID, recipient.error or "not a phone number"
    # Before the text: a plan that knew of the opt-out already left its text out.
    if recipient.to_addr in blocked:
        return R.OPTED_OUT, OPTED_OUT
    if recipient.content is None:
        return R.INVALID, recipient.error or "no text"
    if recipient.to_addr in seen:
        return R.INVALID, DUPLICATE
    seen.add(recipient.to_addr)
    return R.PENDING, None


@writes
def create_campaign(conn: Connection, new: NewCampaign, now: datetime) -> Campaign:
    """Store a campaign and its recipients, held until released; opted-out and repeated
    numbers are recorded as such, never sent; NotFound for an unknown device."""
    if new.device is not None:
        found = conn.execute(select(devices.c.id).where(devices.c.name == new.device)).first()
        if found is None:
            raise NotFound(f"no device named {new.device!r}")
    blocked = optouts.opted_out(conn, (r.to_addr for r in new.recipients if r.to_addr))
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for recipient in new.recipients:
        state, error = _state(recipient, blocked, seen)
        rows.append(
            {
                "to_raw": recipient.to_raw,
                "to_addr": recipient.to_addr,
                "content": recipient.content,
                "segments": recipient.segments if state is R.PENDING else 0,
                "zone": recipient.zone,
                "state": state.value,
                "error": error,
            }
        )
    zones = sorted({r["zone"] or "" for r in rows if r["state"] == R.PENDING.value})
    window = new.window
    campaign_id = conn.execute(
        campaigns.insert()
        .values(
            name=new.name,
            template=new.template,
            status=C.RUNNING.value,
            region=new.region,
            device=new.device,
            window_start=_minutes(window.start if window else None),
            window_end=_minutes(window.end if window else None),
            window_tz=window.tz if window else None,
            zones=json.dumps(zones),
            total=len(rows),
            api_key_id=new.api_key_id,
            created_at=to_us(now),
            updated_at=to_us(now),
        )
        .returning(campaigns.c.id)
    ).scalar_one()
    for part in chunks([r | {"campaign_id": campaign_id} for r in rows]):
        conn.execute(campaign_recipients.insert(), list(part))
    return _campaign(conn, campaign_id)


def _campaign(conn: Connection, campaign_id: int) -> Campaign:
    row = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).one_or_none()
    if row is None:
        raise NotFound(f"no campaign {campaign_id}")
    by_state = {state.value: 0 for state in R}
    segments = 0
    for state, count, parts in conn.execute(
        select(
            campaign_recipients.c.state,
            func.count(),
            func.coalesce(func.sum(campaign_recipients.c.segments), 0),
        )
        .where(campaign_recipients.c.campaign_id == campaign_id)
        .group_by(campaign_recipients.c.state)
    ):
        by_state[state] = int(count)
        segments += int(parts)
    by_status = {
        status: int(count)
        for status, count in conn.execute(
            select(outbound.c.status, func.count())
            .where(outbound.c.campaign_id == campaign_id)
            .group_by(outbound.c.status)
        )
    }
    return Campaign(
        id=row.id,
        name=row.name,
        template=row.template,
        status=C(row.status),
        region=row.region,
        device=row.device,
        window=window_of(row),
        total=row.total,
        created_at=from_us(row.created_at),
        updated_at=from_us(row.updated_at),
        recipients=by_state,
        messages=by_status,
        segments=segments,
    )


@reads
def campaign(conn: Connection, campaign_id: int) -> Campaign:
    """Return one campaign with its counts; NotFound."""
    return _campaign(conn, campaign_id)


@reads
def list_campaigns(
    conn: Connection, before_id: int | None = None, limit: int = 50
) -> list[Campaign]:
    """Return campaigns newest first, before the cursor, with their counts."""
    query = select(campaigns.c.id).order_by(campaigns.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(campaigns.c.id < before_id)
    return [_campaign(conn, campaign_id) for campaign_id in conn.execute(query).scalars()]


def locked(conn: Connection, campaign_id: int) -> Any:
    """Read a campaign row, locked until commit on PostgreSQL; NotFound."""
    row = conn.execute(
        dialects.for_update(conn, select(campaigns).where(campaigns.c.id == campaign_id))
    ).one_or_none()
    if row is None:
        raise NotFound(f"no campaign {campaign_id}")
    return row


def set_status(conn: Connection, campaign_id: int, status: CampaignStatus, now_us: int) -> None:
    """Change a campaign's status in the caller's transaction."""
    conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id)
        .values(status=status.value, updated_at=now_us)
    )


def _queued_ids(conn: Connection, campaign_id: int) -> list[tuple[int, str]]:
    """The campaign's messages still queued, locked on PostgreSQL (a claim taking one of
    them first makes this wait, and the conditional change after it then skips it)."""
    query = select(outbound.c.id, outbound.c.uuid).where(
        outbound.c.campaign_id == campaign_id, outbound.c.status == OutboundStatus.QUEUED.value
    )
    return [(row.id, row.uuid) for row in conn.execute(dialects.for_update(conn, query))]


@writes
def pause_campaign(conn: Connection, campaign_id: int, now: datetime) -> Campaign:
    """Stop releasing recipients and take back the queued messages no phone has taken;
    Conflict unless running."""
    row = locked(conn, campaign_id)
    if row.status != C.RUNNING.value:
        raise Conflict(f"campaign {campaign_id} is {row.status}, not running")
    now_us = to_us(now)
    set_status(conn, campaign_id, C.PAUSED, now_us)
    taken_back: list[str] = []
    for part in chunks(_queued_ids(conn, campaign_id)):
        # Deleted, not cancelled: such a message never left the server, and resuming
        # queues the recipient afresh; its history goes with it (ON DELETE CASCADE).
        taken_back.extend(
            conn.execute(
                outbound.delete()
                .where(
                    outbound.c.id.in_([i for i, _ in part]),
                    outbound.c.status == OutboundStatus.QUEUED.value,
                )
                .returning(outbound.c.uuid)
            ).scalars()
        )
    for uuids in chunks(taken_back):
        conn.execute(
            update(campaign_recipients)
            .where(
                campaign_recipients.c.campaign_id == campaign_id,
                campaign_recipients.c.message_id.in_(uuids),
            )
            .values(state=R.PENDING.value, message_id=None)
        )
    return _campaign(conn, campaign_id)


@writes
def resume_campaign(conn: Connection, campaign_id: int, now: datetime) -> Campaign:
    """Release the campaign's recipients again; Conflict unless paused."""
    row = locked(conn, campaign_id)
    if row.status != C.PAUSED.value:
        raise Conflict(f"campaign {campaign_id} is {row.status}, not paused")
    set_status(conn, campaign_id, C.RUNNING, to_us(now))
    return _campaign(conn, campaign_id)


@writes
def cancel_campaign(conn: Connection, campaign_id: int, now: datetime) -> Campaign:
    """Cancel the pending recipients and the queued messages no phone has taken; what a
    phone has goes on. Conflict once cancelled or done."""
    row = locked(conn, campaign_id)
    if C(row.status) in FINAL_CAMPAIGN_STATUSES:
        raise Conflict(f"campaign {campaign_id} is {row.status}")
    now_us = to_us(now)
    set_status(conn, campaign_id, C.CANCELLED, now_us)
    conn.execute(
        update(campaign_recipients)
        .where(
            campaign_recipients.c.campaign_id == campaign_id,
            campaign_recipients.c.state == R.PENDING.value,
        )
        .values(state=R.CANCELLED.value)
    )
    for part in chunks(_queued_ids(conn, campaign_id)):
        cancelled = conn.execute(
            update(outbound)
            .where(
                outbound.c.id.in_([i for i, _ in part]),
                outbound.c.status == OutboundStatus.QUEUED.value,
            )
            .values(status=OutboundStatus.CANCELLED.value, updated_at=now_us)
            .returning(outbound.c.id)
        ).scalars()
        add_history(conn, list(cancelled), now_us, OutboundStatus.CANCELLED, "campaign cancelled")
    return _campaign(conn, campaign_id)


@reads
def campaign_results(
    conn: Connection, campaign_id: int, after_id: int = 0, limit: int = 1000
) -> list[CampaignResult]:
    """Return each recipient after the cursor with its message's fate, in order."""
    rows = conn.execute(
        select(
            campaign_recipients,
            outbound.c.status.label("status"),
            outbound.c.reason,
            outbound.c.sent_at,
            outbound.c.delivered_at,
            devices.c.name.label("device_name"),
        )
        .outerjoin(outbound, outbound.c.uuid == campaign_recipients.c.message_id)
        .outerjoin(devices, devices.c.id == outbound.c.device_id)
        .where(
            campaign_recipients.c.campaign_id == campaign_id,
            campaign_recipients.c.id > after_id,
        )
        .order_by(campaign_recipients.c.id)
        .limit(limit)
    )
    return [
        CampaignResult(
            id=row.id,
            to_raw=row.to_raw,
            to_addr=row.to_addr,
            state=R(row.state),
            error=row.error,
            message_id=row.message_id,
            status=row.status,
            device=row.device_name,
            reason=row.reason,
            sent_at=maybe_dt(row.sent_at),
            delivered_at=maybe_dt(row.delivered_at),
        )
        for row in rows
    ]


#: The states of a recipient that is never sent (listed back to the person).
UNSENT = (R.INVALID.value, R.OPTED_OUT.value)


@reads
def unsent_recipients(
    conn: Connection, campaign_id: int, limit: int = 100
) -> list[tuple[str, str, str | None]]:
    """Return the first recipients not sent (a number unreadable, repeated or opted out):
    (number as given, state, why), in the input's order along ``(campaign_id, id)``."""
    r = campaign_recipients.c
    rows = conn.execute(
        select(r.to_raw, r.state, r.error)
        .where(
            campaign_recipients.c.campaign_id == campaign_id,
            campaign_recipients.c.state.in_(UNSENT),
        )
        .order_by(campaign_recipients.c.id)
        .limit(limit)
    )
    return [(row.to_raw, row.state, row.error) for row in rows]


@reads
def running_campaigns(conn: Connection) -> list[int]:
    """Return the ids of the campaigns whose recipients are being released."""
    query = select(campaigns.c.id).where(campaigns.c.status == C.RUNNING.value)
    return list(conn.execute(query.order_by(campaigns.c.id)).scalars())


def fleet_rate(conn: Connection, device: str | None = None) -> tuple[int, int]:
    """Return (phones, segments a minute) of the devices the liveness check last saw
    online, or of the one ``device``: each at its own pacing (``segments_per_minute``).
    With none, one phone at Android's default, so that an estimate is never infinite."""
    rate = func.coalesce(
        dialects.json_int(conn, devices.c.settings, "segments_per_minute"), PHONE_SMS_PER_MINUTE
    )
    query = select(func.count(), func.coalesce(func.sum(rate), 0)).select_from(devices)
    if device is not None:
        query = query.where(devices.c.name == device)
    else:
        query = query.join(device_liveness, device_liveness.c.device_id == devices.c.id).where(
            device_liveness.c.online == true()
        )
    phones, total = conn.execute(query).one()
    if not phones:
        return 0, PHONE_SMS_PER_MINUTE
    return int(phones), int(total)


@reads
def fleet(conn: Connection, device: str | None = None) -> tuple[int, int]:
    """Return (phones, segments a minute) that a campaign would be sent at (``fleet_rate``)."""
    return fleet_rate(conn, device)


def new_message_id() -> str:
    """Return a fresh uuid for a released recipient's SMS (S-21)."""
    return str(uuid.uuid4())
