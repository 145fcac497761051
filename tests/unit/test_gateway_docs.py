"""docs/gateway.md lists every gateway and simulator command the CLI has."""

from __future__ import annotations

from pathlib import Path

import click

from smssync.cli import main

DOC = Path(__file__).parents[2] / "docs" / "gateway.md"


def commands(group: click.Group, prefix: str) -> list[str]:
    names = [prefix]
    for name, command in sorted(group.commands.items()):
        names.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            names += commands(command, f"{prefix} {name}")[1:]
    return names


def test_every_gateway_sim_and_demo_command_is_in_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Commands") : text.index("## Configuration")]
    assert isinstance(main, click.Group)
    gateway, sim = main.commands["gateway"], main.commands["sim"]
    assert isinstance(gateway, click.Group) and isinstance(sim, click.Group)
    wanted = [*commands(gateway, "smssync gateway"), *commands(sim, "smssync sim"), "smssync demo"]
    missing = [name for name in wanted if f"| `{name}" not in table]
    assert missing == []
    # No backend is "the only one" any more.
    assert "today: a" not in text and "devices.md" in text.split("## Try it")[0]
