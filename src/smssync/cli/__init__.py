"""The ``smssync`` command line: one click group, one module per family of commands."""

from __future__ import annotations

import click

from smssync import __version__


@click.group(context_settings={"show_default": True})
@click.version_option(__version__, prog_name="smssync")
def main() -> None:
    """Run the SMSsync server, manage devices and messages, or play the phone."""


def _register() -> None:
    # Imported here so that each family lives in its own module and registers itself.
    from smssync.cli import (
        alerts,
        api,
        backup,
        campaigns,
        devices,
        gateway,
        messages,
        operator,
        server,
        sim,
        users,
    )
    from smssync.cli.options import name_variables

    for module in (
        server,
        devices,
        messages,
        operator,
        alerts,
        campaigns,
        backup,
        gateway,
        sim,
        api,
        users,
    ):
        module.register(main)
    # Once every command is in place, so that no option is left without its variable.
    name_variables(main, "SMSSYNC")


_register()
