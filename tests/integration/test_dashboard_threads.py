"""Conversations at scale, in both stores: unread counts kept with the incoming SMS and
cleared by opening the thread, search by text and by number with keyset pages, filters by
phone and date, and migration 0014 over a database that already holds SMS."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, text

from smssync.dashboard.conversations import THREADS_PER_PAGE as PER_PAGE
from smssync.records import NewInbound, Role, ThreadFilter, new_outbound
from smssync.server.credentials import create_device
from smssync.store import conversations, inbox, queue, search, threads
from smssync.store.engine import Database
from smssync.store.rows import to_us
from smssync.store.schema import inbound
from tests.integration import test_dashboard
from tests.integration.api_helpers import incoming, phone
from tests.integration.test_dashboard import Client
from tests.integration.test_store_migrations import engine_for

#: The dashboard's app and signed-in clients, as test_dashboard makes them.
app, client = test_dashboard.app, test_dashboard.client

A, B, C = "+254700000001", "+254700000002", "+254711000003"
DAY = datetime(2026, 3, 10, 12, tzinfo=UTC)


def badge(html: str, number: str) -> str | None:
    """Return the unread badge of a number's row in the list, or None without one."""
    row = re.search(rf'<li data-number="{re.escape(number)}".*?</li>', html, re.S)
    assert row, html
    found = re.search(r'class="count unread-count" aria-label="(\d+) unread"', row.group(0))
    return found.group(1) if found else None


def total(html: str) -> str | None:
    found = re.search(r'id="unread-total" aria-label="(\d+\+?) unread"', html)
    return found.group(1) if found else None


async def test_unread_counts_rise_with_incoming_sms_and_clear_on_open(
    store: Database, client: Client
) -> None:
    viewer, operator = await client(Role.VIEWER), await client(Role.OPERATOR)
    url = await phone(store)
    await incoming(viewer, url, A, "one", "m1")
    await incoming(viewer, url, A, "two", "m2")
    await incoming(viewer, url, A, "two", "m2")  # the phone retries: one SMS, counted once
    await incoming(viewer, url, B, "hello", "m3")
    # Outgoing SMS are never unread.
    await queue.enqueue(store, [new_outbound(B, "reply", None, datetime.now(UTC))])

    listing = (await viewer.get("/dashboard/conversations")).text
    assert (badge(listing, A), badge(listing, B), total(listing)) == ("2", "1", "3")
    feed = (await viewer.get("/dashboard/conversations/changes?after_at=0")).json()
    assert feed["unread"] == "3"
    assert [badge(item["html"], item["key"]) for item in feed["items"]] == ["2", "1"]

    # Opening A reads it for everyone: the clinic's inbox is one inbox.
    opened = await viewer.get(f"/dashboard/conversations/{A}")
    assert opened.status_code == 200 and total(opened.text) == "1"
    theirs = (await operator.get("/dashboard/conversations")).text
    assert (badge(theirs, A), badge(theirs, B), total(theirs)) == (None, "1", "1")

    # A new SMS while A's thread is open: its feed shows it, so it is read at once.
    page = await conversations.thread(store, A)
    await incoming(viewer, url, A, "three", "m4")
    assert await threads.total_unread(store) == (2, False)
    await viewer.get(
        f"/dashboard/conversations/{A}/changes",
        params={"after_in": page.after_inbound, "after_hist": page.after_history},
    )
    assert await threads.total_unread(store) == (1, False)
    # An older page of a thread is history: it reads nothing.
    await incoming(viewer, url, B, "again", "m5")
    await viewer.get(f"/dashboard/conversations/{B}?before_in=1&before_out=1")
    assert await threads.total_unread(store) == (2, False)


