"""The key behind every credential hash, kept outside the database (issue 14, finding 9).

With the database and the key together, a human-chosen secret falls to a wordlist offline;
with the database alone it does not. The key comes from ``SMSSYNC_SERVER_KEY`` or from
``server.key`` in the data folder (created 0600 on first start). The database keeps only a
check value, an HMAC of a constant, so that a server given another key refuses to start
instead of answering every phone 403. A database from before keeps its key in ``meta``: the
first start writes it to the file and removes it from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from sqlalchemy import Connection, delete, select

from smssync.errors import ConfigError
from smssync.store import dialects
from smssync.store.engine import Database
from smssync.store.files import private_dir, private_file
from smssync.store.schema import meta

KEY_FILE = "server.key"
#: Bytes of a generated key, and the fewest a given one may have.
KEY_BYTES = 32
LEGACY = "server_key"
CHECK = "server_key_check"


def parse_key(text: str, where: str) -> bytes:
    """Decode a hex key of at least KEY_BYTES bytes; ConfigError naming ``where``."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: the server key must be hexadecimal") from None
    if len(key) < KEY_BYTES:
        raise ConfigError(f"{where}: the server key must have at least {KEY_BYTES} bytes")
    return key


def configured_key(data_dir: Path, given: str) -> bytes | None:
    """Return the key from the environment, else from the key file; None if neither."""
    if given:
        return parse_key(given, "SMSSYNC_SERVER_KEY")
    path = data_dir / KEY_FILE
    if not path.exists():
        return None
    private_file(path)
    return parse_key(path.read_text(), str(path))


def write_key_file(data_dir: Path, key: bytes) -> bytes:
    """Write a new key file, 0600 from the start, and return the key; when another process
    (a worker of ``serve --workers``) wrote one first, return that one instead."""
    private_dir(data_dir)
    path = data_dir / KEY_FILE
    draft = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(key.hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        # A hard link appears whole or not at all, and never replaces a key file.
        os.link(draft, path)
    except FileExistsError:
        return parse_key(path.read_text(), str(path))
    finally:
        draft.unlink(missing_ok=True)
    directory = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return key


def check_value(key: bytes) -> bytes:
    """Return what the database keeps to recognise its key: it reveals nothing of the key."""
    return hmac.new(key, b"smssync server key check", hashlib.sha256).digest()


def legacy_key(conn: Connection) -> bytes | None:
    """Return a key still kept in the database by a version before this one."""
    value: bytes | None = conn.execute(
        select(meta.c.value).where(meta.c.key == LEGACY)
    ).scalar_one_or_none()
    return value


def adopt(conn: Connection, key: bytes) -> None:
    """Check the key against the database's check value (storing it the first time) and
    remove a key kept in the database; ConfigError on a mismatch."""
    check = check_value(key)
    conn.execute(
        dialects.insert(conn, meta)
        .values(key=CHECK, value=check)
        .on_conflict_do_nothing(index_elements=[meta.c.key])
    )
    stored = conn.execute(select(meta.c.value).where(meta.c.key == CHECK)).scalar_one()
    if not hmac.compare_digest(stored, check):
        raise ConfigError(
            "the server key does not match the one this database's credentials were hashed "
            "with: give every server the same SMSSYNC_SERVER_KEY or server.key"
        )
    old = legacy_key(conn)
    if old is not None and not hmac.compare_digest(old, key):
        raise ConfigError(
            "the database still holds its own server key, and it differs from the one "
            "given: remove SMSSYNC_SERVER_KEY (or server.key) once so it can move out"
        )
    conn.execute(delete(meta).where(meta.c.key == LEGACY))


def generated() -> bytes:
    """Return a new random key."""
    return secrets.token_bytes(KEY_BYTES)


def db_key(conn: Connection) -> bytes:
    """Return the key kept in the database (a library caller's store), creating it."""
    conn.execute(
        dialects.insert(conn, meta)
        .values(key=LEGACY, value=secrets.token_bytes(32))
        .on_conflict_do_nothing(index_elements=[meta.c.key])
    )
    value: bytes = conn.execute(select(meta.c.value).where(meta.c.key == LEGACY)).scalar_one()
    return value


async def use_server_key(db: Database, data_dir: Path, given: str = "") -> bytes:
    """Take the key for keyed hashes from ``given`` (hex) or ``data_dir/server.key``,
    moving a key the database still holds out to that file; ConfigError when it does not
    match the database's credential hashes."""
    key = configured_key(data_dir, given)
    if key is None:
        # First start, or a database from before that holds its key: the file gets it,
        # written and flushed before the database forgets it.
        key = await db.read(legacy_key) or generated()
        key = write_key_file(data_dir, key)
    await db.write(adopt, key)
    db.key = key
    return key


async def server_key(db: Database) -> bytes:
    """Return the key for keyed hashes: the one given to ``use_server_key``; without one
    (a store opened by a library caller or a test), one kept in the database, which the
    next ``use_server_key`` moves out."""
    if db.key is None:
        found = await db.read(legacy_key)
        db.key = found if found is not None else await db.write(db_key)
    return db.key
