"""Totals of the store, for the gauges of ``/metrics``: SMS in and out, phones, webhooks,
open alerts.

Read at scrape time from the database, so that whichever worker answers a scrape reports
the same, right values. Each count walks an index, not the rows (``outbound`` by its
``(status, id)`` index, ``webhook_deliveries`` by ``(state, next_attempt_at)``); the count
of ``inbound`` and of the online devices walk their table's smallest index, proportional to
its size: some milliseconds per hundred thousand rows, once per scrape.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from smssync.records import DeliveryState, OutboundStatus, Totals
from smssync.store import alerts
from smssync.store.engine import reads
from smssync.store.liveness import online_clause
from smssync.store.rows import to_us
from smssync.store.schema import devices, inbound, outbound, webhook_deliveries


@reads
def totals(conn: Connection, now: datetime) -> Totals:
    """Count stored SMS in, SMS out by status, devices, devices online, pending webhooks and
    open alerts by kind."""
    by_status = {status: 0 for status in OutboundStatus}
    for status, count in conn.execute(
        select(outbound.c.status, func.count()).group_by(outbound.c.status)
    ):
        by_status[OutboundStatus(status)] = count
    pending = webhook_deliveries.c.state == DeliveryState.PENDING.value
    return Totals(
        inbound=conn.execute(select(func.count()).select_from(inbound)).scalar_one(),
        outbound=by_status,
        devices=conn.execute(select(func.count()).select_from(devices)).scalar_one(),
        online=conn.execute(
            select(func.count()).select_from(devices).where(online_clause(conn, to_us(now)))
        ).scalar_one(),
        webhooks_pending=conn.execute(
            select(func.count()).select_from(webhook_deliveries).where(pending)
        ).scalar_one(),
        alerts_open=alerts.count_open_alerts.run(conn),
    )
