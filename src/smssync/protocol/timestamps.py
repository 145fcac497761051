"""SMSsync timestamps: epoch ms or s, ISO 8601, and the App's en-US locale form."""

from __future__ import annotations

from datetime import datetime, tzinfo


def parse_epoch_or_iso(raw: str | None, zone: tzinfo) -> datetime | None:
    """Parse an E1 ``sent_timestamp`` (S-12): all digits and ≥ 10^11 is milliseconds, all
    digits below that is seconds, otherwise ISO 8601 (zone-less read in ``zone``). Returns an
    aware UTC datetime, or None when nothing parses or the value is out of range."""
    raise NotImplementedError


def parse_result_timestamp(raw: str | None, zone: tzinfo) -> datetime | None:
    """Parse an E7 timestamp (S-34): the App's ``MMM d, yyyy h:mm:ss a`` with or without a
    comma after the year and with space, U+00A0 or U+202F before AM/PM, ISO 8601, or epoch
    values as in S-12. Zone-less values are in ``zone``. Aware UTC, or None."""
    raise NotImplementedError


def format_app_timestamp(moment: datetime, zone: tzinfo) -> str:
    """Format like Gson's default Date form in ``zone``: ``Feb 21, 2017 3:36:40 PM``."""
    raise NotImplementedError


def to_epoch_ms(moment: datetime) -> str:
    """Return epoch milliseconds as a decimal string (the E1 ``sent_timestamp``)."""
    raise NotImplementedError