async def test_text_search_finds_words_in_both_directions_newest_first_by_keyset(
    store: Database, api_client: httpx.AsyncClient
) -> None:
    url = await phone(store)
    await incoming(api_client, url, A, "Your APPOINTMENT is due", "m1")
    await incoming(api_client, url, B, "nothing to see", "m2")
    for n in range(3):
        await incoming(api_client, url, B, f"appointment {n} <b>bold</b>", f"a{n}")
        await queue.enqueue(
            store, [new_outbound(C, f"Reminder: appointment {n}", None, datetime.now(UTC))]
        )
    seen: list[str] = []
    before_in = before_out = None
    pages = 0
    while True:
        page = await search.search_text(
            store, "ppointm", before_inbound=before_in, before_outbound=before_out, limit=3
        )
        seen.extend(m.content for m in page.hits)
        pages += 1
        if not page.more:
            break
        before_in, before_out = page.before_inbound, page.before_outbound
    # Every match once, the newest first, across both directions and three pages.
    assert seen == [
        "Reminder: appointment 2",
        "appointment 2 <b>bold</b>",
        "Reminder: appointment 1",
        "appointment 1 <b>bold</b>",
        "Reminder: appointment 0",
        "appointment 0 <b>bold</b>",
        "Your APPOINTMENT is due",
    ]
    assert pages == 3
    assert (await search.search_text(store, "no such words")).hits == ()


async def test_number_search_by_prefix_then_last_digits_pages_by_keyset(
    store: Database, api_client: httpx.AsyncClient
) -> None:
    url = await phone(store)
    numbers = ["+254700000001", "+254700000002", "+254711000003", "+1254700003", "+4470000001"]
    for n, number in enumerate(numbers):
        await incoming(api_client, url, number, "hi", f"m{n}")
    starts, _ = await search.search_numbers(store, "2547")
    assert [t.number for t in starts] == numbers[:3]
    # No number starts with +0003: those ending with it, by their last digits.
    ends, _ = await search.search_numbers(store, "0003")
    assert [t.number for t in ends] == ["+254711000003", "+1254700003"]
    both: list[str] = []
    cursor = None
    while True:
        found, cursor = await search.search_numbers(store, "0001", after=cursor, limit=1)
        both.extend(t.number for t in found)
        if cursor is None:
            break
    assert both == ["+254700000001", "+4470000001"]
    # Those that start with the digits are not listed again among those ending with them.
    found, _ = await search.search_numbers(store, "254700000001")
    assert [t.number for t in found] == ["+254700000001"]


async def test_the_page_searches_text_or_numbers_and_refuses_what_it_cannot(
    store: Database, client: Client
) -> None:
    c = await client(Role.VIEWER)
    url = await phone(store)
    await incoming(c, url, A, "Clinic <script>x</script> closed", "m1")
    await incoming(c, url, B, "open", "m2")
    words = (await c.get("/dashboard/conversations", params={"q": "CLINIC"})).text
    assert f'href="/dashboard/conversations/{A}"' in words
    assert "&lt;script&gt;" in words and "<script>x" not in words
    assert f"/conversations/{B}" not in words
    # Digits search the numbers; a national number is read in the default region (KE).
    for q in ("0002", "+2547000000", "0700 000 002"):
        found = (await c.get("/dashboard/conversations", params={"q": q})).text
        assert f'data-number="{B}"' in found, q
        assert (f'data-number="{A}"' in found) is (q == "+2547000000"), q
    for bad in ({"q": "ab"}, {"since": "2026-02-30"}, {"phone": "nobody"}):
        reply = await c.get("/dashboard/conversations", params=bad)
        assert reply.status_code == 400, bad
    backwards = {"since": "2026-03-02", "until": "2026-03-01"}
    assert (await c.get("/dashboard/conversations", params=backwards)).status_code == 400
    assert (await c.get("/dashboard/conversations?q=abc&before_in=x")).status_code == 400


async def _sms(store: Database, device_id: int, sender: str, at: datetime, key: str) -> None:
    message = NewInbound(device_id, key, key, sender, sender, "", "text", None, at, None, at, ())
    await store.write(inbox.record_inbound_many, [inbox.row_of(message)])


