"""Every command has --help; every option of the server commands is an SMSSYNC_ variable."""

from __future__ import annotations

import click
from click.testing import CliRunner

from smssync.cli import main


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(commands(command, path))
    return found


def test_every_command_has_help() -> None:
    runner = CliRunner()
    paths = commands(main)
    for required in [("serve",), ("device", "add"), ("device", "list"), ("send",), ("messages",)]:
        assert required in paths
    for path in paths:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_store_flags_show_their_variables() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    for variable in (
        "SMSSYNC_DATA_DIR",
        "SMSSYNC_DATABASE_URL",
        "SMSSYNC_PUBLIC_URL",
        "SMSSYNC_PORT",
        "SMSSYNC_WORKERS",
    ):
        assert variable in result.output
