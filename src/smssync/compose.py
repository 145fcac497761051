"""Composing a bulk send, without I/O: a template's ``{placeholders}`` filled from CSV rows,
numbers normalised, the counters a person sees while typing, and the daily send window.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import re
import string
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time, timedelta

import phonenumbers
from phonenumbers import timezone as number_zones

from smssync.addresses import normalize_recipient
from smssync.gsm.segments import Encoding, encoding_for, split
from smssync.records import NewCampaign, NewRecipient, SendWindow

#: Column names that hold the recipient's number, in order of preference (lower case).
NUMBER_COLUMNS = ("to", "number", "phone", "mobile", "msisdn", "phone_number")
#: What one phone sends a minute at Android's default pacing.
PHONE_SMS_PER_MINUTE = 30
_HHMM = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
_FIELD = re.compile(r"^[^.\[\]!:{}]+$")


@dataclasses.dataclass(frozen=True)
class TextStats:
    """The counters of one text: what the compose box shows."""

    characters: int
    encoding: Encoding
    segments: int


def text_stats(text: str) -> TextStats:
    """Count a text's characters, pick its encoding and count its SMS parts."""
    return TextStats(len(text), encoding_for(text), len(split(text)))


def placeholders(template: str) -> list[str]:
    """Return the template's ``{names}`` in order, once each; ValueError for ``{a.b}``,
    ``{0!r}``, ``{x:>5}``, an empty ``{}`` or an unmatched brace (``{{`` is a literal)."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.strip() or spec or conversion or not _FIELD.match(name):
            raise ValueError(f"template: {{{name}}} is not a plain {{column}} placeholder")
        if name.strip() not in names:
            names.append(name.strip())
    return names


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill the template's placeholders from ``values``; ValueError naming a missing one."""
    out: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        key = name.strip()
        if key not in values:
            raise ValueError(f"no value for {{{key}}}")
        out.append(values[key])
    return "".join(out)


def read_csv(text: str) -> list[dict[str, str]]:
    """Return the rows of a CSV text with a header line, as dicts by column name."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        raise ValueError("the CSV has no header line")
    rows: list[dict[str, str]] = []
    for row in reader:
        if None in row:
            raise ValueError(f"CSV line {reader.line_num} has more fields than the header")
        rows.append({k.strip(): (v or "").strip() for k, v in row.items() if k is not None})
    return rows


def number_column(columns: Iterable[str]) -> str:
    """Pick the column that holds the number (``to``, ``number``, ``phone``…)."""
    by_lower = {c.lower(): c for c in columns}
    for wanted in NUMBER_COLUMNS:
        if wanted in by_lower:
            return by_lower[wanted]
    raise ValueError(f"no number column: name one of {', '.join(NUMBER_COLUMNS)}")


def zone_of(number: str) -> str | None:
    """Return the zones of an E.164 number's area joined by ``|``; None when unknown."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in number_zones.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    return "|".join(sorted(zones)) or None


def recipients(
    template: str, rows: Sequence[Mapping[str, str]], region: str, column: str | None = None
) -> list[NewRecipient]:
    """Render the template for each row and normalise its number; a row whose number is
    not one, or that lacks a placeholder's value, is kept with its error, never dropped."""
    wanted = placeholders(template)
    if rows and column is None:
        column = number_column(rows[0].keys())
    found: list[NewRecipient] = []
    for row in rows:
        raw = row.get(column or "to", "")
        try:
            number = normalize_recipient(raw, region)
        except ValueError as exc:
            found.append(NewRecipient(raw, None, None, 0, None, str(exc)))
            continue
        missing = [name for name in wanted if not row.get(name)]
        if missing:
            error = "no value for " + ", ".join(f"{{{name}}}" for name in missing)
            found.append(NewRecipient(raw, number, None, 0, None, error))
            continue
        content = render(template, row)
        found.append(NewRecipient(raw, number, content, len(split(content)), zone_of(number)))
    return found