async def test_filters_by_phone_and_dates(store: Database, client: Client) -> None:
    one, _ = await create_device(store, "one", DAY, secret=None)
    two, _ = await create_device(store, "two", DAY, secret=None)
    await _sms(store, one.id, A, DAY - timedelta(days=2), "1")
    await _sms(store, two.id, B, DAY, "2")
    await _sms(store, one.id, C, DAY + timedelta(days=1), "3")
    # A thread's phone is the one of its newest SMS.
    await _sms(store, two.id, A, DAY - timedelta(days=1), "4")

    async def numbers(only: ThreadFilter) -> list[str]:
        found, _ = await conversations.threads(store, only=only)
        return [t.number for t in found]

    assert await numbers(ThreadFilter(device_id=two.id)) == [B, A]
    assert await numbers(ThreadFilter(device_id=one.id)) == [C]
    day = to_us(DAY.replace(hour=0))
    assert await numbers(ThreadFilter(since_us=day)) == [C, B]
    assert await numbers(ThreadFilter(until_us=day)) == [A]
    assert await numbers(ThreadFilter(device_id=two.id, since_us=day)) == [B]
    # Keyset pages inside a filter.
    first, cursor = await conversations.threads(store, only=ThreadFilter(device_id=two.id), limit=1)
    assert [t.number for t in first] == [B] and cursor is not None
    rest, end = await conversations.threads(
        store, only=ThreadFilter(device_id=two.id), before=cursor, limit=1
    )
    assert [t.number for t in rest] == [A] and end is None

    c = await client(Role.VIEWER)
    page = await c.get(
        "/dashboard/conversations",
        params={"phone": "two", "since": "2026-03-10", "until": "2026-03-10"},
    )
    assert page.status_code == 200
    assert re.findall(r'<li data-number="([^"]+)"', page.text) == [B]
    # A filtered list does not watch the whole list's feed.
    assert "data-threads-feed" not in page.text


