"""Webhook deliveries as pages list them: an endpoint's, newest first, and the dead letters.

Both walk an index newest first by keyset (``before`` an id), so a page costs the same with
a million deliveries as with ten; the dispatcher's own verbs are in ``webhooks``.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from smssync.records import DeliveryListing, DeliveryState
from smssync.store.engine import reads
from smssync.store.rows import RowMap, from_us, maybe_dt
from smssync.store.schema import webhook_deliveries

_COLUMNS = (
    webhook_deliveries.c.id,
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.url,
    webhook_deliveries.c.event,
    webhook_deliveries.c.state,
    webhook_deliveries.c.attempts,
    webhook_deliveries.c.created_at,
    webhook_deliveries.c.next_attempt_at,
    webhook_deliveries.c.finished_at,
    webhook_deliveries.c.last_error,
)


def _listing_of(row: RowMap) -> DeliveryListing:
    return DeliveryListing(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        url=row["url"],
        event=row["event"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        created_at=from_us(row["created_at"]),
        next_attempt_at=from_us(row["next_attempt_at"]),
        finished_at=maybe_dt(row["finished_at"]),
        last_error=row["last_error"],
    )


@reads
def endpoint_deliveries(
    conn: Connection, endpoint_id: int, before: int | None, limit: int
) -> list[DeliveryListing]:
    """Return an endpoint's deliveries newest first, those before id ``before`` when given
    (index endpoint_id, id)."""
    d = webhook_deliveries
    query = select(*_COLUMNS).where(d.c.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(d.c.id < before)
    found = conn.execute(query.order_by(d.c.id.desc()).limit(limit))
    return [_listing_of(row._mapping) for row in found]


@reads
def dead_letters(conn: Connection, before: int | None, limit: int) -> list[DeliveryListing]:
    """Return the deliveries whose retries ran out, status callbacks too, newest first
    (index state, id)."""
    d = webhook_deliveries
    query = select(*_COLUMNS).where(d.c.state == DeliveryState.DEAD.value)
    if before is not None:
        query = query.where(d.c.id < before)
    found = conn.execute(query.order_by(d.c.id.desc()).limit(limit))
    return [_listing_of(row._mapping) for row in found]
