"""Filters (G-9), lists (G-10), query-code texts (§4.2) and the retry policy (G-8)."""

from __future__ import annotations

import random

import pytest

from smssync.gateway.backoff import retry_delay_s
from smssync.gateway.config import ForwardConfig, parse_config
from smssync.gateway.routing import normalize_sender, passes_filter, query_answer, route

BASE = '[[sync_urls]]\ntitle = "a"\nurl = "http://a/"\n'


def test_numbers_and_names_are_normalised_for_lists() -> None:
    assert normalize_sender("0712 345-678", "KE") == "+254712345678"
    assert normalize_sender("00254712345678", "KE") == "+254712345678"
    assert normalize_sender("  M-PESA ", "KE") == "m-pesa"


def test_blacklist_wins_over_whitelist() -> None:
    config = parse_config(
        '[lists]\nwhitelist = ["+254712345678"]\nblacklist = ["0712345678"]\n' + BASE
    )
    assert route("+254712345678", "x", config).routes == {"a": "dropped"}


def test_empty_keywords_pass_everything_and_blank_ones_are_ignored() -> None:
    config = parse_config(BASE + 'keywords = ["  ", ""]\n')
    assert passes_filter("anything", config.sync_urls[0])


def test_query_codes_only_for_listed_senders() -> None:
    config = parse_config('[query_codes]\nsenders = ["0712345678"]\n' + BASE)
    assert route("+254712345678", " @10 ", config).query_code == "@10"
    other = route("+254799999999", "@10", config)
    assert other.query_code is None and other.routes == {"a": "pending"}


def test_query_answer_texts() -> None:
    probes = [("a", 200), ("b", None)]
    assert query_answer("@10", probes, 50) == "Cell reception ok"
    assert query_answer("@20", probes, 50) == (
        "Server a responded with 200 status code \nCannot reach server b \n"
    )
    assert query_answer("@30", probes, None) == "Battery level is at -1"


@pytest.mark.parametrize("attempts", range(1, 20))
def test_retry_delay_is_exponential_jittered_and_capped(attempts: int) -> None:
    policy = ForwardConfig()
    full = min(3600.0, 30.0 * 2 ** (attempts - 1))
    delay = retry_delay_s(attempts, policy, random.Random(attempts))
    assert full / 2 <= delay <= full
