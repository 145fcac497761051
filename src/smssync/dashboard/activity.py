"""Activity: SMS in and out per hour or per day over a chosen range, and each phone's
delivery rate, from the store (``store/activity.py``, as ``GET /api/v1/activity``).

The range is whole UTC days from a GET form (first and last day, both included), so a
link to the page keeps what it shows. Charts are inline SVG with a data table under each.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response

from smssync.dashboard.charts import grouped_bars, percent_bars
from smssync.dashboard.guard import Visitor, context, page, refused
from smssync.dashboard.render import render
from smssync.records import ActivityBucket, DeviceActivity
from smssync.store import activity

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
#: The longest range per bucket: more bars than this do not fit a screen.
MOST_DAYS = {"hour": 14, "day": 366}
#: The range shown without a choice: the last week, by day.
DEFAULT_DAYS = 7
SERIES = ("received", "sent", "delivered", "failed")


@dataclasses.dataclass(frozen=True)
class Choice:
    """The range and bucket a person chose (or the default)."""

    first: date
    last: date
    bucket: str

    @property
    def since(self) -> datetime:
        """The range's start: midnight UTC of its first day."""
        return datetime.combine(self.first, time(), UTC)

    @property
    def until(self) -> datetime:
        """The range's end: midnight UTC after its last day."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)


def _choice(request: Request, today: date) -> Choice | str:
    """Read the form; return the choice, or what is wrong with it."""
    query = request.query_params
    bucket = query.get("bucket", "day")
    if bucket not in BUCKETS:
        return "The bucket is an hour or a day."
    try:
        last = date.fromisoformat(query["to"]) if query.get("to") else today
        first = (
            date.fromisoformat(query["from"])
            if query.get("from")
            else last - timedelta(days=DEFAULT_DAYS - 1)
        )
    except ValueError:
        return "Days are written YYYY-MM-DD."
    if first > last:
        return "The first day comes before the last."
    if (last - first).days + 1 > MOST_DAYS[bucket]:
        return f"At most {MOST_DAYS[bucket]} days by {bucket}."
    return Choice(first, last, bucket)


def _label(bucket: ActivityBucket, by: str) -> str:
    return bucket.start.strftime("%m-%d %H:00" if by == "hour" else "%Y-%m-%d")


def _rate(found: DeviceActivity) -> float | None:
    return found.delivered / found.sent if found.sent else None


@page()
async def activity_page(request: Request, who: Visitor) -> Response:
    """Chart SMS in and out per bucket of the chosen range, and the phones' delivery rate."""
    choice = _choice(request, datetime.now(UTC).date())
    if isinstance(choice, str):
        return refused(request, choice, status=400)
    store = context(request).store
    buckets = await activity.activity(store, choice.since, choice.until, BUCKETS[choice.bucket])
    phones = await activity.device_activity(store, choice.since, choice.until)
    by = choice.bucket
    rows = [(_label(b, by), [b.received, b.sent, b.delivered, b.failed]) for b in buckets]
    totals = [sum(values[i] for _, values in rows) for i in range(len(SERIES))]
    rates = [(p.device, _rate(p)) for p in phones]
    return render(
        request,
        "activity.html",
        visitor=who,
        choice=choice,
        most_days=MOST_DAYS,
        series=SERIES,
        rows=rows,
        totals=totals,
        chart=grouped_bars(rows, SERIES),
        phones=[(p, rate) for p, (_, rate) in zip(phones, rates, strict=True)],
        rate_chart=percent_bars(rates) if phones else None,
    )
