"""Incoming SMS verbs: plain functions over one open Connection."""

from __future__ import annotations

import json

from sqlalchemy import Connection, select

from smssync.store import dialects
from smssync.store.base import Inbound, NewInbound
from smssync.store.rows import inbound_of, to_us
from smssync.store.schema import devices, inbound

RECEIVED = "received"


def record_inbound(conn: Connection, message: NewInbound) -> tuple[bool, int]:
    """Insert unless (device, dedupe_key) exists: (created, id) (S-10)."""
    # Values as parameters, not .values(): the hot path of E1 then reuses one cached statement.
    statement = (
        dialects.insert(conn, inbound)
        .on_conflict_do_nothing(index_elements=[inbound.c.device_id, inbound.c.dedupe_key])
        .returning(inbound.c.id)
    )
    values = {
        "device_id": message.device_id,
        "dedupe_key": message.dedupe_key,
        "message_id": message.message_id,
        "from_raw": message.from_raw,
        "from_addr": message.from_addr,
        "to_addr": message.to_addr,
        "content": message.content,
        "sent_timestamp_raw": message.sent_timestamp_raw,
        "sent_at": to_us(message.sent_at),
        "device_label": message.device_label,
        "received_at": to_us(message.received_at),
        "flags": json.dumps(list(message.flags)),
        "status": RECEIVED,
    }
    inserted = conn.execute(statement, values).scalar()
    if inserted is not None:
        return True, int(inserted)
    existing = conn.execute(
        select(inbound.c.id).where(
            inbound.c.device_id == message.device_id,
            inbound.c.dedupe_key == message.dedupe_key,
        )
    ).scalar_one()
    return False, int(existing)


def list_inbound(conn: Connection, device: str | None, limit: int, after_id: int) -> list[Inbound]:
    """Return incoming SMS after ``after_id``, oldest first."""
    query = (
        select(inbound, devices.c.name.label("device_name"))
        .outerjoin(devices, devices.c.id == inbound.c.device_id)
        .where(inbound.c.id > after_id)
        .order_by(inbound.c.id)
        .limit(limit)
    )
    if device is not None:
        query = query.where(devices.c.name == device)
    return [inbound_of(row._mapping) for row in conn.execute(query)]
