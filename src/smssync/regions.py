"""The default region: the country of numbers written without ``+country code``.

No country is assumed: the region comes from ``--default-region``, or from what the store
kept at its first run, or from the locale (``LANG=en_GB.UTF-8`` is GB); without any of
them, a number needs its ``+country code``. Whichever it is, it is said where numbers are
read (``serve``, ``device add``, ``send``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import phonenumbers

#: The locale variables that can name a country, in the order the C library reads them
#: for telephone numbers (LC_ALL overrides, LANG is the fallback).
LOCALE_VARIABLES = ("LC_ALL", "LC_TELEPHONE", "LC_ADDRESS", "LANG")


def known(region: str) -> bool:
    """Tell whether phone numbers can be read for this ISO 3166 alpha-2 code."""
    return region in phonenumbers.SUPPORTED_REGIONS


def locale_region(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Return the country of the locale and the variable it came from (``("GB",
    "LANG=en_GB.UTF-8")``); None for ``C``, ``POSIX`` or no locale."""
    for name in LOCALE_VARIABLES:
        value = environ.get(name, "")
        if not value:
            continue
        # language[_territory][.codeset][@modifier]: the first variable set decides, as in
        # setlocale(3), even when it names no territory (C.UTF-8).
        territory = value.split(".", 1)[0].split("@", 1)[0].partition("_")[2].upper()
        if known(territory):
            return territory, f"{name}={value}"
        return None
    return None


@dataclasses.dataclass(frozen=True)
class DefaultRegion:
    """The region in force, and where it came from, to be said to the operator."""

    #: ISO 3166 alpha-2, or "" when none is set: national numbers are then refused.
    code: str
    #: "the setting", "the store", "the locale (LANG=en_GB.UTF-8)" or "" for none.
    source: str
    #: The region the store kept before this command changed it, if it did.
    replaced: str = ""
    #: Whether this command set or changed the store's region.
    changed: bool = False

    def describe(self) -> str:
        """One line for a person: which country national numbers are read in, and why."""
        if not self.code:
            return (
                "default region: none, so numbers need their +country code"
                " (set one with --default-region, e.g. GB)"
            )
        line = f"default region: {self.code} ({_country(self.code)}), from {self.source}"
        if self.replaced:
            line += f", was {self.replaced}"
        return line


def _country(code: str) -> str:
    return f"+{phonenumbers.country_code_for_region(code)}"


def read_note(raw: str, region: str, number: str) -> str | None:
    """Say how a recipient written without a country code was read; None for E.164 input."""
    compact = raw.strip()
    if compact.startswith(("+", "00")) or compact == number:
        return None
    return f"read {raw.strip()!r} as a number of {region} (default region): {number}"
