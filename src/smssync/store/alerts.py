"""Alerts: a condition stored once while it holds, announced to receivers, resolved when it
clears; acknowledged by a person.

Once per condition, across processes and servers: an open alert holds its condition's
``open_key`` (kind and subject) in a unique column, so of several processes raising it at
once one insert lands and the others do nothing; resolving clears the key, and the same
condition later raises a new alert. The webhook event of an alert is written in the
transaction that raises it; its log line is written by the next sweep (``sweep.py``), after
the raise committed, by the one process whose conditional update marks it announced.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, func, select, update

from smssync.errors import NotFound
from smssync.records import Alert, AlertKind, DeliveryOutcome, Event
from smssync.serialize import alert_json
from smssync.store import dialects, webhooks
from smssync.store.devices import record_event
from smssync.store.engine import Database, reads, writes
from smssync.store.rows import RowMap, chunks, from_us, maybe_dt, to_us
from smssync.store.schema import alerts, devices, send_streaks, webhook_deliveries

K = AlertKind

#: Failed sends in a row of one device that raise ``device.send_failing``.
SEND_FAILURES = 3
#: Failed attempts in a row of one webhook delivery that raise ``webhook.failing``.
WEBHOOK_FAILURES = 3
#: Names of the §4.1 sent codes a failure reports. ``1`` is Android's generic failure, which
#: the App explains as "maybe insufficient air time".
REASONS = {1: "no_airtime", 2: "radio_off", 3: "no_pdu", 4: "no_service"}

OPEN = alerts.c.resolved_at.is_(None)


def open_key(kind: AlertKind, subject: int | str) -> str:
    """Return the key an open alert of this condition holds."""
    return f"{kind.value}:{subject}"


def _select() -> Any:
    return select(alerts, devices.c.name.label("device_name")).outerjoin(
        devices, devices.c.id == alerts.c.device_id
    )


def alert_of(row: RowMap) -> Alert:
    """Return an alert from a row of ``_select``."""
    return Alert(
        id=row["id"],
        kind=AlertKind(row["kind"]),
        device=row["device_name"],
        details=json.loads(row["details"]),
        raised_at=from_us(row["raised_at"]),
        acknowledged_at=maybe_dt(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        resolved_at=maybe_dt(row["resolved_at"]),
    )


def alerts_by_ids(conn: Connection, ids: list[int]) -> list[Alert]:
    """Return the alerts with these ids, in id order."""
    found: list[Alert] = []
    for part in chunks(sorted(ids)):
        query = _select().where(alerts.c.id.in_(part)).order_by(alerts.c.id)
        found.extend(alert_of(row._mapping) for row in conn.execute(query))
    return found


def raise_alert(
    conn: Connection,
    kind: AlertKind,
    subject: int | str,
    device_id: int | None,
    details: dict[str, Any],
    now_us: int,
    *,
    skip_endpoint: int | None = None,
) -> int | None:
    """Store an alert unless its condition has one open, with its webhook event; return its
    id, or None when it was open already."""
    statement = (
        dialects.insert(conn, alerts)
        .values(
            kind=kind.value,
            device_id=device_id,
            open_key=open_key(kind, subject),
            details=json.dumps(details, ensure_ascii=False),
            raised_at=now_us,
        )
        .on_conflict_do_nothing()
        .returning(alerts.c.id)
    )
    alert_id = conn.execute(statement).scalar()
    if alert_id is None:
        return None
    (alert,) = alerts_by_ids(conn, [int(alert_id)])
    if kind is K.WEBHOOK_FAILING:
        event, lane = Event.WEBHOOK_FAILING, f"w:{subject}"
    else:
        # The lane of device.online/offline: a receiver gets a device's news in order.
        event, lane = Event.DEVICE_ALERT, f"d:{alert.device}"
    webhooks.emit_alert(conn, event, lane, alert_json(alert), now_us, skip_endpoint)
    return alert.id


def resolve(conn: Connection, kind: AlertKind, subjects: list[int | str], now_us: int) -> int:
    """Resolve the open alerts of these conditions; return how many were open."""
    keys = [open_key(kind, s) for s in subjects]
    done = 0
    for part in chunks(keys):
        done += len(
            conn.execute(
                update(alerts)
                .where(alerts.c.open_key.in_(part))
                .values(open_key=None, resolved_at=now_us)
                .returning(alerts.c.id)
            ).all()
        )
    return done


@reads
def list_alerts(
    conn: Connection, include_resolved: bool = False, limit: int = 100, before_id: int = 0
) -> list[Alert]:
    """Return open alerts (every alert with ``include_resolved``), newest first, before the
    cursor ``before_id`` when given."""
    query = _select().order_by(alerts.c.id.desc()).limit(limit)
    if not include_resolved:
        query = query.where(OPEN)
    if before_id:
        query = query.where(alerts.c.id < before_id)
    return [alert_of(row._mapping) for row in conn.execute(query)]


@writes
def acknowledge(conn: Connection, alert_id: int, by: str, now: datetime) -> Alert:
    """Record that ``by`` saw the alert (the first acknowledgement stays); NotFound."""
    conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
        .values(acknowledged_at=to_us(now), acknowledged_by=by[:100])
    )
    found = alerts_by_ids(conn, [alert_id])
    if not found:
        raise NotFound(f"no alert {alert_id}")
    return found[0]


@reads
def count_open_alerts(conn: Connection) -> dict[str, int]:
    """Count open alerts by kind, every kind named (for a metrics collector)."""
    counts = dict.fromkeys((k.value for k in AlertKind), 0)
    rows = conn.execute(select(alerts.c.kind, func.count()).where(OPEN).group_by(alerts.c.kind))
    counts.update({kind: int(count) for kind, count in rows})
    return counts


@writes
def record_phone_alert(
    conn: Connection, device_id: int, detail: dict[str, Any], now: datetime
) -> int | None:
    """E8 (S-36): record the phone's alert as a device event and, when it gives a battery
    level, raise ``device.battery_low``; return the new alert's id."""
    record_event.run(conn, device_id, "alert", detail, now)
    if detail.get("battery_percent") is None:
        return None
    details = {"battery_percent": detail["battery_percent"], "message": detail["message"]}
    return raise_alert(conn, K.BATTERY_LOW, device_id, device_id, details, to_us(now))


