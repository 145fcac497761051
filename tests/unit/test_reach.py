"""The address phones are given, and when it is one no phone can reach."""

from __future__ import annotations

import ipaddress

import pytest

from smssync import reach
from smssync.settings import Settings


def test_a_public_url_wins_over_the_address_served_on() -> None:
    assert reach.base_url("https://sms.example.org/", "0.0.0.0", 8080) == (
        "https://sms.example.org"
    )
    assert reach.base_url("", "192.168.1.5", 80) == "http://192.168.1.5:80"
    assert reach.base_url("", "fd00::5", 80) == "http://[fd00::5]:80"


def test_a_wildcard_becomes_the_lan_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reach, "lan_address", lambda: "10.1.2.3")
    for wildcard in ("0.0.0.0", "::"):
        assert reach.base_url("", wildcard, 8080) == "http://10.1.2.3:8080"
    monkeypatch.setattr(reach, "lan_address", lambda: None)
    assert reach.base_url("", "0.0.0.0", 8080) == "http://127.0.0.1:8080"
    warning = reach.loopback_warning("http://127.0.0.1:8080", "0.0.0.0")
    assert warning is not None and "no LAN address was found" in warning


def test_this_machines_lan_address_is_not_loopback() -> None:
    found = reach.lan_address()
    if found is not None:
        address = ipaddress.ip_address(found)
        assert address.version == 4 and not address.is_loopback and not address.is_unspecified


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://127.3.0.1", True),
        ("http://[::1]:8080", True),
        ("http://localhost:8080/x", True),
        ("https://app.localhost", True),
        ("http://192.168.1.5:8080", False),
        ("https://sms.example.org", False),
    ],
)
def test_loopback_urls(url: str, loopback: bool) -> None:
    assert reach.is_loopback(url) is loopback
    assert (reach.loopback_warning(url, "127.0.0.1") is not None) is loopback


def test_settings_warn_for_the_default_host_only() -> None:
    warning = Settings().reach_warning
    assert warning is not None and "--public-url" in warning and "127.0.0.1" in warning
    assert Settings(public_url="https://sms.example.org").reach_warning is None
    assert Settings(host="192.168.1.5").reach_warning is None
