"""Wire ids: what a phone is told of an outgoing SMS instead of its public uuid.

The store's verbs speak public uuids; the Sync URL translates at its edge with these two
lookups, so only a phone that polled ever learns a wire id (S-29).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from smssync.store.queue import chunks
from smssync.store.schema import outbound


def wire_ids(conn: Connection, message_ids: list[str]) -> dict[str, str]:
    """Return the wire id of each known public uuid."""
    found: dict[str, str] = {}
    for part in chunks(list(dict.fromkeys(message_ids))):
        rows = conn.execute(
            select(outbound.c.uuid, outbound.c.wire_id).where(outbound.c.uuid.in_(part))
        )
        found.update({row.uuid: row.wire_id or row.uuid for row in rows})
    return found


def message_ids(conn: Connection, wire: list[str]) -> dict[str, str]:
    """Return the public uuid of each known wire id; unknown ones are left out."""
    found: dict[str, str] = {}
    for part in chunks(list(dict.fromkeys(wire))):
        rows = conn.execute(
            select(outbound.c.wire_id, outbound.c.uuid).where(outbound.c.wire_id.in_(part))
        )
        found.update({row.wire_id: row.uuid for row in rows})
    return found
