"""Every command has --help; every option of the server commands is an SMSSYNC_ variable."""

from __future__ import annotations

import dataclasses

import click
from click.testing import CliRunner

from smssync.cli import main
from smssync.settings import Flag, Settings, flag_of


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


def options(command: click.Command, path: tuple[str, ...] = ()) -> list[Option]:
    found = [
        Option(path, param)
        for param in command.params
        if isinstance(param, click.Option) and not param.is_eager and param.expose_value
    ]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found.extend(options(sub, (*path, name)))
    return found


@dataclasses.dataclass(frozen=True)
class Option:
    path: tuple[str, ...]
    param: click.Option

    @property
    def flag(self) -> str:
        return max(self.param.opts, key=len).lstrip("-").upper().replace("-", "_")


def test_every_option_has_its_variable_by_the_rule() -> None:
    """A setting is SMSSYNC_<SETTING> everywhere; a command's option SMSSYNC_<COMMAND>_<FLAG>."""
    for option in options(main):
        param = option.param
        if not param.allow_from_autoenv:  # sim's sub-commands: the group's --port reads it
            assert param.envvar is None
            continue
        assert param.show_envvar, option
        if param.name in Settings.model_fields and option.path[0] != "sim":
            assert param.envvar == f"SMSSYNC_{option.flag}", option
            continue
        # The command's own name, or its family's for an option all of the family share.
        words = [name.upper().replace("-", "_") for name in option.path]
        prefixes = ["_".join(("SMSSYNC", *words[:n])) for n in (1, len(words))]
        assert param.envvar in [f"{p}_{option.flag}" for p in prefixes], option


def test_every_setting_but_the_server_key_is_a_flag_of_serve() -> None:
    serve = main.commands["serve"]
    flags = {p.name: p for p in serve.params if isinstance(p, click.Option)}
    for name, field in Settings.model_fields.items():
        if flag_of(name) is Flag.NONE:
            assert name not in flags
            continue
        option = flags[name]
        assert option.opts == ["--" + name.replace("_", "-")]
        assert option.default == field.default and option.help == field.description


def test_the_store_settings_are_flags_of_every_store_command() -> None:
    store = {n for n in Settings.model_fields if flag_of(n) is Flag.STORE}
    commands = [("migrate",), ("device", "add"), ("send",), ("messages",), ("apikey", "create")]
    for path in [*commands, ("webhook", "list")]:
        command: click.Command = main
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        assert store <= {p.name for p in command.params}, path


def test_a_setting_out_of_range_is_refused_before_anything_runs() -> None:
    result = CliRunner().invoke(main, ["serve", "--webhook-timeout-s", "0"])
    assert result.exit_code == 2 and "--webhook-timeout-s" in result.output
