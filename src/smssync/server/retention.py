"""The retention job of a server: purge the text of old SMS once an hour, once per fleet."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from smssync.errors import SmssyncError
from smssync.settings import Settings
from smssync.store import retention, schedule
from smssync.store.engine import Database

log = logging.getLogger("smssync.retention")

#: The job's slot: one purge an hour across every process of the fleet.
EVERY_S = 3600.0
#: How often each process asks whether the hour's purge is still to do.
POLL_S = 60.0
#: Rows of each kind per transaction, so that phones' writes wait little between them.
BATCH = 1000


async def purge_once(settings: Settings, store: Database, now: datetime) -> int | None:
    """Purge what is older than ``retention_days`` if no other process has this hour;
    return the rows touched, or None when another process took the hour."""
    if not await schedule.claim_run(store, "retention", now, EVERY_S):
        return None
    cutoff = now - timedelta(days=settings.retention_days)
    total = 0
    while True:
        purged = await retention.purge(store, cutoff, now, BATCH)
        total += purged.total
        if max(purged.inbound, purged.outbound, purged.deliveries) < BATCH:
            break
    if total:
        log.info(
            "retention: purged the text of SMS older than %d day(s) (%d row(s))",
            settings.retention_days,
            total,
        )
    return total


async def watch_retention(settings: Settings, store: Database) -> None:
    """Run the hourly purge until cancelled."""
    while True:
        try:
            await purge_once(settings, store, datetime.now(UTC))
        except SmssyncError as exc:
            log.warning("retention purge failed: %s", exc.message)
        await asyncio.sleep(POLL_S)
