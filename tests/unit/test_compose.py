"""Composing a bulk send: placeholders, CSV rows, counters, zones and the daily window."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from smssync import compose
from smssync.records import SendWindow


def test_placeholders_are_plain_column_names() -> None:
    assert compose.placeholders("Hi {name}, {first name} {name} {{literal}}") == [
        "name",
        "first name",
    ]
    for bad in ("{a.b}", "{0!r}", "{x:>5}", "{}", "{open", "close}"):
        with pytest.raises(ValueError):
            compose.placeholders(bad)
    assert compose.render("Hi {name} {{x}}", {"name": "Ann"}) == "Hi Ann {x}"
    with pytest.raises(ValueError, match=r"no value for \{name\}"):
        compose.render("Hi {name}", {})


def test_csv_rows_and_the_number_column() -> None:
    rows = compose.read_csv("\ufeffPhone , name\n0700000001, Ann \n")
    assert rows == [{"Phone": "0700000001", "name": "Ann"}]
    assert compose.number_column(rows[0]) == "Phone"
    with pytest.raises(ValueError, match="no number column"):
        compose.number_column(["name"])
    with pytest.raises(ValueError, match="more fields"):
        compose.read_csv("to\n1,2\n")
    with pytest.raises(ValueError, match="header"):
        compose.read_csv("")


def test_counters_follow_the_gsm_alphabet() -> None:
    assert compose.text_stats("hello") == compose.TextStats(5, "gsm7", 1)
    assert compose.text_stats("x" * 161) == compose.TextStats(161, "gsm7", 2)
    assert compose.text_stats("Привет") == compose.TextStats(6, "ucs2", 1)
    assert compose.estimate_minutes(61, 30) == 3
    assert compose.estimate_minutes(61, 60) == 2
    assert compose.estimate_minutes(1, 0) == 1


def test_zones_of_numbers() -> None:
    assert compose.zone_of("+254700000001") == "Africa/Nairobi"
    assert compose.zone_of("+12125550100") == "America/New_York"
    assert compose.zone_of("+15555550100") is None


def test_the_window_in_the_recipients_zone_and_across_midnight() -> None:
    day = compose.parse_window("08:00-20:00")
    noon_utc = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert compose.window_open(day, "Africa/Nairobi", noon_utc, 0)  # 15:00 there
    assert not compose.window_open(day, "America/New_York", noon_utc, 0)  # 07:00 there
    # A number of two zones must be inside the window in both.
    assert not compose.window_open(day, "Africa/Nairobi|America/New_York", noon_utc, 0)
    assert compose.window_open(day, None, noon_utc, 0)  # unknown: UTC
    assert compose.window_open(None, None, noon_utc, 0)
    night = SendWindow(time(22), time(6), "UTC")
    assert compose.window_open(night, "Africa/Nairobi", datetime(2030, 1, 1, 23, tzinfo=UTC), 0)
    assert not compose.window_open(night, None, noon_utc, 0)
    # Open now, closed two minutes on.
    assert not compose.window_open(day, None, datetime(2030, 1, 1, 19, 59, tzinfo=UTC), 120)
    assert compose.window_open(day, "Nowhere/Atlantis", noon_utc, 0)
    for bad in ("8-20", "08:00", "25:00-26:00", "08:00-08:00"):
        with pytest.raises(ValueError):
            compose.parse_window(bad)
    with pytest.raises(ValueError, match="time zone"):
        compose.parse_window("08:00-20:00", "Mars/Base")


def test_a_plan_lists_what_it_will_not_send() -> None:
    rows = [{"to": "0700000001", "n": "A"}, {"to": "x", "n": "B"}, {"to": "0700000002", "n": ""}]
    plan = compose.plan("c", "Hi {n}", rows, "KE")
    assert [(r.to_addr, r.content) for r in plan.preview] == [("+254700000001", "Hi A")]
    assert [(i, r.error) for i, r in plan.invalid] == [
        (1, "'x' is not a phone number"),
        (2, "no value for {n}"),
    ]
    assert plan.segments == 1
    skipped = compose.without(plan, {"+254700000001"})
    assert (skipped.segments, skipped.preview) == (0, ())
    assert skipped.invalid[0] == (0, skipped.campaign.recipients[0])
    assert skipped.campaign.recipients[0].error == compose.OPTED_OUT
