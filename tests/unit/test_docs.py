"""Docs that cannot drift: the CLI reference and the settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from smssync.cli.reference import render
from smssync.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_current() -> None:
    current = (DOCS / "cli.md").read_text()
    assert current == render(), "run: python -m smssync.cli.reference > docs/cli.md"


def test_every_server_setting_has_a_documented_variable() -> None:
    text = (DOCS / "cli.md").read_text() + (DOCS / "configuration.md").read_text()
    missing = [
        f"SMSSYNC_{f.name.upper()}"
        for f in dataclasses.fields(Settings)
        if f"SMSSYNC_{f.name.upper()}" not in text
    ]
    assert missing == []
