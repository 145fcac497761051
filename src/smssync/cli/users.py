"""User commands: the people who sign in to the dashboard (add, list, remove, set-password)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from smssync.cli.options import print_json, settings_from, store_options, with_store
from smssync.cli.tables import print_table
from smssync.dashboard.passwords import hash_password, password_problem
from smssync.records import Role, User
from smssync.serialize import user_json
from smssync.store import users as users_store
from smssync.store.engine import Database


def register(group: click.Group) -> None:
    """Add the user commands."""
    group.add_command(user)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        # One line, as `echo pw | smssync user add …` or a secret manager gives it.
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="password")
    return password


_STDIN = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


@click.group()
def user() -> None:
    """Manage who may sign in to the dashboard, and with which role."""


@user.command("add")
@store_options
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    required=True,
    help="viewer reads; operator also sends; admin also manages phones and users.",
)
@_STDIN
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_add(name: str, role: str, password_stdin: bool, as_json: bool, **params: Any) -> None:
    """Add a dashboard user (the password is prompted for, or read with --password-stdin)."""
    settings = settings_from(params)
    if not name.strip() or len(name) > 100:
        raise click.BadParameter("a name has 1 to 100 characters", param_hint="NAME")
    hashed = hash_password(_password(password_stdin))

    async def add(store: Database) -> User:
        return await users_store.add_user(store, name, Role(role), hashed, datetime.now(UTC))

    added = with_store(settings, add)
    if as_json:
        print_json(user_json(added))
    else:
        click.echo(f"added {added.name} ({added.role.value})")


@user.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_list(as_json: bool, **params: Any) -> None:
    """List dashboard users and their roles."""
    found = with_store(settings_from(params), users_store.list_users)
    rows = [user_json(u) for u in found]
    if as_json:
        print_json(rows)
        return
    print_table(
        ["name", "role", "created", "password changed"],
        ([r["name"], r["role"], r["created_at"], r["password_changed_at"]] for r in rows),
    )


@user.command("remove")
@store_options
@click.argument("name")
def user_remove(name: str, **params: Any) -> None:
    """Remove a dashboard user (never the last admin); their sessions end at their next
    request."""

    async def remove(store: Database) -> None:
        await users_store.remove_user(store, name)

    with_store(settings_from(params), remove)
    click.echo(f"removed {name}")


@user.command("set-password")
@store_options
@click.argument("name")
@_STDIN
def user_set_password(name: str, password_stdin: bool, **params: Any) -> None:
    """Give a user a new password; every browser signed in as them is signed out."""
    settings = settings_from(params)
    hashed = hash_password(_password(password_stdin))

    async def change(store: Database) -> User:
        return await users_store.set_password(store, name, hashed, datetime.now(UTC))

    with_store(settings, change)
    click.echo(f"password of {name} changed")
