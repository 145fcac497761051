"""Stored SMS of both directions, flat, page by page, for ``smssync export``."""

from __future__ import annotations

from sqlalchemy import Connection, select

from smssync.records import ExportedSms
from smssync.store.engine import reads
from smssync.store.rows import from_us
from smssync.store.schema import devices, inbound, outbound

#: ``direction`` of each table's SMS.
IN, OUT = "in", "out"


@reads
def export_page(
    conn: Connection, direction: str, after_id: int = 0, limit: int = 1000
) -> list[tuple[int, ExportedSms]]:
    """Return up to ``limit`` SMS of one direction after the row id ``after_id``, in id
    order, each with its row id (the next page's cursor)."""
    if direction == IN:
        rows = conn.execute(
            select(inbound, devices.c.name.label("device_name"))
            .outerjoin(devices, devices.c.id == inbound.c.device_id)
            .where(inbound.c.id > after_id)
            .order_by(inbound.c.id)
            .limit(limit)
        )
        return [
            (
                row.id,
                ExportedSms(
                    IN,
                    row.message_id or str(row.id),
                    row.device_name or "",
                    from_us(row.received_at),
                    row.from_addr,
                    row.to_addr,
                    row.content,
                    row.status,
                    None if row.purged_at is None else from_us(row.purged_at),
                ),
            )
            for row in rows
        ]
    if direction != OUT:
        raise ValueError(f"direction must be {IN!r} or {OUT!r}")
    rows = conn.execute(
        select(outbound, devices.c.name.label("device_name"))
        .outerjoin(devices, devices.c.id == outbound.c.device_id)
        .where(outbound.c.id > after_id)
        .order_by(outbound.c.id)
        .limit(limit)
    )
    return [
        (
            row.id,
            ExportedSms(
                OUT,
                row.uuid,
                row.device_name or "",
                from_us(row.created_at),
                "",
                row.to_addr,
                row.content,
                row.status,
                None if row.purged_at is None else from_us(row.purged_at),
            ),
        )
        for row in rows
    ]
