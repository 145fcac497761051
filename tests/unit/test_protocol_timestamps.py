"""Timestamps: S-12 epoch/ISO, S-34 the App's en-US form, and the gateway's formatting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smssync.protocol.timestamps import (
    format_app_timestamp,
    parse_epoch_or_iso,
    parse_result_timestamp,
    to_epoch_ms,
)

EAT = timezone(timedelta(hours=3))
MOMENT = datetime(2017, 2, 21, 6, 36, 39, tzinfo=UTC)
zones = st.sampled_from(
    [UTC, EAT, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=14))]
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1487658999000", MOMENT),
        (" 1487658999000 ", MOMENT),
        ("1487658999", MOMENT),
        ("1487658999123", MOMENT + timedelta(milliseconds=123)),
        ("99999999999", datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=99999999999)),
        ("100000000000", datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2017-02-21T06:36:39Z", MOMENT),
        ("2017-02-21T09:36:39+03:00", MOMENT),
        ("2017-02-21 06:36:39", MOMENT),
    ],
)
def test_parse_epoch_or_iso(raw: str, expected: datetime) -> None:
    parsed = parse_epoch_or_iso(raw, UTC)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is UTC


def test_zone_less_iso_is_read_in_the_device_zone() -> None:
    assert parse_epoch_or_iso("2017-02-21T09:36:39", EAT) == MOMENT


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "garbage",
        "-1487658999000",
        "1487658999.5",
        "9223372036854775807",  # int64 max ms: far beyond year 9999
        "9223372036854775808",  # beyond 64 bits
        "9" * 5000,
        "١٤٨٧٦٥٨٩٩٩٠٠٠",  # non-ASCII digits are not "all digits"
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_parse_epoch_or_iso_refuses_without_raising(raw: str | None) -> None:
    assert parse_epoch_or_iso(raw, UTC) is None


@pytest.mark.parametrize(
    "raw",
    [
        "Feb 21, 2017 9:36:39 AM",
        "Feb 21, 2017, 9:36:39 AM",
        "Feb 21, 2017 9:36:39\u00a0AM",
        "Feb 21, 2017, 9:36:39\u202fAM",
        "feb 21, 2017 9:36:39 am",
        "February 21, 2017 9:36:39 AM",
        "2017-02-21T09:36:39",
        "1487658999000",
    ],
)
def test_parse_result_timestamp_forms(raw: str) -> None:
    assert parse_result_timestamp(raw, EAT) == MOMENT


def test_noon_and_midnight() -> None:
    noon = parse_result_timestamp("Mar 1, 2020 12:00:00 PM", UTC)
    midnight = parse_result_timestamp("Mar 1, 2020 12:00:00 AM", UTC)
    assert noon == datetime(2020, 3, 1, 12, tzinfo=UTC)
    assert midnight == datetime(2020, 3, 1, 0, tzinfo=UTC)
    assert parse_result_timestamp("Sept 1, 2020 1:02:03 PM", UTC) == datetime(
        2020, 9, 1, 13, 2, 3, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "Foo 21, 2017 3:36:40 PM",
        "Febx 21, 2017 3:36:40 PM",
        "Feb 30, 2017 3:36:40 PM",
        "Feb 21, 2017 13:36:40 PM",
        "Feb 21, 2017 0:36:40 AM",
        "Feb 21, 2017 3:36:40 PM trailing",
        "Feb 21 2017",
    ],
)
def test_parse_result_timestamp_refuses_without_raising(raw: str | None) -> None:
    assert parse_result_timestamp(raw, UTC) is None


def test_format_app_timestamp_example() -> None:
    assert format_app_timestamp(datetime(2017, 2, 21, 15, 36, 40, tzinfo=UTC), UTC) == (
        "Feb 21, 2017 3:36:40 PM"
    )
    assert format_app_timestamp(MOMENT, EAT) == "Feb 21, 2017 9:36:39 AM"
    assert format_app_timestamp(datetime(2017, 1, 5, 0, 5, 9, tzinfo=UTC), UTC) == (
        "Jan 5, 2017 12:05:09 AM"
    )


def test_naive_datetimes_are_utc_not_process_local() -> None:
    assert to_epoch_ms(datetime(2017, 2, 21, 6, 36, 39)) == "1487658999000"
    assert format_app_timestamp(datetime(2017, 2, 21, 6, 36, 39), EAT) == "Feb 21, 2017 9:36:39 AM"


def test_to_epoch_ms_example() -> None:
    assert to_epoch_ms(MOMENT + timedelta(microseconds=999)) == "1487658999000"
    assert to_epoch_ms(datetime(2017, 2, 21, 9, 36, 39, tzinfo=EAT)) == "1487658999000"


@given(
    moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1)),
    zone=zones,
)
def test_app_timestamp_round_trip(moment: datetime, zone: timezone) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    text = format_app_timestamp(moment, zone)
    assert parse_result_timestamp(text, zone) == moment
    # Newer Android writes a comma after the year and U+202F before AM/PM.
    newer = (
        re.sub(r"([0-9]{4}) ", r"\1, ", text).replace(" AM", "\u202fAM").replace(" PM", "\u202fPM")
    )
    assert parse_result_timestamp(newer, zone) == moment


@given(
    moment=st.datetimes(min_value=datetime(1974, 1, 1), max_value=datetime(9999, 12, 31)),
    zone=zones,
)
def test_epoch_ms_round_trip(moment: datetime, zone: timezone) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)
    text = to_epoch_ms(moment)
    assert len(text) >= 12
    assert parse_epoch_or_iso(text, zone) == moment
    assert parse_result_timestamp(text, zone) == moment


@given(st.text())
def test_parsers_never_raise(raw: str) -> None:
    for parse in (parse_epoch_or_iso, parse_result_timestamp):
        parsed = parse(raw, UTC)
        assert parsed is None or parsed.tzinfo is UTC