def reason_name(detail: str | None) -> str:
    """Name the §4.1 code that a failure's reason (``"4: Failed to …"``) starts with."""
    code, _, _ = (detail or "").partition(":")
    try:
        return REASONS.get(int(code), "unknown")
    except ValueError:
        return "unknown"


def count_sends(
    conn: Connection,
    device_id: int,
    history: list[dict[str, Any]],
    now_us: int,
    failing_after: int = SEND_FAILURES,
) -> None:
    """Follow the device's run of failed sends through history just appended (E7): a send
    reported sent ends the run and resolves ``device.send_failing``; ``failing_after``
    failures in a row raise it, with the count of each reason."""
    steps = [h for h in history if h["status"] in ("sent", "failed")]
    if not steps or failing_after <= 0:
        return
    # Locked, so that two reports of one device at once count every failure.
    conn.execute(
        dialects.insert(conn, send_streaks)
        .values(device_id=device_id, failures=0, reasons="{}", updated_at=now_us)
        .on_conflict_do_nothing()
    )
    query = select(send_streaks).where(send_streaks.c.device_id == device_id)
    row = conn.execute(dialects.for_update(conn, query)).one()
    failures, reasons = int(row.failures), dict(json.loads(row.reasons))
    ended = False
    for step in steps:
        if step["status"] == "sent":
            failures, reasons, ended = 0, {}, True
        else:
            failures += 1
            name = reason_name(step["detail"])
            reasons[name] = reasons.get(name, 0) + 1
    conn.execute(
        update(send_streaks)
        .where(send_streaks.c.device_id == device_id)
        .values(failures=failures, reasons=json.dumps(reasons), updated_at=now_us)
    )
    if ended:
        resolve(conn, K.SEND_FAILING, [device_id], now_us)
    if failures >= failing_after:
        details = {"failures": failures, "reasons": reasons, "last_reason": steps[-1]["detail"]}
        if raise_alert(conn, K.SEND_FAILING, device_id, device_id, details, now_us) is None:
            # Open already: keep its count current for whoever lists it.
            conn.execute(
                update(alerts)
                .where(alerts.c.open_key == open_key(K.SEND_FAILING, device_id))
                .values(details=json.dumps(details, ensure_ascii=False))
            )


def any_open(conn: Connection, kind: AlertKind) -> bool:
    """Tell whether an alert of this kind is open (cheap: few are)."""
    query = select(alerts.c.id).where(OPEN, alerts.c.kind == kind.value).limit(1)
    return conn.execute(query).first() is not None


async def track_deliveries(
    db: Database, outcomes: list[DeliveryOutcome], now: datetime, failing_after: int
) -> None:
    """Raise ``webhook.failing`` for an endpoint whose delivery failed ``failing_after``
    attempts in a row; resolve it when the endpoint accepts one."""
    failed = any(not o.delivered for o in outcomes)
    # A read first: most batches deliver, with no endpoint alerted.
    if not outcomes or not (failed or await db.read(any_open, K.WEBHOOK_FAILING)):
        return
    await db.write(apply_deliveries, outcomes, to_us(now), failing_after)


def apply_deliveries(
    conn: Connection, outcomes: list[DeliveryOutcome], now_us: int, failing_after: int
) -> None:
    """Resolve the alerts of endpoints that accepted a delivery, raise them for those whose
    delivery failed ``failing_after`` attempts in a row (status callbacks are not counted)."""
    d = webhook_deliveries
    delivered = {o.delivery_id for o in outcomes if o.delivered}
    rows: list[Any] = []
    for part in chunks(sorted({o.delivery_id for o in outcomes})):
        rows.extend(
            conn.execute(
                select(d.c.id, d.c.endpoint_id, d.c.url, d.c.attempts, d.c.last_error).where(
                    d.c.id.in_(part), d.c.endpoint_id.is_not(None)
                )
            )
        )
    accepted = {row.endpoint_id for row in rows if row.id in delivered}
    if accepted:
        resolve(conn, K.WEBHOOK_FAILING, sorted(accepted), now_us)
    for row in rows:
        if row.id in delivered or row.endpoint_id in accepted or row.attempts < failing_after:
            continue
        # The host only: a receiver's path or query may hold a token of its own.
        host = urlsplit(row.url).hostname or ""
        details = {
            "webhook_id": row.endpoint_id,
            "host": host,
            "attempts": row.attempts,
            "error": (row.last_error or "").replace(row.url, host) or None,
        }
        raise_alert(
            conn,
            K.WEBHOOK_FAILING,
            row.endpoint_id,
            None,
            details,
            now_us,
            skip_endpoint=row.endpoint_id,
        )