def test_0014_counts_nothing_unread_and_indexes_the_sms_already_stored(store_url: str) -> None:
    from alembic import command

    from smssync.store.migrate import alembic_config

    engine = create_engine(engine_for(store_url))
    device = (
        "INSERT INTO devices (id, name, token_hash, settings, effective_mode, created_at) "
        "VALUES (7, 'p', :t, '{}', 'handoff', 0)"
    )
    sms = (
        "INSERT INTO inbound (device_id, dedupe_key, from_raw, from_addr, to_addr, content, "
        "sent_at, received_at, flags, status) "
        "VALUES (7, :key, :addr, :addr, '', :text, 0, :at, '[]', 'received')"
    )
    reply = (
        "INSERT INTO outbound (uuid, pinned, to_addr, content, segments, status, created_at, "
        "updated_at, result_listings, claim_rank) "
        "VALUES (:uuid, false, :addr, :text, 1, 'queued', :at, :at, 0, 0)"
    )
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            command.downgrade(alembic_config(conn), "0013")
            conn.execute(text(device), {"t": b"token"})
            conn.execute(text(sms), {"key": "1", "addr": A, "text": "Fever since Monday", "at": 10})
            conn.execute(text(sms), {"key": "2", "addr": B, "text": "thanks", "at": 20})
            conn.execute(text(reply), {"uuid": "u1", "addr": A, "text": "Come Tuesday", "at": 30})
            conn.execute(
                text(
                    "INSERT INTO threads (number, last_at, last_inbound_id, last_outbound_id) "
                    "SELECT from_addr, MAX(received_at), MAX(id), NULL FROM inbound "
                    "GROUP BY from_addr"
                )
            )
            command.upgrade(alembic_config(conn), "head")
            rows = conn.execute(
                text(
                    "SELECT number, unread, number_reversed, last_device_id FROM threads "
                    "ORDER BY number"
                )
            )
            assert [tuple(r) for r in rows] == [(A, 0, A[::-1], 7), (B, 0, B[::-1], 7)]
            found = search.search_text.run(conn, "MONDAY")
            assert [m.content for m in found.hits] == ["Fever since Monday"]
            assert [m.content for m in search.search_text.run(conn, "tuesday").hits] == [
                "Come Tuesday"
            ]
            # Retention's purge empties the text, and the index with it; a delete too.
            conn.execute(text("UPDATE inbound SET content = '' WHERE dedupe_key = '1'"))
            assert search.search_text.run(conn, "monday").hits == ()
            conn.execute(text("DELETE FROM outbound WHERE uuid = 'u1'"))
            assert search.search_text.run(conn, "tuesday").hits == ()
            if conn.dialect.name == "sqlite":
                # The match and the page's bound are read from the FTS index, newest first:
                # no scan of the SMS, no sort ("<": the rowid bound reached the FTS table).
                query = search.matching(conn, inbound, "abc", inbound.c.received_at, None, 10)
                sql = str(query.limit(5).compile(conn, compile_kwargs={"literal_binds": True}))
                plan = " ".join(
                    str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert "VIRTUAL TABLE INDEX" in plan and ":M1<" in plan, plan
                assert "TEMP B-TREE" not in plan and "SCAN inbound " not in plan, plan
    finally:
        engine.dispose()


async def test_the_header_total_adds_up_a_bounded_number_of_conversations(
    store: Database,
) -> None:
    device, _ = await create_device(store, "p", DAY, secret=None)
    rows = [
        inbox.row_of(
            NewInbound(device.id, f"k{n}", None, f"+1555{n:07d}", f"+1555{n:07d}", "", "x",
                       None, DAY, None, DAY, ())
        )
        for n in range(threads.UNREAD_COUNTED)
    ]  # fmt: skip
    for start in range(0, len(rows), inbox.MAX_ROWS):
        await store.write(inbox.record_inbound_many, rows[start : start + inbox.MAX_ROWS])
    assert await threads.total_unread(store) == (threads.UNREAD_COUNTED, False)
    await _sms(store, device.id, A, DAY, "one more")
    found = await threads.total_unread(store)
    assert found[1] and threads.unread_label(found).endswith("+")
    assert threads.unread_label((0, False)) == "" and threads.unread_label((4, False)) == "4"


async def test_the_pages_of_a_search_follow_their_links_to_the_end(
    store: Database, client: Client
) -> None:
    c = await client(Role.VIEWER)
    now = datetime.now(UTC)
    many = PER_PAGE + 1
    # One enqueue: 51 outgoing SMS to 51 numbers, each its conversation.
    await queue.enqueue(
        store,
        [new_outbound(f"+2547990{n:05d}", f"visit reminder {n}", None, now) for n in range(many)],
    )
    for q, more in (("reminder", "Older SMS"), ("2547990", "More numbers")):
        seen: list[str] = []
        url: str | None = f"/dashboard/conversations?{urlencode({'q': q})}"
        pages = 0
        while url:
            page = await c.get(url)
            assert page.status_code == 200, page.text
            seen += re.findall(r'<span class="number">([^<]+)</span>', page.text)
            link = re.search(rf'<a rel="next" href="([^"]+)">{more}</a>', page.text)
            url = html.unescape(link.group(1)) if link else None
            pages += 1
        assert pages == 2, q
        assert sorted(seen) == sorted(f"+2547990{n:05d}" for n in range(many)), q


async def test_number_ranges_hold_under_a_collation_that_orders_punctuation_apart(
    store: Database, store_url: str
) -> None:
    if store_url.startswith("postgresql"):
        # A database made in an en_US locale: ICU sorts ":" before the digits.
        engine = create_engine(engine_for(store_url))
        with engine.begin() as conn:
            for name in ("number", "number_reversed"):
                conn.execute(
                    text(f'ALTER TABLE threads ALTER COLUMN {name} TYPE text COLLATE "en-US-x-icu"')
                )
        engine.dispose()
    device, _ = await create_device(store, "p", DAY, secret=None)
    numbers = ["+2549", "+254900000001", "+255000000001", "+999123", "MPESA", "+44799"]
    for n, number in enumerate(numbers):
        await _sms(store, device.id, number, DAY + timedelta(seconds=n), str(n))

    async def found(digits: str) -> list[str]:
        threads_found, _ = await search.search_numbers(store, digits)
        return [t.number for t in threads_found]

    assert await found("2549") == ["+2549", "+254900000001"]
    assert await found("999") == ["+999123"]
    assert await found("799") == ["+44799"]


async def test_a_removed_phone_leaves_its_conversations_to_no_phone(store: Database) -> None:
    from smssync.store import devices

    gone, _ = await create_device(store, "gone", DAY, secret=None)
    await _sms(store, gone.id, A, DAY, "1")
    await devices.remove_device(store, "gone")
    assert await conversations.threads(store, only=ThreadFilter(device_id=gone.id)) == ([], None)
    [thread], _ = await conversations.threads(store)
    assert thread.number == A
