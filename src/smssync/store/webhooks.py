"""The webhook outbox: events written in the transaction of their change, then claimed.

A delivery is one event for one receiver. It stays ``pending`` until the receiver answers
2xx; the dispatcher claims a due delivery by pushing its ``next_attempt_at`` forward (a
crashed dispatcher's claim simply expires), so a claim needs no separate state. Deliveries
of one *lane* (a receiver and a message, or a receiver and a device) go out in id order:
a later one waits while an earlier one is pending.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, select, update
from sqlalchemy.orm import aliased

from smssync.errors import NotFound
from smssync.records import Delivery, DeliveryOutcome, DeliveryState, Event, OutboundStatus
from smssync.serialize import iso
from smssync.store import dialects
from smssync.store.engine import Database, changes, reads, writes
from smssync.store.rows import RowMap, from_us, maybe_us, to_us
from smssync.store.schema import (
    api_keys,
    devices,
    outbound,
    rules,
    webhook_deliveries,
    webhook_endpoints,
)

#: Columns of an outgoing SMS that its status events need.
HOOK_COLUMNS = (
    outbound.c.id,
    outbound.c.uuid,
    outbound.c.status,
    outbound.c.to_addr,
    outbound.c.callback_url,
    outbound.c.api_key_id,
)

#: The status changes that are events; the others (dispatched, accepted, ...) are not.
STATUS_EVENTS = {
    OutboundStatus.SENT.value: Event.SENT,
    OutboundStatus.FAILED.value: Event.FAILED,
    OutboundStatus.DELIVERED.value: Event.DELIVERED,
    OutboundStatus.UNDELIVERED.value: Event.UNDELIVERED,
}


def event_body(event: Event, data: dict[str, Any], at_us: int) -> tuple[str, str]:
    """Return a fresh event id and the JSON body every receiver of the event gets."""
    event_id = "evt_" + uuid.uuid4().hex
    body = {"id": event_id, "type": event.value, "created_at": iso(from_us(at_us)), "data": data}
    return event_id, json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def endpoints(conn: Connection) -> list[RowMap]:
    """Return every webhook endpoint row."""
    return [row._mapping for row in conn.execute(select(webhook_endpoints))]


def subscribed(row: RowMap, event: Event) -> bool:
    """Tell whether an endpoint row wants an event."""
    return event.value in json.loads(row["events"])


def _delivery(
    endpoint_id: int | None,
    api_key_id: int | None,
    url: str,
    event: Event,
    lane: str | None,
    data: dict[str, Any],
    now_us: int,
) -> dict[str, Any]:
    event_id, body = event_body(event, data, now_us)
    return {
        "endpoint_id": endpoint_id,
        "api_key_id": api_key_id,
        "url": url,
        "event_id": event_id,
        "event": event.value,
        "lane": lane,
        "body": body,
        "state": DeliveryState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now_us,
        "created_at": now_us,
    }


def insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Write deliveries (in list order, which is their lane order)."""
    if rows:
        conn.execute(webhook_deliveries.insert(), rows)


def emit_status_changes(
    conn: Connection,
    device_id: int,
    hooks: dict[int, RowMap],
    history: Iterable[dict[str, Any]],
    now_us: int,
) -> None:
    """Write message.sent/failed/delivered/undelivered for the history just appended."""
    changes = [h for h in history if h["status"] in STATUS_EVENTS]
    callbacks = any(hooks[h["outbound_id"]]["callback_url"] for h in changes)
    targets = endpoints(conn) if changes else []
    if not changes or not (targets or callbacks):
        return
    device = conn.execute(select(devices.c.name).where(devices.c.id == device_id)).scalar()
    rows: list[dict[str, Any]] = []
    for change in changes:
        message = hooks[change["outbound_id"]]
        event = STATUS_EVENTS[change["status"]]
        data = {
            "uuid": message["uuid"],
            "to": message["to_addr"],
            "status": change["status"],
            "device": device,
            "reason": change["detail"],
        }
        rows.extend(_message_deliveries(targets, message, event, data, now_us))
    insert(conn, rows)


