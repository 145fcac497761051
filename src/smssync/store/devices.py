"""Device and event verbs; each body a plain function over one open Connection."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from smssync.errors import Conflict, NotFound
from smssync.records import (
    LAST_SEEN_EVERY,
    Credentials,
    Device,
    DeviceSettings,
    OutboundStatus,
)
from smssync.store import liveness
from smssync.store.engine import Database, changes, reads, writes
from smssync.store.rows import (
    device_of,
    from_us,
    initial_mode,
    settings_json,
    settings_of,
    to_us,
)
from smssync.store.schema import devices, events, outbound, threads

TAKEN = "a device with this name, token or Basic user exists"
SECRET_TAKEN = "another device has this secret: each device needs its own"


def _credential_values(credentials: Credentials) -> dict[str, Any]:
    return {
        "token_hash": credentials.token_hash,
        "secret_hash": credentials.secret_hash,
        "basic_user": credentials.basic_user,
        "basic_password_hash": credentials.basic_password_hash,
        "token_seed": credentials.token_seed,
    }


def _refuse_shared_secret(conn: Connection, credentials: Credentials, device_id: int = 0) -> None:
    # Two devices with one secret are both refused on the shared Sync URL (S-6), so a
    # second one is refused here instead. One writer (SQLite) or two admins adding at the
    # same instant (PostgreSQL) is the only way past this check.
    if credentials.secret_hash is None:
        return
    other = conn.execute(
        select(devices.c.id).where(
            devices.c.secret_hash == credentials.secret_hash, devices.c.id != device_id
        )
    ).first()
    if other is not None:
        raise Conflict(SECRET_TAKEN)


@changes("devices")
def add_device(
    conn: Connection, name: str, credentials: Credentials, settings: DeviceSettings, now: datetime
) -> Device:
    """Insert a device; Conflict on any taken unique value or a secret already in use."""
    _refuse_shared_secret(conn, credentials)
    values = {
        "name": name,
        **_credential_values(credentials),
        "settings": settings_json(settings),
        "effective_mode": initial_mode(settings.ack_mode).value,
        "created_at": to_us(now),
    }
    try:
        row = conn.execute(devices.insert().values(values).returning(*devices.c)).one()
    except IntegrityError as exc:
        raise Conflict(TAKEN) from exc
    return device_of(row._mapping)


@changes("devices")
def add_devices(
    conn: Connection,
    entries: list[tuple[str, Credentials, DeviceSettings]],
    now: datetime,
) -> int:
    """Insert many devices in one transaction (a fleet's registration); Conflict on any
    taken unique value, and then none is added. Return how many were added."""
    rows = [
        {
            "name": name,
            **_credential_values(credentials),
            "settings": settings_json(settings),
            "effective_mode": initial_mode(settings.ack_mode).value,
            "created_at": to_us(now),
        }
        for name, credentials, settings in entries
    ]
    try:
        for start in range(0, len(rows), 1000):
            conn.execute(devices.insert(), rows[start : start + 1000])
    except IntegrityError as exc:
        raise Conflict(TAKEN) from exc
    return len(rows)


@changes("devices")
def update_device(
    conn: Connection,
    name: str,
    *,
    settings: DeviceSettings | None = None,
    credentials: Credentials | None = None,
) -> Device:
    """Change settings or credentials; NotFound, Conflict (also for a secret in use)."""
    row = conn.execute(select(devices).where(devices.c.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"no device named {name!r}")
    values: dict[str, Any] = {}
    if settings is not None:
        values["settings"] = settings_json(settings)
        # A new ack mode starts afresh; an unchanged one keeps what auto has learned.
        if settings.ack_mode != settings_of(row._mapping).ack_mode:
            values["effective_mode"] = initial_mode(settings.ack_mode).value
    if credentials is not None:
        _refuse_shared_secret(conn, credentials, row.id)
        values.update(_credential_values(credentials))
    if values:
        try:
            row = conn.execute(
                update(devices).where(devices.c.id == row.id).values(values).returning(*devices.c)
            ).one()
        except IntegrityError as exc:
            raise Conflict(TAKEN) from exc
    return device_of(row._mapping)


@changes("devices")
def remove_device(conn: Connection, name: str) -> None:
    """Delete a device, unassigning its queued messages; NotFound."""
    device_id = conn.execute(select(devices.c.id).where(devices.c.name == name)).scalar()
    if device_id is None:
        raise NotFound(f"no device named {name!r}")
    # Queued messages, pinned or not, become free for any device rather than stuck.
    conn.execute(
        update(outbound)
        .where(outbound.c.device_id == device_id, outbound.c.status == OutboundStatus.QUEUED)
        .values(device_id=None, pinned=False)
    )
    # Its conversations belong to no phone (SQLite may give its id to the next one added):
    # one range of the threads' (last_device_id, ...) index, as the SMS keep SET NULL.
    conn.execute(
        update(threads).where(threads.c.last_device_id == device_id).values(last_device_id=None)
    )
    conn.execute(delete(devices).where(devices.c.id == device_id))


@changes("devices")
def set_disabled(conn: Connection, name: str, disabled: bool, now: datetime) -> Device:
    """Disable a device (refused on its Sync URL) or enable it again; NotFound.

    Disabling hands its queued messages that are not pinned to it back to the shared queue,
    as removing it does: another phone sends them. Pinned ones wait for it."""
    row = conn.execute(select(devices.c.id).where(devices.c.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"no device named {name!r}")
    # Disabled twice, a device keeps the first time: COALESCE.
    when = func.coalesce(devices.c.disabled_at, to_us(now)) if disabled else None
    changed = conn.execute(
        update(devices).where(devices.c.id == row.id).values(disabled_at=when).returning(*devices.c)
    ).one()
    if disabled:
        liveness.release(conn, [row.id], to_us(now))
    return device_of(changed._mapping)


@reads
def all_devices(conn: Connection) -> list[Device]:
    """Return every device by name."""
    rows = conn.execute(select(devices).order_by(devices.c.name))
    return [device_of(row._mapping) for row in rows]


def device_where(conn: Connection, column: str, value: object) -> Device | None:
    """Return the device whose unique ``column`` equals ``value``."""
    row = conn.execute(select(devices).where(devices.c[column] == value)).one_or_none()
    return None if row is None else device_of(row._mapping)


@reads
def device_by_name(conn: Connection, name: str) -> Device | None:
    """Return the named device."""
    return device_where(conn, "name", name)


@reads
def device_by_token(conn: Connection, token_hash: bytes) -> Device | None:
    """Look a device up by the keyed hash of its path token."""
    return device_where(conn, "token_hash", token_hash)


@reads
def device_by_secret(conn: Connection, secret_hash: bytes) -> Device | None:
    """Return the one device with this secret; None when none or several share it."""
    rows = conn.execute(select(devices).where(devices.c.secret_hash == secret_hash).limit(2)).all()
    return device_of(rows[0]._mapping) if len(rows) == 1 else None


@reads
def device_by_basic_user(conn: Connection, user: str) -> tuple[Device, bytes | None] | None:
    """Return the device of a Basic user and its password hash."""
    row = conn.execute(select(devices).where(devices.c.basic_user == user)).one_or_none()
    return None if row is None else (device_of(row._mapping), row.basic_password_hash)


@reads
def device_credentials(conn: Connection, device_id: int) -> Credentials:
    """Return a device's stored hashes; NotFound."""
    row = conn.execute(select(devices).where(devices.c.id == device_id)).one_or_none()
    if row is None:
        raise NotFound(f"no device with id {device_id}")
    return Credentials(
        token_hash=row.token_hash,
        secret_hash=row.secret_hash,
        basic_user=row.basic_user,
        basic_password_hash=row.basic_password_hash,
        token_seed=row.token_seed,
    )


def touch_devices(conn: Connection, touches: list[tuple[int, datetime, str | None]]) -> list[None]:
    """Record last seen and User-Agent of many devices in one statement (a group commit of
    concurrent polls); the last touch of a device in the list wins."""
    latest = {device_id: (now, agent) for device_id, now, agent in touches}
    conn.execute(
        update(devices)
        .where(devices.c.id == bindparam("touched_id"))
        .values(last_seen_at=bindparam("seen"), last_user_agent=bindparam("agent")),
        [
            {"touched_id": device_id, "seen": to_us(now), "agent": agent}
            for device_id, (now, agent) in latest.items()
        ],
    )
    return [None] * len(touches)


@writes
def record_event(
    conn: Connection, device_id: int, kind: str, detail: dict[str, Any], now: datetime
) -> None:
    """Insert a device event."""
    conn.execute(
        events.insert().values(
            device_id=device_id, at=to_us(now), kind=kind, detail=json.dumps(detail)
        )
    )


@reads
def device_events(
    conn: Connection, device: str | None = None, limit: int = 100, kind: str | None = None
) -> list[dict[str, Any]]:
    """Return recent device events newest first, optionally of one device or one kind."""
    query = (
        select(events, devices.c.name)
        .join(devices, devices.c.id == events.c.device_id)
        .order_by(events.c.id.desc())
        .limit(limit)
    )
    if device is not None:
        query = query.where(devices.c.name == device)
    if kind is not None:
        query = query.where(events.c.kind == kind)
    return [
        {
            "id": row.id,
            "device": row.name,
            "at": from_us(row.at),
            "kind": row.kind,
            "detail": json.loads(row.detail),
        }
        for row in conn.execute(query)
    ]


#: Most devices remembered: an entry only matters for LAST_SEEN_EVERY.
TOUCHED_SIZE = 10_000


class LastSeen:
    """Records authenticated requests (last seen and User-Agent, S-9) at most every few
    seconds per device; concurrent polls share one statement and one commit."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._touched: dict[int, tuple[datetime, str | None]] = {}

    async def touch(self, device_id: int, now: datetime, user_agent: str | None) -> None:
        """Record that the device was seen now with this User-Agent."""
        last = self._touched.get(device_id)
        if (
            last is not None
            and last[1] == user_agent
            and timedelta(0) <= now - last[0] < LAST_SEEN_EVERY
        ):
            return
        await self.db.batch(touch_devices, (device_id, now, user_agent), linger=0)
        if len(self._touched) >= TOUCHED_SIZE:
            # Bounded at any fleet size; forgetting only costs one early write per device.
            self._touched.clear()
        self._touched[device_id] = (now, user_agent)


@reads
def battery_levels(conn: Connection) -> dict[int, tuple[int, datetime]]:
    """Return each device's battery percent and when, from its newest alert (the app's E8
    alerts carry it); a device whose newest alert did not tell it is absent."""
    newest = (
        select(func.max(events.c.id))
        .where(events.c.kind == "alert")
        .group_by(events.c.device_id)
        .scalar_subquery()
    )
    found: dict[int, tuple[int, datetime]] = {}
    for row in conn.execute(select(events).where(events.c.id.in_(newest))):
        percent = json.loads(row.detail).get("battery_percent")
        if isinstance(percent, int) and 0 <= percent <= 100:
            found[row.device_id] = (percent, from_us(row.at))
    return found
