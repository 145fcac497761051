"""Search the conversations: SMS by their text, threads by their number; every page a
keyset, every read an index.

Text is searched as a substring, case-insensitive, of at least ``MIN_TEXT`` characters:
on SQLite through the FTS5 trigram tables ``inbound_search`` and ``outbound_search``
(migration 0014), which also hand their matches out newest first, so a page stops after
its rows however common the word; on PostgreSQL through the ``pg_trgm`` GIN indexes on
``content`` (the planner walks the id index instead when a word is too common to be
worth the bitmap). Each direction pages by its own ids, as a thread does.

Numbers are searched among the conversations (``threads``), by their digits: numbers that
start with them (``+`` and the digits: a country or network prefix) on the primary key,
then numbers that end with them (the last digits) on ``number_reversed``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, column, func, literal_column, not_, select, table

from smssync.records import (
    Inbound,
    NumberCursor,
    Outbound,
    SearchHits,
    Thread,
    ThreadFilter,
)
from smssync.store import dialects
from smssync.store.conversations import described, inbound_by_ids, listed, narrowed
from smssync.store.engine import reads
from smssync.store.messages import outbound_by_ids
from smssync.store.schema import inbound, outbound
from smssync.store.schema import threads as threads_table

#: The shortest text or run of digits searched: an index of trigrams finds nothing shorter.
MIN_TEXT = 3


def _fts_phrase(text: str) -> str:
    # One FTS5 phrase: with the trigram tokenizer, a phrase matches as a substring.
    return '"' + text.replace('"', '""') + '"'


def _like(text: str) -> str:
    # One pattern, bound whole: LIKE's wildcards in the text are searched for as themselves.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(
    conn: Connection,
    sms: Any,
    text: str,
    time: Any,
    only: ThreadFilter | None,
    before: int | None,
) -> Select[Any]:
    """Select the ids of ``sms`` (inbound or outbound) whose content contains ``text``,
    the newest first, below the id ``before``, within ``only``."""
    if conn.dialect.name == "sqlite":
        fts = table(f"{sms.name}_search", column("rowid"))
        # The bound on the FTS table's own rowid, not the joined id: SQLite hands only
        # constraints on its own columns to a virtual table, which then seeks to it.
        key = fts.c.rowid
        query = (
            select(sms.c.id)
            .select_from(fts.join(sms, sms.c.id == key))
            .where(literal_column(fts.name).op("MATCH")(_fts_phrase(text)))
        )
    else:
        key = sms.c.id
        query = select(sms.c.id).where(sms.c.content.ilike(_like(text), escape="\\"))
    query = query.order_by(key.desc())
    if before is not None:
        query = query.where(key < before)
    if only is not None:
        if only.device_id is not None:
            query = query.where(sms.c.device_id == only.device_id)
        if only.since_us is not None:
            query = query.where(time >= only.since_us)
        if only.until_us is not None:
            query = query.where(time < only.until_us)
    return query


@reads
def search_text(
    conn: Connection,
    text: str,
    *,
    only: ThreadFilter | None = None,
    before_inbound: int | None = None,
    before_outbound: int | None = None,
    limit: int = 50,
) -> SearchHits:
    """Return the SMS of either direction whose text contains ``text`` (at least
    ``MIN_TEXT`` characters, case-insensitive), the newest first, below the cursors."""
    if len(text) < MIN_TEXT:
        raise ValueError(f"search for {MIN_TEXT} characters or more")
    # A common word's newest-first walk stops after a page; workers would only slow it.
    dialects.no_parallel_scan(conn)
    ins = list(
        conn.execute(
            matching(conn, inbound, text, inbound.c.received_at, only, before_inbound)
            # An empty sender belongs to no conversation.
            .where(inbound.c.from_addr != "")
            .limit(limit + 1)
        ).scalars()
    )
    outs = list(
        conn.execute(
            matching(conn, outbound, text, outbound.c.created_at, only, before_outbound).limit(
                limit + 1
            )
        ).scalars()
    )
    found_in = inbound_by_ids(conn, ins)
    found_out = {m.seq: m for m in outbound_by_ids(conn, outs)}
    ins_desc = [found_in[i] for i in ins if i in found_in]
    outs_desc = [found_out[i] for i in outs if i in found_out]
    # Merge the two newest-first lists, taking a prefix of each, so that each direction's
    # cursor is exact: the next page starts below the last id taken.
    hits: list[Inbound | Outbound] = []
    a = b = 0
    while len(hits) < limit and (a < len(ins_desc) or b < len(outs_desc)):
        take_in = b >= len(outs_desc) or (
            a < len(ins_desc) and ins_desc[a].received_at >= outs_desc[b].created_at
        )
        if take_in:
            hits.append(ins_desc[a])
            a += 1
        else:
            hits.append(outs_desc[b])
            b += 1
    more = a < len(ins_desc) or b < len(outs_desc)
    return SearchHits(
        hits=tuple(hits),
        more=more,
        before_inbound=ins_desc[a - 1].id if a else before_inbound,
        before_outbound=outs_desc[b - 1].seq if b else before_outbound,
    )


def _next_digits(digits: str) -> str | None:
    # The least run of digits above every run that starts with ``digits`` ("2549" → "255";
    # None for "999"). Digits only, no sentinel character: a collation that orders
    # punctuation apart (PostgreSQL's en_US: "+254:" sorts before "+2549") keeps the range.
    kept = digits.rstrip("9")
    return kept[:-1] + str(int(kept[-1]) + 1) if kept else None


def _starting(column: Any, prefix: str, digits: str) -> Any:
    """Return the condition that ``column`` starts with ``prefix`` (which ends with
    ``digits``): an index range, and the exact test over what the range holds."""
    upper = _next_digits(digits)
    where = column >= prefix
    if upper is not None:
        where = where & (column < prefix[: len(prefix) - len(digits)] + upper)
    return where & (func.substr(column, 1, len(prefix)) == prefix)


@reads
def search_numbers(
    conn: Connection,
    digits: str,
    *,
    only: ThreadFilter | None = None,
    after: NumberCursor | None = None,
    limit: int = 50,
) -> tuple[list[Thread], NumberCursor | None]:
    """Return the conversations whose number starts with ``+digits`` (by number), then
    those whose number ends with ``digits`` (by their last digits), and the next page's
    cursor (None on the last)."""
    if len(digits) < MIN_TEXT or not digits.isdigit():
        raise ValueError(f"search for {MIN_TEXT} digits or more")
    number, backwards = threads_table.c.number, threads_table.c.number_reversed
    starts = _starting(number, "+" + digits, digits)
    ends = _starting(backwards, digits[::-1], digits[::-1])
    phases: list[tuple[str, Any, Any]] = [
        ("start", starts, number),
        # A number that starts with the digits was listed already.
        ("end", ends & not_(starts), backwards),
    ]
    rows: list[Any] = []
    cursor: NumberCursor | None = None
    skipping = after is not None
    for phase, where, key in phases:
        if skipping and after is not None and after.phase != phase:
            continue
        query = listed().where(where, *narrowed(threads_table, only)).order_by(key)
        if skipping and after is not None:
            query = query.where(key > after.key)
            skipping = False
        wanted = limit - len(rows)
        found = list(conn.execute(query.add_columns(key.label("sort_key")).limit(wanted + 1)))
        if len(found) > wanted:
            rows.extend(found[:wanted])
            # A page the previous phase filled exactly resumes at this one's start.
            cursor = NumberCursor(phase, found[wanted - 1].sort_key if wanted else "")
            break
        rows.extend(found)
    return described(conn, rows), cursor
