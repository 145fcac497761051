"""The default region: from the locale, described, and a number read with it said so."""

from __future__ import annotations

import pytest

from smssync.addresses import normalize, normalize_recipient
from smssync.errors import ConfigError
from smssync.regions import DefaultRegion, locale_region, read_note
from smssync.settings import Settings


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "en_GB.UTF-8"}, ("GB", "LANG=en_GB.UTF-8")),
        ({"LANG": "sw_KE"}, ("KE", "LANG=sw_KE")),
        ({"LANG": "de_DE.UTF-8@euro"}, ("DE", "LANG=de_DE.UTF-8@euro")),
        ({"LC_ALL": "fr_FR.UTF-8", "LANG": "en_GB.UTF-8"}, ("FR", "LC_ALL=fr_FR.UTF-8")),
        ({"LC_TELEPHONE": "en_US.UTF-8", "LANG": "C.UTF-8"}, ("US", "LC_TELEPHONE=en_US.UTF-8")),
        ({"LANG": "C.UTF-8"}, None),
        ({"LANG": "POSIX"}, None),
        ({"LC_ALL": "C", "LANG": "en_GB.UTF-8"}, None),  # LC_ALL decides, as in setlocale
        ({"LANG": "en_ZZ.UTF-8"}, None),
        ({}, None),
    ],
)
def test_the_locale_names_a_country(
    environ: dict[str, str], expected: tuple[str, str] | None
) -> None:
    assert locale_region(environ) == expected


def test_the_region_is_described_with_its_source() -> None:
    assert DefaultRegion("GB", "the store").describe() == (
        "default region: GB (+44), from the store"
    )
    changed = DefaultRegion("KE", "the setting", replaced="GB", changed=True)
    assert changed.describe().endswith("from the setting, was GB")
    assert "need their +country code" in DefaultRegion("", "").describe()


def test_a_number_read_with_the_region_says_so() -> None:
    number = normalize_recipient("020 7946 0958", "GB")
    assert number == "+442079460958"
    assert read_note("020 7946 0958", "GB", number) == (
        "read '020 7946 0958' as a number of GB (default region): +442079460958"
    )
    assert read_note("+44 20 7946 0958", "GB", "+442079460958") is None
    assert read_note("0044 20 7946 0958", "GB", "+442079460958") is None
    assert read_note("22141", "GB", "22141") is None


def test_without_a_region_only_full_numbers_and_short_codes_are_read() -> None:
    with pytest.raises(ValueError, match="no default region"):
        normalize_recipient("020 7946 0958", "")
    assert normalize_recipient("+44 20 7946 0958", "") == "+442079460958"
    assert normalize_recipient("22141", "") == "22141"
    # An incoming sender is kept as it came rather than given a country.
    assert normalize("020 7946 0958", "") == "02079460958"


def test_the_setting_is_a_known_country() -> None:
    assert Settings().default_region == ""
    assert Settings(default_region=" gb ").default_region == "GB"
    with pytest.raises(ConfigError, match="default_region"):
        Settings.from_env(default_region="XX")
