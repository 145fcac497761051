"""Docs that cannot drift: the CLI reference and the settings."""

from __future__ import annotations

from pathlib import Path

from smssync.cli.reference import render
from smssync.settings import Flag, Settings, flag_of, variable

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_current() -> None:
    current = (DOCS / "cli.md").read_text()
    assert current == render(), "run: python -m smssync.cli.reference > docs/cli.md"


def test_every_server_setting_has_a_documented_variable() -> None:
    text = (DOCS / "cli.md").read_text() + (DOCS / "configuration.md").read_text()
    missing = [variable(name) for name in Settings.model_fields if variable(name) not in text]
    assert missing == []


def expected_row(name: str) -> tuple[str, str, str]:
    """Return the variable, flag and default cells that docs/configuration.md must show."""
    flag = "`--" + name.replace("_", "-") + "`"
    kind = flag_of(name)
    flag_cell = {Flag.STORE: flag, Flag.SERVE: f"{flag} (serve)"}.get(kind, "—")
    default = Settings.model_fields[name].default
    default_cell = f"`{default}`" if str(default) else "empty"
    return f"`{variable(name)}`", flag_cell, default_cell


def test_the_settings_table_is_the_model() -> None:
    rows = []
    for line in (DOCS / "configuration.md").read_text().splitlines():
        if line.startswith("| `SMSSYNC_"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            # The flag cell may say why a setting has none: "— (environment only: ...)".
            flag_cell = cells[1].split(" (environment")[0]
            rows.append((cells[0], flag_cell, cells[2]))
    assert rows == [expected_row(name) for name in Settings.model_fields]
