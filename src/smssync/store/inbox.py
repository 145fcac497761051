"""Incoming SMS verbs: plain functions over one open Connection."""

from __future__ import annotations

import json

from sqlalchemy import Connection, select
from sqlalchemy import exc as sa_exc

from smssync.errors import StoreError
from smssync.store.base import Inbound, NewInbound
from smssync.store.rows import inbound_of, to_us
from smssync.store.schema import devices, inbound

RECEIVED = "received"


_COLUMNS = (
    "device_id",
    "dedupe_key",
    "message_id",
    "from_raw",
    "from_addr",
    "to_addr",
    "content",
    "sent_timestamp_raw",
    "sent_at",
    "device_label",
    "received_at",
    "flags",
    "status",
)
_INSERT = (
    f"INSERT INTO inbound ({', '.join(_COLUMNS)}) VALUES "
    f"({', '.join('{p}' + c + '{s}' for c in _COLUMNS)}) "
    "ON CONFLICT (device_id, dedupe_key) DO NOTHING RETURNING id"
)
_EXISTING = (
    "SELECT id FROM inbound WHERE device_id = {p}device_id{s} AND dedupe_key = {p}dedupe_key{s}"
)
#: Named placeholders as each driver spells them.
_PLACEHOLDERS = {"sqlite": (":", ""), "postgresql": ("%(", ")s")}


def _sql(template: str, dialect: str) -> str:
    before, after = _PLACEHOLDERS[dialect]
    return template.replace("{p}", before).replace("{s}", after)


_STATEMENTS = {d: (_sql(_INSERT, d), _sql(_EXISTING, d)) for d in _PLACEHOLDERS}


def record_inbound(conn: Connection, message: NewInbound) -> tuple[bool, int]:
    """Insert unless (device, dedupe_key) exists: (created, id) (S-10).

    This is the hottest write of the server (every incoming SMS), so it runs two fixed
    statements on the driver's cursor: through SQLAlchemy's execution machinery it cost more
    CPU than the whole HTTP request around it (measured with py-spy under wrk).
    """
    insert_sql, existing_sql = _STATEMENTS[conn.dialect.name]
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
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(insert_sql, values)
        inserted = cursor.fetchone()
        if inserted is not None:
            return True, int(inserted[0])
        cursor.execute(existing_sql, values)
        existing = cursor.fetchone()
    except conn.dialect.loaded_dbapi.Error as error:
        # Wrapped as SQLAlchemy would, so busy and integrity errors are recognised upstream.
        raise sa_exc.DBAPIError.instance(
            insert_sql,
            values,
            error,
            conn.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=conn.dialect,
        ) from error
    finally:
        cursor.close()
    if existing is None:  # impossible inside one transaction; say so rather than guess
        raise StoreError("incoming SMS neither inserted nor found")
    return False, int(existing[0])


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
