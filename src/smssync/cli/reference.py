"""The CLI reference (docs/cli.md), generated from ``--help`` so it cannot drift."""

from __future__ import annotations

import click

from smssync.cli import main


def _walk(command: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    with click.Context(command, info_name=" ".join(path), terminal_width=100) as ctx:
        pages = [(path, command.get_help(ctx))]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            pages.extend(_walk(command.commands[name], (*path, name)))
    return pages


def render() -> str:
    """Return docs/cli.md: every command's help, in command order."""
    parts = [
        "# Command-line reference\n",
        "Generated from `--help` by `python -m smssync.cli.reference > docs/cli.md`;"
        " a test fails when it is out of date.\n",
    ]
    for path, text in _walk(main, ("smssync",)):
        parts.append(f"## `{' '.join(path)}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    click.echo(render(), nl=False)