def _message_deliveries(
    targets: list[RowMap], message: RowMap, event: Event, data: dict[str, Any], now_us: int
) -> list[dict[str, Any]]:
    """One message event for each subscribed endpoint and for the message's status callback,
    each in a lane of its own per message, so one message's events arrive in order."""
    rows = [
        _delivery(t["id"], None, t["url"], event, f"e{t['id']}:{message['uuid']}", data, now_us)
        for t in targets
        if subscribed(t, event)
    ]
    key_id, url = message["api_key_id"], message["callback_url"]
    if url and key_id is not None:
        lane = f"k{key_id}:{message['uuid']}"
        rows.append(_delivery(None, key_id, url, event, lane, data, now_us))
    return rows


def emit_received(
    conn: Connection, endpoint_ids: Iterable[int], data: dict[str, Any], now_us: int
) -> None:
    """Write message.received for each given endpoint (subscribers and rule forwards)."""
    wanted = sorted(set(endpoint_ids))
    if not wanted:
        return
    found = conn.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.url).where(
            webhook_endpoints.c.id.in_(wanted)
        )
    )
    insert(
        conn,
        [_delivery(row.id, None, row.url, Event.RECEIVED, None, data, now_us) for row in found],
    )


def emit_devices(conn: Connection, changes: Sequence[tuple[str, bool]], now_us: int) -> None:
    """Write device.online or device.offline of each (device, online) for the subscribed
    endpoints, in order."""
    if not changes:
        return
    found = endpoints(conn)
    rows = []
    for device, online in changes:
        event = Event.DEVICE_ONLINE if online else Event.DEVICE_OFFLINE
        data = {"device": device, "online": online}
        rows += [
            _delivery(row["id"], None, row["url"], event, f"e{row['id']}:d:{device}", data, now_us)
            for row in found
            if subscribed(row, event)
        ]
    insert(conn, rows)


def emit_alert(
    conn: Connection,
    event: Event,
    lane: str,
    data: dict[str, Any],
    now_us: int,
    skip_endpoint: int | None = None,
) -> None:
    """Write an alert's event (device.alert, webhook.failing) for the subscribed endpoints
    but ``skip_endpoint`` (the one the alert is about), in ``lane`` per endpoint."""
    insert(
        conn,
        [
            _delivery(row["id"], None, row["url"], event, f"e{row['id']}:{lane}", data, now_us)
            for row in endpoints(conn)
            if subscribed(row, event) and row["id"] != skip_endpoint
        ],
    )


def emit_message_events(
    conn: Connection, event: Event, messages: list[tuple[RowMap, dict[str, Any]]], now_us: int
) -> None:
    """Write one event per (HOOK_COLUMNS row, data), as ``emit_status_changes`` does."""
    targets = endpoints(conn) if messages else []
    insert(
        conn,
        [
            row
            for message, data in messages
            for row in _message_deliveries(targets, message, event, data, now_us)
        ],
    )


def any_due(conn: Connection, now_us: int) -> bool:
    """Tell whether some pending delivery is due (cheap: the state index)."""
    d = webhook_deliveries
    query = select(d.c.id).where(
        d.c.state == DeliveryState.PENDING.value, d.c.next_attempt_at <= now_us
    )
    return conn.execute(query.limit(1)).first() is not None


async def claim_deliveries(db: Database, now: datetime, limit: int, hold_s: int) -> list[Delivery]:
    """Take due deliveries for ``hold_s`` seconds, never a later event of a lane before an
    earlier one is delivered; two processes never take the same delivery."""
    now_us = to_us(now)
    # A read first: idle dispatchers then never queue behind the single SQLite writer.
    if not await db.read(any_due, now_us):
        return []
    return await db.write(claim, now_us, limit, hold_s * 1_000_000)


def claim(conn: Connection, now_us: int, limit: int, hold_us: int) -> list[Delivery]:
    """Take due deliveries whose lane has nothing earlier pending (see the module doc)."""
    d = webhook_deliveries
    earlier = aliased(d)
    blocked = exists().where(
        and_(
            earlier.c.lane == d.c.lane,
            earlier.c.id < d.c.id,
            earlier.c.state == DeliveryState.PENDING.value,
        )
    )
    query = (
        select(d.c.id)
        .where(
            d.c.state == DeliveryState.PENDING.value,
            d.c.next_attempt_at <= now_us,
            ~blocked,
        )
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(limit)
    )
    ids = list(conn.execute(dialects.skip_locked(conn, query)).scalars())
    if not ids:
        return []
    conn.execute(
        update(d)
        .where(d.c.id.in_(ids))
        .values(next_attempt_at=now_us + hold_us, attempts=d.c.attempts + 1)
    )
    return _with_secrets(conn, d.c.id.in_(ids))


