"""Conversations in both stores: threads newest first by keyset, search, one thread's SMS
in both directions, and the changes a watching page reads from cursors."""

from __future__ import annotations

import httpx

from smssync.records import Inbound, ThreadCursor
from smssync.store import conversations, search
from smssync.store.engine import Database
from tests.integration.api_helpers import ack, incoming, phone, poll, report

A, B, C = "+254700000001", "+254700000002", "+254700000003"


async def _send(client: httpx.AsyncClient, key: str, to: str, text: str) -> str:
    reply = await client.post(
        "/api/v1/messages",
        json={"to": to, "body": text},
        headers={"authorization": f"Bearer {key}"},
    )
    assert reply.status_code == 201, reply.text
    uuid: str = reply.json()["messages"][0]["uuid"]
    return uuid


async def test_threads_newest_first_paged_by_keyset_and_searched(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    url = await phone(store)
    await incoming(api_client, url, A, "hello from A", "m1")
    await incoming(api_client, url, B, "Appointment please", "m2")
    await _send(api_client, keys["send"], C, "reminder for C")
    await incoming(api_client, url, A, "again A", "m3")

    first, cursor = await conversations.threads(store, limit=2)
    assert [t.number for t in first] == [A, C]
    assert isinstance(first[0].last, Inbound) and first[0].last.content == "again A"
    assert cursor is not None
    rest, end = await conversations.threads(store, before=cursor, limit=2)
    assert [t.number for t in rest] == [B] and end is None

    found = await search.search_text(store, "APPOINTMENT")
    assert [m.content for m in found.hits] == ["Appointment please"]
    by_number, _ = await search.search_numbers(store, "0003")
    assert [t.number for t in by_number] == [C]
    # LIKE's wildcards are searched for as themselves.
    none = await search.search_text(store, "%%%")
    assert none.hits == ()
    assert await conversations.threads(store, before=ThreadCursor(0, "")) == ([], None)


async def test_a_thread_interleaves_both_directions_and_reports_changes(
    store: Database, api_client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    url = await phone(store)
    await incoming(api_client, url, A, "question", "m1")
    uuid = await _send(api_client, keys["send"], A, "answer")
    page = await conversations.thread(store, A)
    assert [getattr(m, "content", None) for m in conversations.merged(page)] == [
        "question",
        "answer",
    ]
    assert page.before_inbound is None and page.before_outbound is None

    unchanged = await conversations.thread_changes(store, A, page.after_inbound, page.after_history)
    assert unchanged.inbound == () and unchanged.outbound == ()

    # The phone takes the reply and reports it delivered; A writes again.
    [wire] = await poll(api_client, url)
    await ack(api_client, url, [wire])
    await report(api_client, url, wire, -1, -1)
    await incoming(api_client, url, A, "thanks", "m2")
    changed = await conversations.thread_changes(store, A, page.after_inbound, page.after_history)
    assert [m.content for m in changed.inbound] == ["thanks"]
    assert [(m.message_id, m.status.value) for m in changed.outbound] == [(uuid, "delivered")]
    again = await conversations.thread_changes(
        store, A, changed.after_inbound, changed.after_history
    )
    assert again.inbound == () and again.outbound == ()


async def test_a_long_thread_pages_back_by_ids(
    store: Database, api_client: httpx.AsyncClient
) -> None:
    url = await phone(store)
    for n in range(5):
        await incoming(api_client, url, A, f"sms {n}", f"m{n}")
    newest = await conversations.thread(store, A, limit=3)
    assert [m.content for m in newest.inbound] == ["sms 2", "sms 3", "sms 4"]
    assert newest.before_inbound is not None
    older = await conversations.thread(store, A, before_inbound=newest.before_inbound, limit=3)
    assert [m.content for m in older.inbound] == ["sms 0", "sms 1"]
    assert older.before_inbound is None


def test_0010_makes_a_conversation_of_every_number_already_stored(store_url: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from smssync.store.migrate import alembic_config
    from tests.integration.test_store_migrations import engine_for

    engine = create_engine(engine_for(store_url))
    device = (
        "INSERT INTO devices (id, name, token_hash, settings, effective_mode, created_at) "
        "VALUES (1, 'p', :t, '{}', 'handoff', 0)"
    )
    sms = (
        "INSERT INTO inbound (device_id, dedupe_key, from_raw, from_addr, to_addr, content, "
        "sent_at, received_at, flags, status) "
        "VALUES (1, :key, :addr, :addr, '', 'x', 0, :at, '[]', 'received')"
    )
    reply = (
        "INSERT INTO outbound (uuid, pinned, to_addr, content, segments, status, created_at, "
        "updated_at, result_listings, claim_rank) "
        "VALUES (:uuid, false, :addr, 'x', 1, 'queued', :at, :at, 0, 0)"
    )
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            command.downgrade(alembic_config(conn), "0009")
            conn.execute(text(device), {"t": b"token"})
            conn.execute(text(sms), {"key": "1", "addr": A, "at": 10})
            conn.execute(text(sms), {"key": "2", "addr": A, "at": 30})
            conn.execute(text(sms), {"key": "3", "addr": "", "at": 40})
            conn.execute(text(reply), {"uuid": "u1", "addr": A, "at": 20})
            conn.execute(text(reply), {"uuid": "u2", "addr": B, "at": 50})
            command.upgrade(alembic_config(conn), "head")
            rows = conn.execute(
                text(
                    "SELECT number, last_at, last_inbound_id IS NOT NULL, "
                    "last_outbound_id IS NOT NULL FROM threads ORDER BY number"
                )
            )
            assert [tuple(row) for row in rows] == [(A, 30, True, True), (B, 50, False, True)]
    finally:
        engine.dispose()


async def test_one_batch_with_a_number_twice_keeps_its_newest_sms(store: Database) -> None:
    from datetime import UTC, datetime, timedelta

    from smssync.records import NewInbound
    from smssync.server.credentials import create_device
    from smssync.store import inbox

    device, _ = await create_device(store, "p", datetime.now(UTC), secret=None)
    now = datetime.now(UTC)

    def sms(key: str, sender: str, text: str, at: datetime) -> dict[str, object]:
        return inbox.row_of(
            NewInbound(device.id, key, key, sender, sender, "", text, None, at, None, at, ())
        )

    rows = [
        sms("1", A, "first", now),
        sms("2", B, "other", now + timedelta(seconds=1)),
        sms("3", A, "second", now + timedelta(seconds=2)),
        sms("4", "", "no sender", now + timedelta(seconds=3)),
    ]
    await store.write(inbox.record_inbound_many, rows)
    found, _ = await conversations.threads(store)
    assert [(t.number, getattr(t.last, "content", "")) for t in found] == [
        (A, "second"),
        (B, "other"),
    ]


async def test_threads_since_a_cursor_are_the_ones_active_after_it(
    store: Database, api_client: httpx.AsyncClient
) -> None:
    url = await phone(store)
    await incoming(api_client, url, A, "one", "m1")
    [shown], _ = await conversations.threads(store)
    from smssync.store.rows import to_us

    cursor = ThreadCursor(to_us(shown.last_at), shown.number)
    assert await conversations.threads_since(store, cursor) == ([], cursor)
    await incoming(api_client, url, B, "two", "m2")
    await incoming(api_client, url, A, "three", "m3")
    found, after = await conversations.threads_since(store, cursor)
    assert [(t.number, getattr(t.last, "content", "")) for t in found] == [(B, "two"), (A, "three")]
    assert after.number == A
    assert await conversations.threads_since(store, after) == ([], after)
