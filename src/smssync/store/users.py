"""Dashboard users: names, roles and password hashes (hashing itself is the caller's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from smssync.errors import Conflict, NotFound
from smssync.records import Role, User
from smssync.store import dialects
from smssync.store.engine import reads, writes
from smssync.store.rows import RowMap, from_us, to_us
from smssync.store.schema import users


def _user_of(row: RowMap) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        password_hash=row["password_hash"],
        created_at=from_us(row["created_at"]),
        password_changed_at=from_us(row["password_changed_at"]),
    )


def _insert(conn: Connection, name: str, role: Role, password_hash: str, now: datetime) -> User:
    values = {
        "name": name,
        "role": role.value,
        "password_hash": password_hash,
        "created_at": to_us(now),
        "password_changed_at": to_us(now),
    }
    try:
        row = conn.execute(users.insert().values(values).returning(*users.c)).one()
    except IntegrityError as exc:
        raise Conflict(f"a user named {name!r} exists") from exc
    return _user_of(row._mapping)


@writes
def add_user(conn: Connection, name: str, role: Role, password_hash: str, now: datetime) -> User:
    """Insert a user; Conflict when the name is taken."""
    return _insert(conn, name, role, password_hash, now)


@writes
def add_first_user(
    conn: Connection, name: str, role: Role, password_hash: str, now: datetime
) -> User | None:
    """Insert a user only while there is none (a new data directory); None otherwise."""
    if conn.execute(select(func.count()).select_from(users)).scalar_one():
        return None
    return _insert(conn, name, role, password_hash, now)


@reads
def list_users(conn: Connection, after: str | None = None, limit: int | None = None) -> list[User]:
    """Return users by name, those after ``after`` when given (a page: the name's index)."""
    query = select(users).order_by(users.c.name).limit(limit)
    if after is not None:
        query = query.where(users.c.name > after)
    return [_user_of(r._mapping) for r in conn.execute(query)]


@reads
def user_by_name(conn: Connection, name: str) -> User | None:
    """Return the user with this name, or None."""
    row = conn.execute(select(users).where(users.c.name == name)).one_or_none()
    return None if row is None else _user_of(row._mapping)


@reads
def user_by_id(conn: Connection, user_id: int) -> User | None:
    """Return the user with this id, or None (a session's user may have been removed)."""
    row = conn.execute(select(users).where(users.c.id == user_id)).one_or_none()
    return None if row is None else _user_of(row._mapping)


@writes
def remove_user(conn: Connection, name: str) -> None:
    """Delete a user; their sessions end with them. NotFound; Conflict for the last admin,
    without whom nobody could manage users again."""
    found = conn.execute(select(users.c.role).where(users.c.name == name)).one_or_none()
    if found is None:
        raise NotFound(f"no user named {name!r}")
    if found.role == Role.ADMIN.value:
        # Locked, so two admins removing each other at once on PostgreSQL cannot both see
        # the other still there: the second waits, then counts one admin (SQLite's single
        # writer runs the two one after the other anyway).
        admins = select(users.c.id).where(users.c.role == Role.ADMIN.value)
        if len(conn.execute(dialects.for_update(conn, admins)).all()) <= 1:
            raise Conflict(f"{name!r} is the last admin: make another admin first")
    conn.execute(delete(users).where(users.c.name == name))


@writes
def set_password(conn: Connection, name: str, password_hash: str, now: datetime) -> User:
    """Replace a user's password hash, voiding every session made before; NotFound."""
    row = conn.execute(
        update(users)
        .where(users.c.name == name)
        .values(password_hash=password_hash, password_changed_at=to_us(now))
        .returning(*users.c)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return _user_of(row._mapping)
