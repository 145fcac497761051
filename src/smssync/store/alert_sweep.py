"""The periodic alert sweep: raise and resolve what the stored state shows, then announce.

Run once per fleet and time slot (``schedule.claim_run``, with the liveness check): a device
recorded offline is ``device.silent`` until recorded online; a device with messages marked
stuck (S-30, ``stuck.py``) has ``messages.stuck`` until none is left; a battery alert
resolves once the phone is heard a liveness window after it; a webhook alert whose endpoint
was removed resolves. Then every alert not yet announced (raised here or by a request) is marked so
and returned, for its one log line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, false, func, literal, select, true, update

from smssync.records import Alert, AlertKind, OutboundStatus
from smssync.serialize import iso
from smssync.store import dialects
from smssync.store.alerts import OPEN, alerts_by_ids, raise_alert, resolve
from smssync.store.engine import Database
from smssync.store.liveness import DEFAULT_LIVENESS_S
from smssync.store.rows import from_us, to_us
from smssync.store.schema import alerts, device_liveness, devices, outbound, webhook_endpoints

K = AlertKind

#: Most alerts one sweep raises of a kind, so that its transaction stays short when a whole
#: fleet goes silent at once; the next sweep (seconds later) raises the rest.
SWEEP_BATCH = 500


def _open(kind: AlertKind) -> tuple[ColumnElement[bool], ...]:
    return (OPEN, alerts.c.kind == kind.value)


def _has_open(kind: AlertKind, device_id: Any) -> Any:
    return exists().where(*_open(kind), alerts.c.device_id == device_id)


def _stuck_of(device_id: Any) -> tuple[ColumnElement[bool], ...]:
    return (
        outbound.c.device_id == device_id,
        outbound.c.status == OutboundStatus.ACCEPTED.value,
        outbound.c.accepted_alert_at.is_not(None),
    )


def _window_us(conn: Connection) -> Any:
    """A device's liveness window in microseconds, as SQL."""
    window_s = dialects.json_int(conn, devices.c.settings, "liveness_s")
    return func.coalesce(window_s, DEFAULT_LIVENESS_S) * 1_000_000


def silent(conn: Connection, now_us: int) -> list[Any]:
    """Devices recorded offline and still silent now, after being seen, with no open
    ``device.silent``."""
    # Silent now as well: a device first recorded offline when never seen may have polled
    # since, before the liveness check records it online.
    query = (
        select(devices.c.id, devices.c.last_seen_at)
        .join(device_liveness, device_liveness.c.device_id == devices.c.id)
        .where(
            device_liveness.c.online == false(),
            devices.c.last_seen_at.is_not(None),
            literal(now_us) - devices.c.last_seen_at > _window_us(conn),
            ~_has_open(K.DEVICE_SILENT, devices.c.id),
        )
        .order_by(devices.c.id)
        .limit(SWEEP_BATCH)
    )
    return list(conn.execute(query))


def heard(conn: Connection) -> list[int]:
    """Devices with an open ``device.silent`` that are recorded online again."""
    query = (
        select(alerts.c.device_id)
        .join(device_liveness, device_liveness.c.device_id == alerts.c.device_id)
        .where(*_open(K.DEVICE_SILENT), device_liveness.c.online == true())
    )
    return list(conn.execute(query).scalars())


def stuck(conn: Connection) -> list[Any]:
    """Devices with messages marked stuck and no open ``messages.stuck``, with the count."""
    query = (
        select(outbound.c.device_id, func.count().label("count"))
        .where(
            *_stuck_of(outbound.c.device_id),
            outbound.c.device_id.is_not(None),
            ~_has_open(K.MESSAGES_STUCK, outbound.c.device_id),
        )
        .group_by(outbound.c.device_id)
        .order_by(outbound.c.device_id)
        .limit(SWEEP_BATCH)
    )
    return list(conn.execute(query))


def unstuck(conn: Connection) -> list[int]:
    """Devices with an open ``messages.stuck`` none of whose messages is stuck now."""
    query = select(alerts.c.device_id).where(
        *_open(K.MESSAGES_STUCK), ~exists().where(*_stuck_of(alerts.c.device_id))
    )
    return list(conn.execute(query).scalars())


def charged(conn: Connection) -> list[int]:
    """Devices with an open ``device.battery_low`` heard from a liveness window or more
    after it: the App stops syncing on low battery, so a phone polling again was charged
    or restarted; a gateway that kept polling has its alert listed for that window."""
    query = (
        select(alerts.c.device_id)
        .join(devices, devices.c.id == alerts.c.device_id)
        .where(
            *_open(K.BATTERY_LOW),
            devices.c.last_seen_at > alerts.c.raised_at + _window_us(conn),
        )
    )
    return list(conn.execute(query).scalars())


def removed_webhooks(conn: Connection) -> list[str]:
    """Subjects of open ``webhook.failing`` alerts whose endpoint is gone."""
    keys = conn.execute(select(alerts.c.open_key).where(*_open(K.WEBHOOK_FAILING))).scalars()
    subjects = [str(key).rpartition(":")[2] for key in keys if key]
    if not subjects:
        return []
    present = {str(i) for i in conn.execute(select(webhook_endpoints.c.id)).scalars()}
    return [s for s in subjects if s not in present]


def unannounced(conn: Connection) -> bool:
    """Tell whether some alert awaits its log line."""
    query = select(alerts.c.id).where(alerts.c.announced_at.is_(None)).limit(1)
    return conn.execute(query).first() is not None


def anything_to_do(conn: Connection, now_us: int) -> bool:
    """Tell whether the sweep would change anything (the usual answer: no)."""
    checks = (heard, stuck, unstuck, charged, removed_webhooks, unannounced)
    return bool(silent(conn, now_us)) or any(check(conn) for check in checks)


def apply_sweep(conn: Connection, now_us: int) -> list[Alert]:
    """Raise and resolve by the stored state, then mark and return the unannounced alerts."""
    for row in silent(conn, now_us):
        seen = {"last_seen": iso(from_us(row.last_seen_at))}
        raise_alert(conn, K.DEVICE_SILENT, row.id, row.id, seen, now_us)
    resolve(conn, K.DEVICE_SILENT, list(heard(conn)), now_us)
    for row in stuck(conn):
        count = {"count": int(row.count)}
        raise_alert(conn, K.MESSAGES_STUCK, row.device_id, row.device_id, count, now_us)
    resolve(conn, K.MESSAGES_STUCK, list(unstuck(conn)), now_us)
    resolve(conn, K.BATTERY_LOW, list(charged(conn)), now_us)
    resolve(conn, K.WEBHOOK_FAILING, list(removed_webhooks(conn)), now_us)
    # Conditional: of two sweeps at once (a slot's claim lost to a clock step), one logs.
    announced = conn.execute(
        update(alerts)
        .where(alerts.c.announced_at.is_(None))
        .values(announced_at=now_us)
        .returning(alerts.c.id)
    ).scalars()
    return alerts_by_ids(conn, list(announced))


async def sweep(db: Database, now: datetime) -> list[Alert]:
    """Run the sweep; return the alerts it announced (each once across processes)."""
    # A read first: most sweeps find nothing, which then costs no commit.
    now_us = to_us(now)
    if not await db.read(anything_to_do, now_us):
        return []
    return await db.write(apply_sweep, now_us)
