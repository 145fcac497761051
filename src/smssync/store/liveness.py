"""Device liveness (S-9): which devices went online or offline, recorded once per fleet.

Online means polled within the device's liveness window (``records.is_online``, the one rule);
a device found offline hands its queued soft assignments back to the fleet (failover).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, false, func, literal, or_, select, update

from smssync.records import LAST_SEEN_EVERY, DeviceSettings, OutboundStatus, is_online
from smssync.store import dialects, webhooks
from smssync.store.engine import Database
from smssync.store.rows import chunks, delta_us, from_us, maybe_dt, to_us
from smssync.store.schema import device_liveness, devices, outbound


async def check_liveness(db: Database, now: datetime) -> list[tuple[str, bool]]:
    """Record devices that went online or offline, with their events, exactly once across
    processes, and release the queued soft assignments of those found offline to every
    device (failover); return the transitions."""
    now_us = to_us(now)
    # A read first: the usual answer is "nothing changed", which then costs no commit.
    changes = await db.read(liveness_changes, now_us)
    if not changes:
        return []
    return await db.write(record_liveness, changes, now_us)


#: The liveness window of a device whose settings do not say.
DEFAULT_LIVENESS_S = DeviceSettings().liveness_s


@functools.lru_cache(maxsize=1024)
def _liveness_s(settings: str) -> int:
    # A fleet shares a few settings texts: parsed once each, not once per device per check.
    return int(json.loads(settings).get("liveness_s", DEFAULT_LIVENESS_S))


def online_clause(conn: Connection, now_us: int) -> ColumnElement[bool]:
    """The liveness rule (``records.is_online``) as SQL over ``devices``: polled within the
    device's own window, counted from the stored last seen plus ``LAST_SEEN_EVERY``."""
    window_s = dialects.json_int(conn, devices.c.settings, "liveness_s")
    window_us = func.coalesce(window_s, DEFAULT_LIVENESS_S) * 1_000_000 + delta_us(LAST_SEEN_EVERY)
    return and_(
        devices.c.last_seen_at.is_not(None),
        literal(now_us) - devices.c.last_seen_at <= window_us,
    )


def liveness_changes(conn: Connection, now_us: int) -> list[tuple[int, str, bool, bool | None]]:
    """Return (device id, name, online now, recorded state or None) where they differ.

    The database compares every device with its record, so that only the few that changed
    reach Python: at 100,000 devices a scan in Python held the interpreter for most of a
    second every few seconds, and every request waited behind it.
    """
    online_now = online_clause(conn, now_us)
    query = (
        select(
            devices.c.id,
            devices.c.name,
            devices.c.last_seen_at,
            devices.c.settings,
            device_liveness.c.online,
        )
        .outerjoin(device_liveness, device_liveness.c.device_id == devices.c.id)
        .where(or_(device_liveness.c.online.is_(None), device_liveness.c.online != online_now))
    )
    changes = []
    for row in conn.execute(query):
        online = is_online(maybe_dt(row.last_seen_at), _liveness_s(row.settings), from_us(now_us))
        before = None if row.online is None else bool(row.online)
        if before != online:  # the same rule as above, in Python: the one that decides
            changes.append((row.id, row.name, online, before))
    return changes


def record_liveness(
    conn: Connection, changes: list[tuple[int, str, bool, bool | None]], now_us: int
) -> list[tuple[str, bool]]:
    """Apply the changes conditionally: only the process whose write lands emits. Devices
    found offline hand their queued soft assignments back to the fleet (failover).

    Set-wise, a statement per kind of change and chunk: when a fleet comes online after a
    restart, hundreds change in one check, and a statement each held the writer for tens of
    milliseconds that incoming SMS waited through."""
    names = {device_id: name for device_id, name, _, _ in changes}
    # First sight of a device never seen is not news: recorded offline, no event.
    unseen = [c[0] for c in changes if c[3] is None and not c[2]]
    for part in chunks(unseen):
        conn.execute(
            dialects.insert(conn, device_liveness).on_conflict_do_nothing(),
            [{"device_id": i, "online": False, "changed_at": now_us} for i in part],
        )
    landed: list[tuple[int, bool]] = []
    # First sight of one already polling: online.
    first_online = [c[0] for c in changes if c[3] is None and c[2]]
    for part in chunks(first_online):
        rows = [{"device_id": i, "online": True, "changed_at": now_us} for i in part]
        statement = (
            dialects.insert(conn, device_liveness)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(device_liveness.c.device_id)
        )
        landed += [(device_id, True) for (device_id,) in conn.execute(statement)]
    for before, online in ((False, True), (True, False)):
        ids = [c[0] for c in changes if c[3] is before and c[2] is online]
        for part in chunks(ids):
            changed = (
                update(device_liveness)
                .where(device_liveness.c.device_id.in_(part), device_liveness.c.online == before)
                .values(online=online, changed_at=now_us)
                .returning(device_liveness.c.device_id)
            )
            landed += [(device_id, online) for (device_id,) in conn.execute(changed)]
    landed.sort()
    done = [(names[device_id], online) for device_id, online in landed]
    webhooks.emit_devices(conn, done, now_us)
    release(conn, unseen + [device_id for device_id, online in landed if not online], now_us)
    return done


def release(conn: Connection, device_ids: Sequence[int], now_us: int) -> int:
    """Hand the queued soft assignments of silent devices back to every device (failover);
    pinned messages wait for their device. Return how many were released."""
    released = 0
    for part in chunks(sorted(device_ids)):
        released += conn.execute(
            update(outbound)
            .where(
                outbound.c.device_id.in_(part),
                outbound.c.status == OutboundStatus.QUEUED.value,
                outbound.c.pinned == false(),
            )
            .values(device_id=None, updated_at=now_us)
        ).rowcount
    return released