def parse_window(text: str, tz: str | None = None) -> SendWindow:
    """Read ``HH:MM-HH:MM`` (a window may cross midnight); ValueError otherwise."""
    start, sep, end = text.partition("-")
    if not sep or not _HHMM.match(start.strip()) or not _HHMM.match(end.strip()):
        raise ValueError(f"{text!r} is not a window such as 08:00-20:00")
    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{tz!r} is not a time zone") from None
    window = SendWindow(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()), tz)
    if window.start == window.end:
        raise ValueError("the window's start and end are the same")
    return window


def _inside(window: SendWindow, local: time) -> bool:
    if window.start < window.end:
        return window.start <= local < window.end
    return local >= window.start or local < window.end


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    # A zone that phonenumbers knows and this machine's tzdata does not is judged in UTC,
    # rather than stopping every campaign's release.
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def window_open(window: SendWindow | None, zone: str | None, now: datetime, ahead_s: int) -> bool:
    """Tell whether the window is open now and still open ``ahead_s`` seconds later in
    every zone of the recipient (the campaign's zone when it has one; UTC when a number's
    zone is unknown), so nothing released now reaches anyone outside it."""
    if window is None:
        return True
    zones = [window.tz] if window.tz else (zone.split("|") if zone else ["UTC"])
    later = now + timedelta(seconds=ahead_s)
    for name in zones:
        tz = _zone(name)
        for moment in (now, later):
            if not _inside(window, moment.astimezone(tz).time().replace(tzinfo=None)):
                return False
    return True


def estimate_minutes(segments: int, per_minute: int) -> int:
    """Minutes the fleet needs for ``segments`` at its pacing (segments a minute)."""
    return math.ceil(segments / max(per_minute, 1))


@dataclasses.dataclass(frozen=True)
class Plan:
    """A bulk send worked out before anything is stored: what a compose page previews."""

    campaign: NewCampaign
    #: The template's own counters.
    stats: TextStats
    #: The first rendered messages.
    preview: tuple[NewRecipient, ...]
    #: Recipients that will not be sent, with their position in the input.
    invalid: tuple[tuple[int, NewRecipient], ...]
    #: Segments of every message to send.
    segments: int


#: The error of a recipient skipped for being on the opt-out list.
OPTED_OUT = "on the opt-out list"


def plan(
    name: str,
    template: str,
    rows: Sequence[Mapping[str, str]],
    region: str,
    *,
    column: str | None = None,
    device: str | None = None,
    window: SendWindow | None = None,
    api_key_id: int | None = None,
    preview: int = 5,
) -> Plan:
    """Render and check a bulk send; ValueError for a bad template or number column."""
    found = recipients(template, rows, region, column)
    campaign = NewCampaign(name, template, region, tuple(found), device, window, api_key_id)
    return plan_of(campaign, preview)


def plan_of(campaign: NewCampaign, preview: int = 5) -> Plan:
    """Count and preview a campaign's recipients."""
    found = campaign.recipients
    good = [r for r in found if r.content is not None and r.to_addr is not None]
    return Plan(
        campaign=campaign,
        stats=text_stats(campaign.template),
        preview=tuple(good[:preview]),
        invalid=tuple((i, r) for i, r in enumerate(found) if r.content is None),
        segments=sum(r.segments for r in good),
    )


def without(plan: Plan, opted_out: Iterable[str], preview: int = 5) -> Plan:
    """Return the plan with the numbers on the opt-out list skipped (and listed as such)."""
    blocked = set(opted_out)
    if not blocked:
        return plan
    kept = tuple(
        dataclasses.replace(r, content=None, segments=0, error=OPTED_OUT)
        if r.to_addr in blocked and r.content is not None
        else r
        for r in plan.campaign.recipients
    )
    return plan_of(dataclasses.replace(plan.campaign, recipients=kept), preview)
