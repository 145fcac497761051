"""Periodic jobs run once per fleet: the first process to claim a time slot does the run.

Several server processes (uvicorn workers, or servers sharing one PostgreSQL) each wake on
the same schedule; a job that reads every device, like the liveness check, should still
run once per slot and not once per process. A conditional upsert of a ``meta`` row claims
the slot: the row holds the last slot taken, and only the process whose write raises it
runs the job. A process that dies after claiming loses that one slot; the next is free.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from smssync.store import dialects
from smssync.store.engine import writes
from smssync.store.rows import to_us
from smssync.store.schema import meta


@writes
def claim_run(conn: Connection, job: str, now: datetime, every_s: float) -> bool:
    """Take the time slot of ``now`` (``every_s`` long) for a periodic job, once across
    processes; False when another process already took it."""
    now_us, every_us = to_us(now), int(every_s * 1_000_000)
    if every_us <= 0:
        raise ValueError("every_s must be positive")
    # Big-endian bytes compare like the numbers in both engines (memcmp order).
    slot = (now_us // every_us).to_bytes(8, "big", signed=False)
    insert = dialects.insert(conn, meta).values(key=f"job:{job}", value=slot)
    statement = insert.on_conflict_do_update(
        index_elements=[meta.c.key],
        set_={"value": insert.excluded.value},
        where=meta.c.value < insert.excluded.value,
    ).returning(meta.c.key)
    return conn.execute(statement).first() is not None
