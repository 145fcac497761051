"""What the server-side commands share: settings as flags, the store, JSON output.

The environment follows one rule, which ``--help`` shows for every option:

- a setting (a field of ``Settings``) is ``SMSSYNC_<SETTING>``, the same for every
  command, so that ``export SMSSYNC_DATA_DIR=...`` points the server and the CLI at one
  store;
- a command's own option is ``SMSSYNC_<COMMAND>_<FLAG>``, e.g.
  ``SMSSYNC_MESSAGES_DIRECTION`` or ``SMSSYNC_DEVICE_ADD_SECRET``: a command's word may mean
  something else in another (``sim --port`` is not the server's port).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import annotated_types
import click
from pydantic.fields import FieldInfo

from smssync.errors import SmssyncError
from smssync.regions import DefaultRegion
from smssync.settings import Flag, Settings, flag_of, variable
from smssync.store import open_store, region, serverkey
from smssync.store.engine import Database
from smssync.store.files import private_dir

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _click_type(name: str, field: FieldInfo) -> click.ParamType[Any]:
    if field.annotation is Path:
        return click.Path(file_okay=False, path_type=Path)
    if field.annotation is str:
        return click.STRING
    if get_origin(field.annotation) is Literal:
        return click.Choice([str(choice) for choice in get_args(field.annotation)])
    if field.annotation is int:
        bounds: dict[str, Any] = {}
        for rule in field.metadata:
            if isinstance(rule, annotated_types.Ge):
                bounds["min"] = rule.ge
            elif isinstance(rule, annotated_types.Gt):
                bounds.update(min=rule.gt, min_open=True)
            elif isinstance(rule, annotated_types.Le):
                bounds["max"] = rule.le
            elif isinstance(rule, annotated_types.Lt):
                bounds.update(max=rule.lt, max_open=True)
        return click.IntRange(**bounds) if bounds else click.INT
    raise TypeError(f"Settings.{name}: no click type for {field.annotation!r}")


def _setting_option(name: str, field: FieldInfo) -> Callable[[F], F]:
    return click.option(
        "--" + name.replace("_", "-"),
        name,
        envvar=variable(name),
        show_envvar=True,
        type=_click_type(name, field),
        default=field.default,
        help=field.description,
    )


def setting_options(*flags: Flag) -> Callable[[F], F]:
    """Add a flag for each setting marked with one of ``flags``, in the model's order."""
    options = [
        _setting_option(name, field)
        for name, field in Settings.model_fields.items()
        if flag_of(name) in flags
    ]

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


#: The settings of every command that opens the store.
store_options = setting_options(Flag.STORE)
#: Every setting that has a flag, for ``smssync serve``.
serve_options = setting_options(Flag.STORE, Flag.SERVE)


def settings_from(params: dict[str, Any]) -> Settings:
    """Build Settings from a command's setting flags; the others from ``SMSSYNC_*``."""
    values = {k: v for k, v in params.items() if k in Settings.model_fields}
    try:
        return Settings.from_env(**values)
    except SmssyncError as exc:
        raise click.UsageError(exc.message) from None


def name_variables(command: click.Command, prefix: str) -> None:
    """Give each option without a variable ``<PREFIX>_<FLAG>``; show every one in --help."""
    for param in command.params:
        if not isinstance(param, click.Option) or param.is_eager or not param.expose_value:
            continue
        if not param.allow_from_autoenv:  # the option opts out, as in click
            continue
        if param.envvar is None:
            flag = max(param.opts, key=len).lstrip("-")
            param.envvar = f"{prefix}_{flag.upper().replace('-', '_')}"
        param.show_envvar = True
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            name_variables(sub, f"{prefix}_{name.upper().replace('-', '_')}")


def with_store(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """Open the store, run one action, close it; turn our errors into CLI errors."""

    async def run() -> T:
        private_dir(settings.data_dir)
        store = open_store(settings.store_url)
        await store.open()
        try:
            await serverkey.use_server_key(store, settings.data_dir, settings.server_key)
            found = await region.default_region(store, settings.default_region, os.environ)
            if found.changed:
                # The store now reads numbers otherwise: said once, when it changes.
                click.echo(f"smssync: {found.describe()}", err=True)
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except SmssyncError as exc:
        raise click.ClickException(exc.message) from None


def print_json(data: Any) -> None:
    """Print data as indented JSON, non-ASCII text as it is."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


async def store_region(store: Database, settings: Settings) -> DefaultRegion:
    """Return the default region in force for this store (``with_store`` has settled it)."""
    return await region.default_region(store, settings.default_region, os.environ)
