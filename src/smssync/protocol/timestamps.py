"""SMSsync timestamps: epoch ms or s, ISO 8601, and the App's en-US locale form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: All digits and at least this is milliseconds, below it seconds (S-12).
MS_THRESHOLD = 10**11
_INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")
# Month names are matched here, not with strptime("%b"), which follows the process locale.
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = (
    "january february march april may june july august september october november december"
).split()
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# "Feb 21, 2017 3:36:40 PM", "Feb 21, 2017, 3:36:40 PM", U+00A0/U+202F before PM (all \s).
_APP_FORM = re.compile(
    r"([A-Za-z]+)\.?\s+([0-9]{1,2}),?\s+([0-9]{4}),?\s+([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:\s*([AaPp])\.?\s?[Mm]\.?)?"
)


def _as_utc(moment: datetime, zone: tzinfo) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def parse_epoch_or_iso(raw: str | None, zone: tzinfo) -> datetime | None:
    """Parse an E1 ``sent_timestamp`` (S-12): all digits and ≥ 10^11 is milliseconds, all
    digits below that is seconds, otherwise ISO 8601 (zone-less read in ``zone``). Returns an
    aware UTC datetime, or None when nothing parses or the value is out of range."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        if _DIGITS.fullmatch(text):
            # Length check first: int() of a huge digit string is slow or refused.
            if len(text) > 19 or int(text) > _INT64_MAX:
                return None
            value = int(text)
            if value >= MS_THRESHOLD:
                return _EPOCH + timedelta(milliseconds=value)
            return _EPOCH + timedelta(seconds=value)
        return _as_utc(datetime.fromisoformat(text), zone)
    except (ValueError, OverflowError):
        return None


def _parse_app_form(text: str, zone: tzinfo) -> datetime | None:
    match = _APP_FORM.fullmatch(text)
    if match is None:
        return None
    name, day, year, hour, minute, second, half = match.groups()
    name = name.lower()
    if len(name) < 3 or name[:3] not in _MONTHS:
        return None
    month = _MONTHS.index(name[:3]) + 1
    if not _MONTH_NAMES[month - 1].startswith(name):
        return None  # "Sept" and "September" pass; "Febx" does not
    hour_24 = int(hour)
    if half is not None:
        if not 1 <= hour_24 <= 12:
            return None
        hour_24 = hour_24 % 12 + (12 if half in "Pp" else 0)
    try:
        local = datetime(int(year), month, int(day), hour_24, int(minute), int(second))
        return _as_utc(local, zone)
    except (ValueError, OverflowError):
        return None


def parse_result_timestamp(raw: str | None, zone: tzinfo) -> datetime | None:
    """Parse an E7 timestamp (S-34): the App's ``MMM d, yyyy h:mm:ss a`` with or without a
    comma after the year and with space, U+00A0 or U+202F before AM/PM, ISO 8601, or epoch
    values as in S-12. Zone-less values are in ``zone``. Aware UTC, or None."""
    if raw is None:
        return None
    text = raw.strip()
    if text[:1].isalpha():
        return _parse_app_form(text, zone)
    return parse_epoch_or_iso(text, zone)


def format_app_timestamp(moment: datetime, zone: tzinfo) -> str:
    """Format like Gson's default Date form in ``zone``: ``Feb 21, 2017 3:36:40 PM``."""
    # A naive value is taken as UTC, never as the process's local time.
    local = _as_utc(moment, UTC).astimezone(zone)
    hour = local.hour % 12 or 12
    half = "PM" if local.hour >= 12 else "AM"
    return (
        f"{_MONTH_ABBR[local.month - 1]} {local.day}, {local.year} "
        f"{hour}:{local.minute:02d}:{local.second:02d} {half}"
    )


def to_epoch_ms(moment: datetime) -> str:
    """Return epoch milliseconds as a decimal string (the E1 ``sent_timestamp``)."""
    return str((_as_utc(moment, UTC) - _EPOCH) // timedelta(milliseconds=1))
