"""Retention and export on both engines: old SMS lose their text, never their row."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import Connection, Table, func, insert, select

from smssync.records import OutboundStatus
from smssync.server import retention as job
from smssync.settings import Settings
from smssync.store import export, inbox, results, retention
from smssync.store.engine import Database
from smssync.store.rows import to_us
from smssync.store.schema import inbound, outbound, webhook_deliveries
from tests.integration.store_helpers import T0, at, device, incoming, queue_some, status_of

DAY = 86400


async def count(store: Database, table: Table) -> int:
    def run(conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return await store.read(run)


def add_deliveries(conn: Connection) -> None:
    """One webhook delivery in each state, finished (or created) on day 0."""
    for state in ("delivered", "dead", "pending"):
        conn.execute(
            insert(webhook_deliveries).values(
                url="https://example.org/hook",
                event_id=f"evt-{state}",
                event="message.received",
                body='{"body": "quoted SMS"}',
                state=state,
                attempts=1,
                next_attempt_at=to_us(T0),
                created_at=to_us(T0),
                finished_at=None if state == "pending" else to_us(T0),
            )
        )


async def test_old_text_is_purged_and_counts_statuses_and_recent_text_stay(
    store: Database,
) -> None:
    phone = await device(store, "a")
    await inbox.record_inbound(store, incoming(phone.id, "old", "an old secret"))
    fresh = incoming(phone.id, "new", "a fresh one")
    await inbox.record_inbound(store, dataclasses.replace(fresh, received_at=at(10 * DAY)))
    finished, waiting = await queue_some(store, 2)
    assert await results.cancel(store, finished, at(5))
    # The cancelled one is final; the queued one, however old, still needs its text.
    purged = await retention.purge(store, at(3 * DAY), at(11 * DAY))
    assert (purged.inbound, purged.outbound) == (1, 1)
    rows = {m.message_id: m for m in await inbox.list_inbound(store)}
    assert rows["old"].content == "" and rows["new"].content == "a fresh one"
    assert rows["old"].from_addr == "+254700000001" and rows["old"].status == "received"
    page = {sms.id: sms for _, sms in await export.export_page(store, export.OUT)}
    assert page[finished].content == "" and page[finished].purged_at == at(11 * DAY)
    assert page[finished].status == "cancelled"
    assert page[waiting].content == "m1" and page[waiting].purged_at is None
    assert await status_of(store, waiting) == OutboundStatus.QUEUED
    assert await count(store, inbound) == 2 and await count(store, outbound) == 2
    # Done once: a second run finds nothing left.
    again = await retention.purge(store, at(3 * DAY), at(12 * DAY))
    assert again.total == 0


async def test_finished_webhook_deliveries_go_and_pending_ones_stay(store: Database) -> None:
    await store.write(add_deliveries)
    assert await count(store, webhook_deliveries) == 3
    purged = await retention.purge(store, at(DAY), at(2 * DAY))
    assert purged.deliveries == 2
    states = await store.read(
        lambda conn: sorted(conn.execute(select(webhook_deliveries.c.state)).scalars())
    )
    assert states == ["pending"]


async def test_the_job_runs_once_an_hour_across_processes_and_in_batches(
    store: Database,
) -> None:
    phone = await device(store, "a")
    for i in range(5):
        await inbox.record_inbound(store, incoming(phone.id, f"k{i}", f"text {i}"))
    settings = Settings(retention_days=1)
    now = T0 + timedelta(days=2)
    old_batch, job.BATCH = job.BATCH, 2
    try:
        assert await job.purge_once(settings, store, now) == 5
    finally:
        job.BATCH = old_batch
    # Another process in the same hour does nothing; the next hour's run finds nothing.
    assert await job.purge_once(settings, store, now + timedelta(minutes=5)) is None
    assert await job.purge_once(settings, store, now + timedelta(hours=1)) == 0
    assert {m.content for m in await inbox.list_inbound(store)} == {""}


async def test_export_pages_in_id_order(store: Database) -> None:
    phone = await device(store, "a")
    for i in range(5):
        await inbox.record_inbound(store, incoming(phone.id, f"k{i}", f"text {i}"))
    seen: list[str] = []
    after = 0
    while page := await export.export_page(store, export.IN, after, 2):
        seen.extend(sms.id for _, sms in page)
        after = page[-1][0]
    assert seen == [f"k{i}" for i in range(5)]
    [(_, first)] = await export.export_page(store, export.IN, 0, 1)
    assert (first.direction, first.device, first.from_addr, first.to_addr) == (
        "in",
        "a",
        "+254700000001",
        "+254700000002",
    )
    assert first.at == at(1) and first.status == "received" and first.purged_at is None
    assert await export.export_page(store, export.OUT) == []