def _with_secrets(conn: Connection, where: Any) -> list[Delivery]:
    d = webhook_deliveries
    rows = conn.execute(
        select(d, webhook_endpoints.c.secret.label("e_secret"), api_keys.c.signing_secret)
        .outerjoin(webhook_endpoints, webhook_endpoints.c.id == d.c.endpoint_id)
        .outerjoin(api_keys, api_keys.c.id == d.c.api_key_id)
        .where(where)
        .order_by(d.c.id)
    )
    return [
        Delivery(
            id=row.id,
            url=row.url,
            secret=row.e_secret or row.signing_secret or "",
            event_id=row.event_id,
            event=row.event,
            body=row.body,
            attempts=row.attempts,
            created_at=from_us(row.created_at),
            state=DeliveryState(row.state),
            last_error=row.last_error,
        )
        for row in rows
    ]


@writes
def finish_deliveries(conn: Connection, outcomes: list[DeliveryOutcome], now: datetime) -> None:
    """Record attempts: delivered, retry later, or dead; only pending deliveries change (a
    redrive may race)."""
    now_us = to_us(now)
    d = webhook_deliveries
    pending = d.c.state == DeliveryState.PENDING.value
    for outcome in outcomes:
        if outcome.delivered:
            values: dict[str, Any] = {
                "state": DeliveryState.DELIVERED.value,
                "finished_at": now_us,
                "last_error": None,
            }
        elif outcome.retry_at is None:
            values = {
                "state": DeliveryState.DEAD.value,
                "finished_at": now_us,
                "last_error": outcome.error,
            }
        else:
            values = {"next_attempt_at": maybe_us(outcome.retry_at), "last_error": outcome.error}
        conn.execute(update(d).where(d.c.id == outcome.delivery_id, pending).values(**values))


@reads
def deliveries(conn: Connection, state: str, limit: int = 100) -> list[Delivery]:
    """Return deliveries in a state (``dead``: the dead-letter list), oldest first."""
    ids = select(webhook_deliveries.c.id).where(webhook_deliveries.c.state == state)
    return _with_secrets(conn, webhook_deliveries.c.id.in_(ids.limit(limit).scalar_subquery()))


@writes
def redrive(conn: Connection, delivery_ids: list[int] | None, now: datetime) -> int:
    """Put dead deliveries (all when None) back in the queue, with a fresh retry window;
    return how many."""
    now_us = to_us(now)
    d = webhook_deliveries
    query = update(d).where(d.c.state == DeliveryState.DEAD.value)
    if delivery_ids is not None:
        query = query.where(d.c.id.in_(delivery_ids))
    done = conn.execute(
        query.values(
            state=DeliveryState.PENDING.value,
            attempts=0,
            next_attempt_at=now_us,
            created_at=now_us,
            finished_at=None,
        ).returning(d.c.id)
    )
    return len(done.all())


@changes("hooks")
def add_webhook(conn: Connection, url: str, events: list[str], secret: str, now: datetime) -> int:
    """Register a webhook endpoint; return its id."""
    now_us = to_us(now)
    row = conn.execute(
        webhook_endpoints.insert()
        .values(url=url, events=json.dumps(sorted(set(events))), secret=secret, created_at=now_us)
        .returning(webhook_endpoints.c.id)
    ).scalar_one()
    return int(row)


@changes("hooks")
def remove_webhook(conn: Connection, endpoint_id: int) -> None:
    """Delete an endpoint; its deliveries go with it, rules forwarding to it forward nowhere."""
    conn.execute(
        update(rules)
        .where(rules.c.forward_endpoint_id == endpoint_id)
        .values(forward_endpoint_id=None)
    )
    conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.endpoint_id == endpoint_id))
    gone = conn.execute(
        webhook_endpoints.delete()
        .where(webhook_endpoints.c.id == endpoint_id)
        .returning(webhook_endpoints.c.id)
    ).first()
    if gone is None:
        raise NotFound(f"no webhook {endpoint_id}")
