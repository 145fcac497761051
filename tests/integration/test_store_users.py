"""Dashboard users in both stores: unique names, the first admin once, password changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smssync.errors import Conflict, NotFound
from smssync.records import Role
from smssync.store import users
from smssync.store.engine import Database

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


async def test_users_are_added_listed_by_name_and_removed(store: Database) -> None:
    await users.add_user(store, "zoe", Role.VIEWER, "hash-z", NOW)
    added = await users.add_user(store, "amy", Role.OPERATOR, "hash-a", NOW)
    assert added.role is Role.OPERATOR and added.password_changed_at == NOW
    assert [u.name for u in await users.list_users(store)] == ["amy", "zoe"]
    assert await users.user_by_id(store, added.id) == added
    with pytest.raises(Conflict):
        await users.add_user(store, "amy", Role.ADMIN, "other", NOW)
    await users.remove_user(store, "amy")
    assert await users.user_by_name(store, "amy") is None
    with pytest.raises(NotFound):
        await users.remove_user(store, "amy")


async def test_the_first_user_is_made_only_while_there_is_none(store: Database) -> None:
    first = await users.add_first_user(store, "admin", Role.ADMIN, "h1", NOW)
    assert first is not None and first.role is Role.ADMIN
    assert await users.add_first_user(store, "admin2", Role.ADMIN, "h2", NOW) is None
    assert [u.name for u in await users.list_users(store)] == ["admin"]


async def test_set_password_replaces_the_hash_and_moves_the_change_time(store: Database) -> None:
    await users.add_user(store, "amy", Role.OPERATOR, "old", NOW)
    later = NOW + timedelta(minutes=5)
    changed = await users.set_password(store, "amy", "new", later)
    assert changed.password_hash == "new" and changed.password_changed_at == later
    with pytest.raises(NotFound):
        await users.set_password(store, "nobody", "x", later)


def test_roles_include_the_ones_below() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)


async def test_the_last_admin_is_never_removed(store: Database) -> None:
    await users.add_user(store, "root", Role.ADMIN, "h", NOW)
    await users.add_user(store, "ada", Role.ADMIN, "h", NOW)
    await users.add_user(store, "vic", Role.VIEWER, "h", NOW)
    await users.remove_user(store, "ada")
    with pytest.raises(Conflict, match="last admin"):
        await users.remove_user(store, "root")
    await users.remove_user(store, "vic")
    assert [u.name for u in await users.list_users(store)] == ["root"]


async def test_users_are_listed_a_page_at_a_time_by_name(store: Database) -> None:
    for name in ("cy", "amy", "bob"):
        await users.add_user(store, name, Role.VIEWER, "h", NOW)
    assert [u.name for u in await users.list_users(store, limit=2)] == ["amy", "bob"]
    assert [u.name for u in await users.list_users(store, after="bob", limit=2)] == ["cy"]
