"""What the list of conversations was asked for, read from its query string: a search (by
text, or by number when it is digits), a phone, a range of dates, and the page's cursors.
Every value is checked here; a bad one is a ``ValueError`` whose text the page shows."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams

from smssync.addresses import normalize_recipient
from smssync.records import NumberCursor, ThreadCursor, ThreadFilter
from smssync.store.rows import to_us
from smssync.store.search import MIN_TEXT

#: The longest search and phone name read.
MAX_SEARCH = 100
#: What a number search may hold besides digits (as people write numbers).
_NUMBER = re.compile(r"^\+?[\d\s().-]+$")


def _digits_of(search: str, region: str) -> str | None:
    # A whole national number written with its trunk 0 (0700 000 001) is found by its
    # international form; other digits are a start (with or without +) or an end.
    if not _NUMBER.match(search):
        return None
    digits = re.sub(r"\D", "", search)
    if digits.startswith("0") and len(digits) >= 7:
        try:
            digits = normalize_recipient(search, region).lstrip("+")
        except ValueError:
            pass
    return digits


def _day(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name} must be a date, YYYY-MM-DD.") from None


def _id(raw: str | None) -> int | None:
    # A cursor is a row id or a time in microseconds: digits only.
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError("That page link is broken.")
    return int(raw)


@dataclasses.dataclass(frozen=True)
class ThreadQuery:
    """One request of the conversations list."""

    search: str = ""
    #: The search's digits when it is a number (``search_numbers``), else None (text).
    digits: str | None = None
    phone: str = ""
    since: date | None = None
    until: date | None = None
    before: ThreadCursor | None = None
    before_in: int | None = None
    before_out: int | None = None
    after_number: NumberCursor | None = None

    @property
    def filtered(self) -> bool:
        """Tell whether a phone or a date narrows the list."""
        return bool(self.phone or self.since or self.until)

    @property
    def first_page(self) -> bool:
        """Tell whether this is the first page (no cursor)."""
        cursors = (self.before, self.before_in, self.before_out, self.after_number)
        return all(c is None for c in cursors)

    def only(self, device_id: int | None) -> ThreadFilter:
        """Return the store's filter: the phone's id, dates as UTC days (the until day
        included, as the dashboard shows times in UTC)."""
        start = datetime.combine(self.since, datetime.min.time(), UTC) if self.since else None
        end = (
            datetime.combine(self.until + timedelta(days=1), datetime.min.time(), UTC)
            if self.until
            else None
        )
        return ThreadFilter(
            device_id=device_id,
            since_us=to_us(start) if start else None,
            until_us=to_us(end) if end else None,
        )

    def link(self, **cursor: Any) -> dict[str, Any]:
        """Return the query string of this search and filter, with a page's cursor."""
        query: dict[str, Any] = {
            "q": self.search,
            "phone": self.phone,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in {**query, **cursor}.items() if v not in ("", None)}


def read_query(params: QueryParams, region: str) -> ThreadQuery:
    """Read and check the list's query string; ``ValueError`` says what is wrong."""
    search = params.get("q", "").strip()[:MAX_SEARCH]
    digits = _digits_of(search, region) if search else None
    if search and len(digits if digits is not None else search) < MIN_TEXT:
        raise ValueError(f"Search for {MIN_TEXT} characters or digits or more.")
    since = _day(params.get("since", "").strip(), "From")
    until = _day(params.get("until", "").strip(), "To")
    if since and until and until < since:
        raise ValueError("The To date is before the From date.")
    at = _id(params.get("before_at"))
    phase = params.get("after_phase", "")
    if phase not in ("", "start", "end"):
        raise ValueError("That page link is broken.")
    return ThreadQuery(
        search=search,
        digits=digits,
        phone=params.get("phone", "").strip()[:MAX_SEARCH],
        since=since,
        until=until,
        before=ThreadCursor(at, params.get("before_number", "")[:MAX_SEARCH])
        if at is not None
        else None,
        before_in=_id(params.get("before_in")),
        before_out=_id(params.get("before_out")),
        after_number=NumberCursor(phase, params.get("after_key", "")[:MAX_SEARCH])
        if phase
        else None,
    )
