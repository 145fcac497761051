"""Status-report matching, error-code mapping and AT reply parsing (no device)."""

from __future__ import annotations

from smssync.backends.at.replies import (
    battery_from_cbc,
    level_for_dbm,
    signal_from_cesq,
    signal_from_csq,
)
from smssync.backends.at.reports import ReportBook, sent_code_for_error


def test_cms_and_cme_errors_map_to_smssync_sent_codes() -> None:
    assert sent_code_for_error("CMS", 304) == 3
    assert sent_code_for_error("CMS", 331) == 4
    assert sent_code_for_error("CME", 30) == 4
    assert sent_code_for_error("CMS", 330) == 1
    assert sent_code_for_error("", None) == 1


def test_one_report_per_part_and_failure_wins() -> None:
    book = ReportBook(window_s=600)
    ref = book.add("+254700000002", [7, 8], now=0)
    assert book.report(7, "0700000002", 0x00, now=1) is None  # national form matches too
    assert book.report(8, "+254700000002", 0x20, now=2) is None  # temporary: keep waiting
    assert book.report(8, "+254700000002", 0x00, now=3) == (ref, -1)
    other = book.add("+254700000003", [9, 10], now=4)
    assert book.report(9, "+254700000003", 0x41, now=5) == (other, 0)
    assert book.report(10, "+254700000003", 0x00, now=6) is None  # already settled


def test_mr_wrap_picks_the_most_recent_part_inside_the_window() -> None:
    book = ReportBook(window_s=600)
    book.add("+254700000002", [5], now=0)
    recent = book.add("+254700000002", [5], now=1000)
    assert book.report(5, "+254700000002", 0, now=1001) == (recent, -1)
    assert book.report(5, "+254700000002", 0, now=1002) is None  # the old one is out of window


def test_a_report_before_its_send_waits_as_an_orphan() -> None:
    book = ReportBook()
    assert book.report(3, "+254700000002", 0, now=0) is None
    ref = book.add("+254700000002", [3], now=1)
    assert book.retry_orphans(now=1) == [(ref, -1)]


def test_signal_and_battery_parsing() -> None:
    assert signal_from_csq(["+CSQ: 20,99"]) == -73
    assert signal_from_csq(["+CSQ: 99,99"]) is None
    assert signal_from_cesq(["+CESQ: 99,99,255,255,20,50"]) == -91
    assert signal_from_cesq(["+CESQ: 99,99,255,255,255,255"]) is None
    assert level_for_dbm(-73, lte=False) == 4 and level_for_dbm(-120, lte=False) == 0
    assert battery_from_cbc(["+CBC: 1,55,3900"]) == (55, True)
    assert battery_from_cbc(["+CBC: 0,0"]) == (0, False)
    assert battery_from_cbc(["+CBC: 9,500"]) is None
