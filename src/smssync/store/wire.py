"""Wire ids: what a phone is told of an outgoing SMS instead of its public uuid.

The store's verbs speak public uuids; the Sync URL translates at its edge with these two
lookups, so only a phone that polled ever learns a wire id (S-29).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from smssync.store.engine import Database
from smssync.store.rows import chunks
from smssync.store.schema import outbound


async def wire_ids(db: Database, message_ids: list[str]) -> dict[str, str]:
    """Return the wire id of each known public uuid: what E2 and E4 tell the phone, and
    what it names in E5, E6 and E7, so that a public uuid never confirms a message."""
    return await db.read(_wire_ids, message_ids) if message_ids else {}


async def message_ids(db: Database, wire: list[str]) -> dict[str, str]:
    """Return the public uuid of each known wire id; unknown ones are left out."""
    return await db.read(_message_ids, wire) if wire else {}


def _wire_ids(conn: Connection, message_ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in chunks(list(dict.fromkeys(message_ids))):
        rows = conn.execute(
            select(outbound.c.uuid, outbound.c.wire_id).where(outbound.c.uuid.in_(part))
        )
        found.update({row.uuid: row.wire_id or row.uuid for row in rows})
    return found


def _message_ids(conn: Connection, wire: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in chunks(list(dict.fromkeys(wire))):
        rows = conn.execute(
            select(outbound.c.wire_id, outbound.c.uuid).where(outbound.c.wire_id.in_(part))
        )
        found.update({row.wire_id: row.uuid for row in rows})
    return found
